import type { FastifyPluginAsync } from 'fastify';
import { type CreateTokenBody, ROUTES, tokenOptionsOf } from '../../src/http/contract.js';
import { type Store, StoreError } from '../../src/index.js';
import { operation } from '../spec.js';

const identity = {
  type: 'object',
  required: ['name', 'email'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1 }, email: { type: 'string' } },
} as const;

const tokenInfo = {
  type: 'object',
  required: ['name', 'roles', 'author', 'created', 'expires', 'lastUsed'],
  properties: {
    name: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    author: { ...identity, description: 'The author of the commits it makes.' },
    created: { type: 'string', format: 'date-time' },
    expires: { type: ['string', 'null'], format: 'date-time', description: 'null: never.' },
    lastUsed: { type: ['string', 'null'], format: 'date-time', description: 'To the minute; null: never used.' },
  },
} as const;

/**
 * The API's tokens over the API (admin only, server/auth.ts): what `store token` does where the repository is, for an
 * administrator who has only the server. The FIRST token is not made here: it turns auth on for every client, which
 * is the operator's act where the repository is (`store token create`), as is everything before auth exists.
 */
export function tokenRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get(
      ROUTES.tokens,
      {
        schema: operation({
          operationId: 'listTokens',
          summary: 'List the tokens: names, roles, expiry and last use (never secrets)',
          tags: ['tokens'],
          ok: { 200: { description: 'Every token, by name.', json: { type: 'array', items: tokenInfo } } },
          errors: [],
        }),
      },
      () => store.tokens.list(),
    );

    app.post<{ Body: CreateTokenBody }>(
      ROUTES.tokens,
      {
        schema: operation({
          operationId: 'createToken',
          summary: 'Make a token; its secret is in this answer and nowhere else',
          tags: ['tokens'],
          body: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name: { type: 'string', description: 'Letters, digits, ".", "_" and "-": who or what uses it.' },
              roles: {
                type: 'array',
                items: { type: 'string' },
                description: 'Roles of .store/access.json, or admin.',
              },
              expiresInSeconds: { type: 'integer', minimum: 1, description: 'It stops working after this long.' },
              author: { ...identity, description: 'The author of its commits (default: the token’s name).' },
            },
          },
          ok: {
            201: {
              description: 'Made. `token` is the secret: it is not stored and cannot be shown again.',
              json: {
                type: 'object',
                required: [...tokenInfo.required, 'token', 'unknownRoles'],
                properties: {
                  ...tokenInfo.properties,
                  token: { type: 'string' },
                  unknownRoles: {
                    type: 'array',
                    items: { type: 'string' },
                    description: 'Roles it names that .store/access.json does not define (yet).',
                  },
                },
              },
            },
          },
          errors: [400, 413],
        }),
      },
      async (request, reply) => {
        if (!request.access.enabled) {
          throw new StoreError(
            'FORBIDDEN',
            'the first token turns auth on for every client: make it where the repository is, with `store token create`',
          );
        }
        const made = await store.tokens.create(request.body.name, tokenOptionsOf(request.body));
        // The secret must not sit in a cache on the way.
        return reply.status(201).header('cache-control', 'no-store').send(made);
      },
    );

    app.delete<{ Params: { name: string } }>(
      ROUTES.token,
      {
        schema: operation({
          operationId: 'revokeToken',
          summary: 'Revoke a token: requests with it are refused from the next one on',
          tags: ['tokens'],
          params: {
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string', minLength: 1, description: 'The token’s name.' } },
          },
          ok: { 204: { description: 'Revoked.' } },
          errors: [404],
        }),
      },
      async (request, reply) => {
        await store.tokens.revoke(request.params.name);
        return reply.status(204).send();
      },
    );
  };
}
