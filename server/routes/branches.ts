import type { FastifyPluginAsync } from 'fastify';
import { STRATEGY_NAMES, type Store, type StrategyName } from '../../src/index.js';
import { errorSchema } from '../errors.js';
import { authorOf, branchParams, committerOf, messageOf } from './shared.js';

const branchSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, head: { type: 'string' }, default: { type: 'boolean' } },
} as const;
const errors = { '4xx': errorSchema };

/** Branches: list, create, delete, and merging one into another. */
export function branchRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/v1/branches',
      {
        schema: {
          summary: 'List branches with their heads',
          tags: ['branches'],
          response: { 200: { type: 'array', items: branchSchema } },
        },
      },
      () => store.branches(),
    );

    app.post<{ Body: { name: string; from?: string } }>(
      '/v1/branches',
      {
        schema: {
          summary: 'Create a branch at a revision (default: the default branch)',
          tags: ['branches'],
          body: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: { name: { type: 'string' }, from: { type: 'string' } },
          },
          response: { 201: branchSchema, ...errors },
        },
      },
      async (request, reply) => {
        const created = await store.createBranch(request.body.name, { from: request.body.from });
        return reply.status(201).send(created);
      },
    );

    app.delete<{ Params: { b: string } }>(
      '/v1/branches/:b',
      {
        schema: {
          summary: 'Delete a branch (never the default one)',
          tags: ['branches'],
          params: branchParams,
          response: errors,
        },
      },
      async (request, reply) => {
        await store.deleteBranch(request.params.b);
        return reply.status(204).send();
      },
    );

    app.post<{
      Params: { b: string };
      Body: { from: string; strategy?: StrategyName; message?: string; ff?: boolean };
    }>(
      '/v1/branches/:b/merge',
      {
        schema: {
          summary:
            'Merge a branch or revision into :b (409 with data.conflicts when keys conflict; nothing is written)',
          tags: ['branches'],
          params: branchParams,
          body: {
            type: 'object',
            required: ['from'],
            additionalProperties: false,
            properties: {
              from: { type: 'string', minLength: 1 },
              strategy: { type: 'string', enum: [...STRATEGY_NAMES] },
              message: { type: 'string' },
              ff: { type: 'boolean' },
            },
          },
          response: {
            200: { type: 'object', properties: { commit: { type: 'string' }, outcome: { type: 'string' } } },
            ...errors,
          },
        },
      },
      (request) =>
        store.merge(request.body.from, {
          into: request.params.b,
          strategy: request.body.strategy,
          ff: request.body.ff,
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
          committer: committerOf(request),
        }),
    );
  };
}
