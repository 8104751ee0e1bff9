import type { FastifyPluginAsync } from 'fastify';
import { decodeValue, encodeValue, ROUTES, WIRE_VALUE_SCHEMA, type WireValue } from '../../src/http/contract.js';
import { STRATEGY_NAMES, type Store, type StrategyName } from '../../src/index.js';
import { checkBranch, checkMerge, checkSource, visibleBranches } from '../auth.js';
import { operation } from '../spec.js';
import {
  authorOf,
  branchParams,
  committerOf,
  forceOf,
  hex40,
  messageOf,
  nullableHex40,
  violationSchema,
} from './shared.js';

const branchSchema = {
  type: 'object',
  required: ['name', 'head', 'default'],
  properties: {
    name: { type: 'string' },
    head: { ...nullableHex40, description: 'Its head commit (null: no commit yet).' },
    default: { type: 'boolean' },
  },
} as const;

/** What a merge and its preview take: the branch or revision merged, and a strategy for every key. */
const mergeSource = {
  from: { type: 'string', minLength: 1 },
  strategy: { type: 'string', enum: [...STRATEGY_NAMES] },
} as const;

const wireOrNull = { anyOf: [WIRE_VALUE_SCHEMA, { type: 'null' }] } as const;

/** A merge's resolutions as bytes (null: delete the key). */
function resolutionsOf(wire: Record<string, WireValue | null> | undefined) {
  if (!wire) return undefined;
  return Object.fromEntries(
    Object.entries(wire).map(([key, v]) => [key, v === null ? null : decodeValue(v, `the resolution of ${key}`)]),
  );
}

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
        // A new branch holds all of its starting point: the caller must be able to read all of it where it is.
        const from = request.body.from ?? store.defaultBranch;
        const start = await store.resolve(from, store.defaultBranch).catch(() => null);
        if (start) await checkSource(request, store, start, null, `read all of ${from}: a new branch holds all of it`);
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
      Body: {
        from: string;
        strategy?: StrategyName;
        message?: string;
        ff?: boolean;
        resolutions?: Record<string, WireValue | null>;
      };
    }>(
      ROUTES.merge,
      {
        schema: operation({
          operationId: 'merge',
          summary:
            'Merge a branch or revision into {branch} (409 with data.conflicts when keys conflict; nothing is written)',
          tags: ['branches'],
          params: branchParams,
          headers: ['message', 'author', 'committer', 'force'],
          body: {
            type: 'object',
            required: ['from'],
            additionalProperties: false,
            properties: {
              ...mergeSource,
              message: { type: 'string' },
              ff: { type: 'boolean', description: 'Fast-forward only: 409 unless {branch} is behind `from`.' },
              resolutions: {
                type: 'object',
                additionalProperties: { anyOf: [WIRE_VALUE_SCHEMA, { type: 'null' }] },
                description:
                  'A person’s decision for each conflicting key: its value, or null to delete it. A key that does not ' +
                  'conflict now is refused (409): the branches moved since the preview.',
              },
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
          errors: [400, 404, 409, 410, 413, 422, 423],
        }),
      },
      async (request) => {
        await checkMerge(request, store, request.params.branch, request.body.from);
        return store.merge(request.body.from, {
          into: request.params.branch,
          strategy: request.body.strategy,
          ff: request.body.ff,
          resolutions: resolutionsOf(request.body.resolutions),
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
          committer: committerOf(request),
          force: forceOf(request),
        });
      },
    );

    app.post<{ Params: { branch: string }; Body: { from: string; strategy?: StrategyName } }>(
      ROUTES.mergePreview,
      {
        schema: operation({
          operationId: 'mergePreview',
          summary: 'What merging `from` into {branch} would do, written nowhere: each conflicting key with its values',
          tags: ['branches'],
          params: branchParams,
          body: {
            type: 'object',
            required: ['from'],
            additionalProperties: false,
            properties: mergeSource,
          },
          ok: {
            200: {
              description: 'The outcome a merge would have now, and the keys a person must decide.',
              json: {
                type: 'object',
                required: ['outcome', 'ours', 'theirs', 'conflicts', 'violations'],
                properties: {
                  outcome: { type: 'string', enum: ['merged', 'fast-forward', 'up-to-date', 'conflict'] },
                  ours: nullableHex40,
                  theirs: hex40,
                  conflicts: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['key', 'kind', 'values'],
                      properties: {
                        key: { type: 'string' },
                        kind: { type: 'string' },
                        base: nullableHex40,
                        ours: nullableHex40,
                        theirs: nullableHex40,
                        values: {
                          type: 'object',
                          description: 'Each side’s value (null: none there).',
                          properties: { base: wireOrNull, ours: wireOrNull, theirs: wireOrNull },
                        },
                      },
                    },
                  },
                  violations: {
                    type: 'array',
                    items: violationSchema,
                    description:
                      'What the merged tree would break of the branch’s schemas: the merge would be refused (422).',
                  },
                },
              },
            },
          },
          errors: [400, 404, 413],
        }),
      },
      async (request) => {
        await checkMerge(request, store, request.params.branch, request.body.from);
        const preview = await store.mergePreview(request.body.from, {
          into: request.params.branch,
          strategy: request.body.strategy,
        });
        const wire = (v: Uint8Array | null) => (v === null ? null : encodeValue(v));
        return {
          ...preview,
          conflicts: preview.conflicts.map((c) => ({
            ...c,
            values: { base: wire(c.values.base), ours: wire(c.values.ours), theirs: wire(c.values.theirs) },
          })),
        };
      },
    );
  };
}
