import type { FastifyPluginAsync } from 'fastify';
import type { CommitInfo, Store } from '../../src/index.js';
import { errorSchema } from '../errors.js';
import { authorOf, branchParams, commitSchema, committerOf, keyParams, messageOf } from './shared.js';

const errors = { '4xx': errorSchema };
const changeSchema = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    kind: { type: 'string' },
    before: { type: ['string', 'null'] },
    after: { type: ['string', 'null'] },
  },
} as const;

const present = (c: CommitInfo) => ({ ...c, time: c.committer.time });

/** History: the log, single commits, diffs and reverts. */
export function historyRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { b: string }; Querystring: { key?: string; limit?: number; cursor?: string } }>(
      '/v1/branches/:b/log',
      {
        schema: {
          summary: 'First-parent history of a branch, newest first; pass `next` back as `cursor` for the next page',
          tags: ['history'],
          params: branchParams,
          querystring: {
            type: 'object',
            properties: {
              key: { type: 'string' },
              limit: { type: 'integer', minimum: 1, maximum: 10000 },
              cursor: { type: 'string' },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: { commits: { type: 'array', items: commitSchema }, next: { type: ['string', 'null'] } },
            },
            ...errors,
          },
        },
      },
      async (request) => {
        const { key, limit, cursor } = request.query;
        const page = await store.log({ branch: request.params.b, path: key, limit: limit ?? 100, cursor });
        return { commits: page.commits.map(present), next: page.next };
      },
    );

    app.get<{ Params: { rev: string }; Querystring: { branch?: string } }>(
      '/v1/commits/:rev',
      {
        schema: {
          summary: 'One commit by revision (id, prefix, branch~N, ISO time), with the keys it changed',
          tags: ['history'],
          params: { type: 'object', properties: { rev: { type: 'string' } }, required: ['rev'] },
          querystring: { type: 'object', properties: { branch: { type: 'string' } } },
          response: {
            200: {
              type: 'object',
              properties: { ...commitSchema.properties, changes: { type: 'array', items: changeSchema } },
            },
            ...errors,
          },
        },
      },
      async (request) => {
        const commit = await store.commit(request.params.rev, { branch: request.query.branch });
        return { ...present(commit), changes: await store.changesOf(commit.id) };
      },
    );

    app.get<{ Querystring: { from: string; to?: string; branch?: string; prefix?: string } }>(
      '/v1/diff',
      {
        schema: {
          summary: 'Per-key changes between two revisions (to: default the branch head)',
          tags: ['history'],
          querystring: {
            type: 'object',
            required: ['from'],
            properties: {
              from: { type: 'string' },
              to: { type: 'string' },
              branch: { type: 'string' },
              prefix: { type: 'string' },
            },
          },
          response: {
            200: { type: 'object', properties: { changes: { type: 'array', items: changeSchema } } },
            ...errors,
          },
        },
      },
      async (request) => {
        const { from, to, branch, prefix } = request.query;
        return { changes: await store.diff(from, to, { branch, prefix }) };
      },
    );

    app.post<{
      Params: { b: string };
      Body: { good: string; bad?: string; key: string; equals?: string; matches?: string; missing?: boolean };
    }>(
      '/v1/branches/:b/bisect',
      {
        schema: {
          summary: 'Find the first commit after `good` where a key equals a value, matches a regex, or is missing',
          tags: ['history'],
          params: branchParams,
          body: {
            type: 'object',
            required: ['good', 'key'],
            additionalProperties: false,
            properties: {
              good: { type: 'string', minLength: 1 },
              bad: { type: 'string', minLength: 1 },
              key: { type: 'string', minLength: 1 },
              equals: { type: 'string' },
              matches: { type: 'string' },
              missing: { type: 'boolean', const: true },
            },
            oneOf: [{ required: ['equals'] }, { required: ['matches'] }, { required: ['missing'] }],
          },
          response: {
            200: {
              type: 'object',
              properties: {
                firstBad: commitSchema,
                changes: { type: 'array', items: changeSchema },
                tested: {
                  type: 'array',
                  items: { type: 'object', properties: { commit: { type: 'string' }, verdict: { type: 'string' } } },
                },
                candidates: { type: 'array', items: { type: 'string' } },
              },
            },
            ...errors,
          },
        },
      },
      async (request) => {
        const { good, bad, key, equals, matches } = request.body;
        const predicate =
          equals !== undefined
            ? { key, equals }
            : matches !== undefined
              ? { key, matches }
              : { key, missing: true as const };
        const r = await store.bisect({ good, bad, branch: request.params.b, predicate });
        return { ...r, firstBad: present(r.firstBad) };
      },
    );

    const blame = async (b: string, prefix: string, at: string | undefined) => ({
      keys: (await store.blame(prefix, { branch: b, at })).map((l) => ({ key: l.key, commit: present(l.commit) })),
    });
    const blameSchema = {
      summary: 'For each key at or below the prefix, the last commit that changed it (author, time, subject)',
      tags: ['history'],
      querystring: { type: 'object', additionalProperties: false, properties: { at: { type: 'string' } } },
      response: {
        200: {
          type: 'object',
          properties: {
            keys: {
              type: 'array',
              items: { type: 'object', properties: { key: { type: 'string' }, commit: commitSchema } },
            },
          },
        },
        ...errors,
      },
    };
    app.get<{ Params: { b: string; '*': string }; Querystring: { at?: string } }>(
      '/v1/branches/:b/blame/*',
      { schema: { ...blameSchema, params: keyParams } },
      (request) => blame(request.params.b, request.params['*'], request.query.at),
    );
    app.get<{ Params: { b: string }; Querystring: { at?: string } }>(
      '/v1/branches/:b/blame',
      { schema: { ...blameSchema, params: branchParams } },
      (request) => blame(request.params.b, '', request.query.at),
    );

    app.post(
      '/v1/gc',
      {
        schema: {
          summary: 'Repack the repository: all packs into one, deflated, wide trees as deltas (safe while writing)',
          tags: ['history'],
          body: { type: 'object', additionalProperties: false, properties: {} },
          response: {
            200: {
              type: 'object',
              properties: Object.fromEntries(
                ['packsBefore', 'packsAfter', 'bytesBefore', 'bytesAfter', 'objects', 'ms'].map((k) => [
                  k,
                  { type: 'integer' },
                ]),
              ),
            },
            ...errors,
          },
        },
      },
      () => store.gc(),
    );

    app.post<{ Params: { b: string }; Body: { dryRun?: boolean; policy?: unknown } }>(
      '/v1/branches/:b/compact',
      {
        schema: {
          summary:
            'Compact :b to its retention policy (.store/retention.json, or `policy`): recent commits kept, older ones ' +
            'as snapshots, then unreachable objects pruned; `dryRun` only reports. Writes meanwhile are kept.',
          tags: ['history'],
          params: branchParams,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              dryRun: { type: 'boolean' },
              policy: {
                description: 'tiers, e.g. [{"within":"1h","keep":"all"},{"within":"30d","every":"1d"}]',
                anyOf: [{ type: 'array', items: { type: 'object' } }, { type: 'string' }],
              },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                branch: { type: 'string' },
                dryRun: { type: 'boolean' },
                before: { type: ['string', 'null'] },
                head: { type: ['string', 'null'] },
                ...Object.fromEntries(
                  ['commits', 'kept', 'recent', 'dropped', 'bytesBefore', 'bytesAfter', 'ms'].map((k) => [
                    k,
                    { type: 'integer' },
                  ]),
                ),
                snapshots: {
                  type: 'array',
                  items: { type: 'object', properties: { commit: { type: 'string' }, time: { type: 'string' } } },
                },
                pruned: {
                  type: 'object',
                  properties: {
                    objects: { type: 'integer' },
                    bytes: { type: 'integer' },
                    reachable: { type: 'integer' },
                  },
                },
              },
            },
            ...errors,
          },
        },
      },
      (request) =>
        store.compact({ branch: request.params.b, dryRun: request.body?.dryRun, policy: request.body?.policy }),
    );

    app.post<{ Params: { b: string }; Body: { commit: string; message?: string } }>(
      '/v1/branches/:b/revert',
      {
        schema: {
          summary: 'Undo a commit on :b with a new commit (409 if later commits changed the same keys)',
          tags: ['history'],
          params: branchParams,
          body: {
            type: 'object',
            required: ['commit'],
            additionalProperties: false,
            properties: { commit: { type: 'string', minLength: 1 }, message: { type: 'string' } },
          },
          response: { 200: { type: 'object', properties: { commit: { type: 'string' } } }, ...errors },
        },
      },
      (request) =>
        store.revert(request.body.commit, {
          branch: request.params.b,
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
          committer: committerOf(request),
        }),
    );
  };
}
