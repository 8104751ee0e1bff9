import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Isolation, Store } from '../../src/index.js';
import { errorSchema } from '../errors.js';
import { acceptRawBodies, authorOf, branchParams, listResponse, sendValue } from './shared.js';

const errors = { '4xx': errorSchema };
const txParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const txKeyParams = {
  type: 'object',
  properties: { id: { type: 'string' }, '*': { type: 'string' } },
  required: ['id', '*'],
} as const;

interface TxKeyRoute {
  Params: { id: string; '*': string };
  Querystring: { recursive?: boolean };
}

/** Who a transaction belongs to, for the per-client cap: X-Store-Client when given, else the address. */
const clientOf = (request: FastifyRequest) => {
  const header = request.headers['x-store-client'];
  return typeof header === 'string' && header !== '' ? header : request.ip;
};

/** Transactions over HTTP: begin on a branch, read and write inside, commit (409 on conflict) or abort. */
export function transactionRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Params: { b: string }; Body: { isolation?: Isolation } | undefined }>(
      '/v1/branches/:b/transactions',
      {
        // The body is optional: a bare POST begins a snapshot transaction.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: {
          summary: 'Begin a transaction on :b (isolation: snapshot, the default, or serializable)',
          tags: ['transactions'],
          params: branchParams,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: { isolation: { type: 'string', enum: ['snapshot', 'serializable'] } },
          },
          response: {
            201: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                branch: { type: 'string' },
                base: { type: ['string', 'null'] },
                isolation: { type: 'string' },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const tx = await store.begin({
          branch: request.params.b,
          isolation: request.body?.isolation,
          client: clientOf(request),
          author: authorOf(request),
        });
        return reply.status(201).send({ id: tx.id, branch: tx.branch, base: tx.base.commit, isolation: tx.isolation });
      },
    );

    app.post<{ Params: { id: string } }>(
      '/v1/transactions/:id/commit',
      {
        schema: {
          summary: 'Commit: merge the transaction into its branch (409 with data.conflicts: it was aborted)',
          tags: ['transactions'],
          params: txParams,
          response: {
            200: { type: 'object', properties: { commit: { type: ['string', 'null'] }, outcome: { type: 'string' } } },
            ...errors,
          },
        },
      },
      (request) => store.transaction(request.params.id).commit(),
    );

    app.delete<{ Params: { id: string } }>(
      '/v1/transactions/:id',
      { schema: { summary: 'Abort a transaction', tags: ['transactions'], params: txParams, response: errors } },
      async (request, reply) => {
        await store.transaction(request.params.id).abort();
        return reply.status(204).send();
      },
    );

    await app.register(async (raw) => {
      acceptRawBodies(raw);
      raw.get<TxKeyRoute>(
        '/v1/transactions/:id/keys/*',
        {
          schema: {
            summary: 'Read a value as the transaction sees it',
            tags: ['transactions'],
            params: txKeyParams,
            response: errors,
          },
        },
        async (request, reply) =>
          sendValue(request, reply, await store.transaction(request.params.id).read(request.params['*'])),
      );
      raw.put<TxKeyRoute & { Body: Buffer | undefined }>(
        '/v1/transactions/:id/keys/*',
        {
          schema: {
            summary: 'Write a value inside the transaction (the body, byte-exact)',
            tags: ['transactions'],
            params: txKeyParams,
            response: {
              200: {
                type: 'object',
                properties: { commit: { type: 'string' }, key: { type: 'string' }, oid: { type: 'string' } },
              },
              ...errors,
            },
          },
        },
        (request) =>
          store
            .transaction(request.params.id)
            .set(request.params['*'], request.body ?? new Uint8Array(0), { author: authorOf(request) }),
      );
      raw.delete<TxKeyRoute>(
        '/v1/transactions/:id/keys/*',
        {
          schema: {
            summary: 'Delete a key inside the transaction (?recursive=true for a directory)',
            tags: ['transactions'],
            params: txKeyParams,
            querystring: { type: 'object', properties: { recursive: { type: 'boolean' } } },
            response: { 200: { type: 'object', properties: { commit: { type: 'string' } } }, ...errors },
          },
        },
        (request) =>
          store
            .transaction(request.params.id)
            .delete(request.params['*'], { recursive: request.query.recursive, author: authorOf(request) }),
      );
    });

    const listSchema = {
      summary: 'List a directory as the transaction sees it (?recursive=true: every value below it)',
      tags: ['transactions'],
      querystring: { type: 'object', properties: { recursive: { type: 'boolean' } } },
      response: { 200: listResponse, ...errors },
    };
    app.get<TxKeyRoute>('/v1/transactions/:id/list/*', { schema: { ...listSchema, params: txKeyParams } }, (request) =>
      store.transaction(request.params.id).list(request.params['*'], { recursive: request.query.recursive }),
    );
    app.get<{ Params: { id: string }; Querystring: { recursive?: boolean } }>(
      '/v1/transactions/:id/list',
      { schema: { ...listSchema, params: txParams } },
      (request) => store.transaction(request.params.id).list('', { recursive: request.query.recursive }),
    );
  };
}
