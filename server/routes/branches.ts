import type { FastifyPluginAsync } from 'fastify';
import { ROUTES } from '../../src/http/contract.js';
import { STRATEGY_NAMES, type Store, type StrategyName } from '../../src/index.js';
import { checkBranch, checkMerge, visibleBranches } from '../auth.js';
import { operation } from '../spec.js';
import { authorOf, branchParams, committerOf, hex40, messageOf, nullableHex40 } from './shared.js';

const branchSchema = {
  type: 'object',
  required: ['name', 'head', 'default'],
  properties: {
    name: { type: 'string' },
    head: { ...nullableHex40, description: 'Its head commit (null: no commit yet).' },
    default: { type: 'boolean' },
  },
} as const;

/** Branches: list, create, delete, and merging one into another. */
export function branchRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get(
      ROUTES.branches,
      {
        schema: operation({
          operationId: 'listBranches',
          summary: 'List branches with their heads',
          tags: ['branches'],
          ok: { 200: { description: 'Every branch, sorted by name.', json: { type: 'array', items: branchSchema } } },
          errors: [],
        }),
      },
      async (request) => visibleBranches(request, await store.branches()),
    );

    app.post<{ Body: { name: string; from?: string } }>(
      ROUTES.branches,
      {
        schema: operation({
          operationId: 'createBranch',
          summary: 'Create a branch at a revision (default: the default branch)',
          tags: ['branches'],
          body: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: { name: { type: 'string' }, from: { type: 'string', description: 'A revision.' } },
          },
          ok: { 201: { description: 'Created.', json: branchSchema } },
          errors: [400, 404, 409, 410, 413, 423],
        }),
      },
      async (request, reply) => {
        checkBranch(request, request.body.name, 'write');
        const created = await store.createBranch(request.body.name, { from: request.body.from });
        return reply.status(201).send(created);
      },
    );

    app.delete<{ Params: { branch: string } }>(
      ROUTES.branch,
      {
        schema: operation({
          operationId: 'deleteBranch',
          summary: 'Delete a branch (never the default one)',
          tags: ['branches'],
          params: branchParams,
          ok: { 204: { description: 'Deleted.' } },
          errors: [400, 403, 404, 423],
        }),
      },
      async (request, reply) => {
        await store.deleteBranch(request.params.branch);
        return reply.status(204).send();
      },
    );

    app.post<{
      Params: { branch: string };
      Body: { from: string; strategy?: StrategyName; message?: string; ff?: boolean };
    }>(
      ROUTES.merge,
      {
        schema: operation({
          operationId: 'merge',
          summary:
            'Merge a branch or revision into {branch} (409 with data.conflicts when keys conflict; nothing is written)',
          tags: ['branches'],
          params: branchParams,
          headers: ['message', 'author', 'committer'],
          body: {
            type: 'object',
            required: ['from'],
            additionalProperties: false,
            properties: {
              from: { type: 'string', minLength: 1 },
              strategy: { type: 'string', enum: [...STRATEGY_NAMES] },
              message: { type: 'string' },
              ff: { type: 'boolean', description: 'Fast-forward only: 409 unless {branch} is behind `from`.' },
            },
          },
          ok: {
            200: {
              description: 'Merged, fast-forwarded, or already up to date.',
              json: {
                type: 'object',
                required: ['commit', 'outcome'],
                properties: {
                  commit: hex40,
                  outcome: { type: 'string', enum: ['merged', 'fast-forward', 'up-to-date'] },
                },
              },
            },
          },
          errors: [400, 404, 409, 410, 413, 423],
        }),
      },
      async (request) => {
        await checkMerge(request, store, request.params.branch, request.body.from);
        return store.merge(request.body.from, {
          into: request.params.branch,
          strategy: request.body.strategy,
          ff: request.body.ff,
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
          committer: committerOf(request),
        });
      },
    );
  };
}
