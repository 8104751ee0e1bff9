import type { FastifyPluginAsync } from 'fastify';
import { ROUTES } from '../../src/http/contract.js';
import { checkRemoteName, STRATEGY_NAMES, type Store, type StrategyName } from '../../src/index.js';
import { operation } from '../spec.js';
import { authorOf, committerOf, forceOf, hex40, messageOf, nullableHex40 } from './shared.js';

const remoteParams = {
  type: 'object',
  properties: {
    remote: { type: 'string', minLength: 1, description: 'A configured remote’s name; `/` in it sent as `%2F`.' },
  },
  required: ['remote'],
} as const;

const remoteSchema = {
  type: 'object',
  required: ['name', 'url'],
  properties: { name: { type: 'string' }, url: { type: 'string' } },
} as const;

const refUpdates = {
  type: 'array',
  items: {
    type: 'object',
    required: ['ref', 'old', 'new'],
    properties: {
      ref: { type: 'string', description: 'The full ref name.' },
      old: { ...nullableHex40, description: 'What it held (null: it is new).' },
      new: { ...nullableHex40, description: 'What it holds now (null: deleted).' },
      forced: { type: 'boolean', description: 'Not a fast-forward.' },
    },
  },
} as const;

const transferResult = (what: string) => ({
  type: 'object',
  required: ['remote', 'updated'],
  properties: { remote: { type: 'string' }, updated: { ...refUpdates, description: what } },
});

/**
 * Over HTTP only configured remotes are fetched, pulled and pushed: a URL in their place would let any client make
 * the server reach wherever it names. (Adding a remote with PUT is the operator's act.)
 */
const named = (remote: string): string => {
  try {
    return checkRemoteName(remote);
  } catch (e) {
    (e as Error).message += '; over HTTP, name a configured remote (GET /v1/remotes lists them)';
    throw e;
  }
};

/** The server's remotes (its repository's git config), and fetch, pull and push through them. */
export function remoteRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get(
      ROUTES.remotes,
      {
        schema: operation({
          operationId: 'listRemotes',
          summary: 'List the remotes, as `git remote -v` does',
          tags: ['remotes'],
          ok: { 200: { description: 'Every remote, by name.', json: { type: 'array', items: remoteSchema } } },
          // 400: a store in memory has no remotes; 502: git is missing.
          errors: [400, 502],
        }),
      },
      () => store.remotes.list(),
    );

    app.put<{ Params: { remote: string }; Body: { url: string } }>(
      ROUTES.remote,
      {
        schema: operation({
          operationId: 'addRemote',
          summary: 'Add a remote (the same URL again changes nothing; another URL is 409)',
          tags: ['remotes'],
          params: remoteParams,
          body: {
            type: 'object',
            required: ['url'],
            additionalProperties: false,
            properties: { url: { type: 'string', minLength: 1, description: 'A URL or a path on the server.' } },
          },
          ok: {
            201: { description: 'Added.', json: remoteSchema },
            200: { description: 'It was there already, with this URL.', json: remoteSchema },
          },
          errors: [400, 409, 413, 502],
        }),
      },
      async (request, reply) => {
        const name = checkRemoteName(request.params.remote);
        const existed = (await store.remotes.list()).some((r) => r.name === name && r.url === request.body.url);
        const remote = await store.remotes.add(name, request.body.url);
        return reply.status(existed ? 200 : 201).send(remote);
      },
    );

    app.delete<{ Params: { remote: string } }>(
      ROUTES.remote,
      {
        schema: operation({
          operationId: 'removeRemote',
          summary: 'Remove a remote and its remote-tracking refs',
          tags: ['remotes'],
          params: remoteParams,
          ok: { 204: { description: 'Removed.' } },
          errors: [400, 404, 502],
        }),
      },
      async (request, reply) => {
        await store.remotes.remove(request.params.remote);
        return reply.status(204).send();
      },
    );

    app.post<{ Params: { remote: string } }>(
      ROUTES.fetch,
      {
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: operation({
          operationId: 'fetch',
          summary: 'Fetch every branch of {remote} into refs/remotes/{remote}/*',
          tags: ['remotes'],
          params: remoteParams,
          body: { type: 'object', additionalProperties: false, properties: {} },
          bodyOptional: true,
          ok: { 200: { description: 'The remote-tracking refs that moved.', json: transferResult('Refs moved.') } },
          errors: [400, 404, 413, 502],
        }),
      },
      (request) => store.fetch(named(request.params.remote)),
    );

    app.post<{
      Params: { remote: string };
      Body: { branch?: string; strategy?: StrategyName; message?: string };
    }>(
      ROUTES.pull,
      {
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: operation({
          operationId: 'pull',
          summary:
            'Fetch a branch of {remote} and merge it into the same branch here, with its strategies (409 with ' +
            'data.conflicts when keys conflict; the branch is left as it was)',
          tags: ['remotes'],
          params: remoteParams,
          headers: ['message', 'author', 'committer', 'force'],
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              branch: { type: 'string', minLength: 1, description: 'Default: the default branch.' },
              strategy: { type: 'string', enum: [...STRATEGY_NAMES] },
              message: { type: 'string' },
            },
          },
          bodyOptional: true,
          ok: {
            200: {
              description: 'Fetched and merged (or fast-forwarded, or already up to date).',
              json: {
                type: 'object',
                required: ['remote', 'branch', 'fetched', 'merge'],
                properties: {
                  remote: { type: 'string' },
                  branch: { type: 'string' },
                  fetched: refUpdates,
                  merge: {
                    type: 'object',
                    required: ['commit', 'outcome'],
                    properties: {
                      commit: hex40,
                      outcome: { type: 'string', enum: ['merged', 'fast-forward', 'up-to-date'] },
                    },
                  },
                },
              },
            },
          },
          errors: [400, 404, 409, 413, 422, 423, 502],
        }),
      },
      (request) =>
        store.pull(named(request.params.remote), {
          branch: request.body.branch,
          strategy: request.body.strategy,
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
          committer: committerOf(request),
          force: forceOf(request),
        }),
    );

    app.post<{ Params: { remote: string }; Body: { branch?: string; force?: boolean } }>(
      ROUTES.push,
      {
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: operation({
          operationId: 'push',
          summary:
            'Push a branch to the same branch of {remote} (409 PUSH_REJECTED when the remote has commits this ' +
            'store lacks: pull first, or force)',
          tags: ['remotes'],
          params: remoteParams,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              branch: { type: 'string', minLength: 1, description: 'Default: the default branch.' },
              force: { type: 'boolean', description: 'Replace the remote’s branch even when it has diverged.' },
            },
          },
          bodyOptional: true,
          ok: { 200: { description: 'The remote’s branches that moved.', json: transferResult('Refs moved.') } },
          errors: [400, 404, 409, 413, 502],
        }),
      },
      (request) => store.push(named(request.params.remote), { branch: request.body.branch, force: request.body.force }),
    );
  };
}
