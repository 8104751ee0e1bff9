import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ROUTES } from '../../src/http/contract.js';
import { type CommitInfo, type KeyPredicate, type Store, StoreError } from '../../src/index.js';
import { checkBranch, checkHistory, checkRead, checkWrites, forbidden } from '../auth.js';
import { changesReadable, checkCommits, checkRevisions, partialReader, readable } from '../history-access.js';
import { operation, READ_ERRORS } from '../spec.js';
import {
  authorOf,
  branchParams,
  commitHeaders,
  commitSchema,
  committerOf,
  forceOf,
  hex40,
  keyParams,
  messageOf,
  nullableHex40,
  readAtQuery,
  violationSchema,
  writeResult,
} from './shared.js';

const changeSchema = {
  type: 'object',
  required: ['key', 'kind', 'before', 'after'],
  properties: {
    key: { type: 'string' },
    kind: { type: 'string', enum: ['added', 'modified', 'deleted'] },
    before: { ...nullableHex40, description: 'The blob before (null: added).' },
    after: { ...nullableHex40, description: 'The blob after (null: deleted).' },
  },
} as const;
const changes = { type: 'array', items: changeSchema } as const;
const integers = (names: string[]) => Object.fromEntries(names.map((k) => [k, { type: 'integer' }]));

const GC_FIELDS = ['packsBefore', 'packsAfter', 'bytesBefore', 'bytesAfter', 'objects', 'ms'];
const COMPACT_COUNTS = ['commits', 'kept', 'recent', 'dropped', 'bytesBefore', 'bytesAfter', 'ms'];

const present = (c: CommitInfo) => ({ ...c, time: c.committer.time });

/** History: the log, single commits, diffs and reverts. */
export function historyRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { branch: string }; Querystring: { key?: string; limit?: number; cursor?: string } }>(
      ROUTES.log,
      {
        schema: operation({
          operationId: 'log',
          summary: 'First-parent history of a branch, newest first; pass `next` back as `cursor` for the next page',
          tags: ['history'],
          params: branchParams,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              key: { type: 'string', description: 'Only commits that changed this key or prefix.' },
              limit: { type: 'integer', minimum: 1, maximum: 10000, description: 'Commits per page (default 100).' },
              cursor: { type: 'string', description: 'Where the page starts: `next` of the last page, or a revision.' },
            },
          },
          ok: {
            200: {
              description: 'A page of commits.',
              json: {
                type: 'object',
                required: ['commits', 'next'],
                properties: {
                  commits: { type: 'array', items: commitSchema },
                  next: { type: ['string', 'null'], description: 'The cursor of the next page (null: the last).' },
                },
              },
            },
          },
          errors: READ_ERRORS,
        }),
      },
      async (request) => {
        const { key, limit, cursor } = request.query;
        const { branch } = request.params;
        const grants = partialReader(request, branch);
        if (grants && key !== undefined && !grants.canSee(branch, key)) {
          throw forbidden(`read the history of ${key} on ${branch}`);
        }
        await checkRevisions(request, store, branch, [cursor]);
        const page = await store.log({ branch, path: key, limit: limit ?? 100, cursor });
        // A partial reader's page holds the commits that changed something it may read: maybe fewer than `limit`,
        // with `next` where the page's walk stopped.
        const commits = [];
        for (const c of page.commits) {
          if (!grants || (await changesReadable(store, grants, branch, c.id))) commits.push(present(c));
        }
        return { commits, next: page.next };
      },
    );

    app.get<{ Params: { rev: string }; Querystring: { branch?: string } }>(
      ROUTES.commit,
      {
        schema: operation({
          operationId: 'getCommit',
          summary: 'One commit by revision (id, prefix, branch~N, ISO time), with the keys it changed',
          tags: ['history'],
          params: { type: 'object', properties: { rev: { type: 'string', minLength: 1 } }, required: ['rev'] },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { branch: { type: 'string', description: 'The branch `HEAD` and `~N` refer to.' } },
          },
          ok: {
            200: {
              description: 'The commit and its changes against its first parent.',
              json: {
                type: 'object',
                required: [...commitSchema.required, 'changes'],
                properties: { ...commitSchema.properties, changes },
              },
            },
          },
          errors: READ_ERRORS,
        }),
      },
      async (request) => {
        const branch = request.query.branch ?? store.defaultBranch;
        const grants = partialReader(request, branch);
        checkHistory(request, branch);
        const commit = await store.commit(request.params.rev, { branch });
        await checkCommits(request, store, branch, [commit.id]);
        let changes = await store.changesOf(commit.id);
        if (grants) {
          changes = readable(grants, branch, changes);
          if (changes.length === 0) throw forbidden(`read a commit that changed nothing it may read on ${branch}`);
        }
        return { ...present(commit), changes };
      },
    );

    app.get<{ Querystring: { from: string; to?: string; branch?: string; prefix?: string } }>(
      ROUTES.diff,
      {
        schema: operation({
          operationId: 'diff',
          summary: 'Per-key changes between two revisions (to: default the branch head)',
          tags: ['history'],
          querystring: {
            type: 'object',
            required: ['from'],
            additionalProperties: false,
            properties: {
              from: { type: 'string' },
              to: { type: 'string' },
              branch: { type: 'string' },
              prefix: { type: 'string', description: 'Only keys at or below this key or prefix.' },
            },
          },
          ok: {
            200: {
              description: 'The changes, sorted by key.',
              json: { type: 'object', required: ['changes'], properties: { changes } },
            },
          },
          errors: READ_ERRORS,
        }),
      },
      async (request) => {
        const { from, to, branch, prefix } = request.query;
        const on = branch ?? store.defaultBranch;
        const grants = partialReader(request, on);
        checkHistory(request, on);
        await checkRevisions(request, store, on, [from, to]);
        const changes = await store.diff(from, to, { branch, prefix });
        return { changes: grants ? readable(grants, on, changes) : changes };
      },
    );

    app.post<{
      Params: { branch: string };
      Body: {
        good?: string;
        bad?: string;
        key?: string;
        equals?: string;
        matches?: string;
        missing?: boolean;
        invalid?: boolean;
      };
    }>(
      ROUTES.bisect,
      {
        schema: operation({
          operationId: 'bisect',
          summary:
            'Find the first commit after `good` where a key equals a value, matches a regex, or is missing, or (`invalid`) ' +
            'where the tree stopped satisfying the branch’s schemas of today',
          tags: ['history'],
          params: branchParams,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              good: {
                type: 'string',
                minLength: 1,
                description: 'A good revision (required, but with `invalid`: default the first commit).',
              },
              bad: { type: 'string', minLength: 1 },
              key: { type: 'string', minLength: 1 },
              equals: { type: 'string' },
              matches: { type: 'string' },
              missing: { type: 'boolean', const: true },
              invalid: { type: 'boolean', const: true },
            },
            oneOf: [
              { required: ['key', 'equals'] },
              { required: ['key', 'matches'] },
              { required: ['key', 'missing'] },
              { required: ['invalid'] },
            ],
          },
          ok: {
            200: {
              description: 'The first bad commit, its changes, and the commits tested.',
              json: {
                type: 'object',
                required: ['firstBad', 'changes', 'tested', 'candidates'],
                properties: {
                  firstBad: commitSchema,
                  changes,
                  tested: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['commit', 'verdict'],
                      properties: { commit: hex40, verdict: { type: 'string', enum: ['good', 'bad', 'skip'] } },
                    },
                  },
                  candidates: { type: 'array', items: hex40 },
                  violations: {
                    type: 'array',
                    items: violationSchema,
                    description: 'With `invalid`: what the first bad commit breaks of today’s schemas.',
                  },
                },
              },
            },
          },
          errors: [...READ_ERRORS, 413],
        }),
      },
      async (request) => {
        const { good, bad, key, equals, matches, invalid } = request.body;
        const { branch } = request.params;
        const grants = partialReader(request, branch);
        let predicate: KeyPredicate | undefined;
        if (invalid) {
          if (key !== undefined)
            throw new StoreError('INVALID_ARGUMENT', '`invalid` is a test of its own: give no key');
          // Its answer names values that break a schema anywhere in the tree.
          checkBranch(request, branch, 'read');
        } else if (key !== undefined) {
          predicate =
            equals !== undefined
              ? { key, equals }
              : matches !== undefined
                ? { key, matches }
                : { key, missing: true as const };
          checkRead(request, branch, key);
        }
        await checkRevisions(request, store, branch, [good, bad]);
        const r = await store.bisect({ good, bad, branch, predicate, invalid });
        return {
          ...r,
          firstBad: present(r.firstBad),
          changes: grants ? readable(grants, branch, r.changes) : r.changes,
        };
      },
    );

    type BlameQuery = { at?: string; nearest?: 'before' };
    const blame = async (request: FastifyRequest, prefix: string, q: BlameQuery, reply: FastifyReply) => {
      const { branch } = request.params as { branch: string };
      const grants = partialReader(request, branch);
      if (grants && !grants.canSee(branch, prefix)) throw forbidden(`blame ${prefix} on ${branch}`);
      // Resolved here, once, so the answer can name the commit it read (with `nearest`, maybe not the one asked for).
      const at = q.at === undefined ? undefined : await store.resolve(q.at, branch, { nearest: q.nearest });
      await checkCommits(request, store, branch, [at]);
      if (at !== undefined) await commitHeaders(reply, store, at);
      const lines = await store.blame(prefix, { branch, at });
      return {
        keys: (grants ? readable(grants, branch, lines) : lines).map((l) => ({
          key: l.key,
          commit: present(l.commit),
        })),
      };
    };
    const blameOperation = (operationId: string, params: Record<string, unknown>) =>
      operation({
        operationId,
        summary: 'For each key at or below the prefix, the last commit that changed it (author, time, subject)',
        tags: ['history'],
        params,
        querystring: { type: 'object', additionalProperties: false, properties: readAtQuery },
        ok: {
          200: {
            description: 'One line per key, sorted by key.',
            optionalHeaders: ['commit', 'commitTime'],
            json: {
              type: 'object',
              required: ['keys'],
              properties: {
                keys: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['key', 'commit'],
                    properties: { key: { type: 'string' }, commit: commitSchema },
                  },
                },
              },
            },
          },
        },
        errors: [...READ_ERRORS, 409],
      });
    app.get<{ Params: { branch: string; '*': string }; Querystring: BlameQuery }>(
      ROUTES.blame,
      { schema: blameOperation('blame', keyParams) },
      (request, reply) => blame(request, request.params['*'], request.query, reply),
    );
    app.get<{ Params: { branch: string }; Querystring: BlameQuery }>(
      ROUTES.blameRoot,
      { schema: blameOperation('blameRoot', branchParams) },
      (request, reply) => blame(request, '', request.query, reply),
    );

    app.post(
      ROUTES.gc,
      {
        schema: operation({
          operationId: 'gc',
          summary: 'Repack the repository: all packs into one, deflated, wide trees as deltas (safe while writing)',
          tags: ['history'],
          body: { type: 'object', additionalProperties: false, properties: {} },
          ok: {
            200: {
              description: 'What the repack did.',
              json: {
                type: 'object',
                required: GC_FIELDS,
                properties: integers(GC_FIELDS),
              },
            },
          },
          errors: [400, 413],
        }),
      },
      () => store.gc(),
    );

    app.post<{ Params: { branch: string }; Body: { dryRun?: boolean; policy?: unknown } }>(
      ROUTES.compact,
      {
        schema: operation({
          operationId: 'compact',
          summary:
            'Compact {branch} to its retention policy (.store/retention.json, or `policy`): recent commits kept, older ones ' +
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
          ok: {
            200: {
              description: 'What the compaction did (or, with dryRun, would do).',
              json: {
                type: 'object',
                required: ['branch', 'dryRun', 'before', 'head', ...COMPACT_COUNTS, 'snapshots', 'pruned'],
                properties: {
                  branch: { type: 'string' },
                  dryRun: { type: 'boolean' },
                  before: nullableHex40,
                  head: nullableHex40,
                  ...integers(COMPACT_COUNTS),
                  snapshots: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['commit', 'time'],
                      properties: { commit: hex40, time: { type: 'string' } },
                    },
                  },
                  pruned: {
                    type: 'object',
                    required: ['objects', 'bytes'],
                    properties: {
                      objects: { type: 'integer' },
                      bytes: { type: 'integer' },
                      reachable: { type: 'integer' },
                      deferred: {
                        description:
                          'unreachable objects kept because their packs are younger than the prune grace period ' +
                          '(graceMs); a compaction after `until` frees them',
                        type: 'object',
                        properties: {
                          packs: { type: 'integer' },
                          objects: { type: 'integer' },
                          bytes: { type: 'integer' },
                          graceMs: { type: 'integer' },
                          until: { type: ['string', 'null'], description: 'ISO time' },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
          errors: [400, 404, 409, 413, 423],
        }),
      },
      (request) =>
        store.compact({ branch: request.params.branch, dryRun: request.body?.dryRun, policy: request.body?.policy }),
    );

    app.post<{ Params: { branch: string }; Body: { commit: string; message?: string } }>(
      ROUTES.revert,
      {
        schema: operation({
          operationId: 'revert',
          summary: 'Undo a commit on {branch} with a new commit (409 if later commits changed the same keys)',
          tags: ['history'],
          params: branchParams,
          headers: ['message', 'author', 'committer', 'force'],
          body: {
            type: 'object',
            required: ['commit'],
            additionalProperties: false,
            properties: { commit: { type: 'string', minLength: 1 }, message: { type: 'string' } },
          },
          ok: {
            200: {
              description: 'Reverted, as one new commit (changed: false when the tree already was so).',
              json: writeResult,
            },
          },
          errors: [400, 404, 409, 410, 413, 422, 423],
        }),
      },
      async (request) => {
        const { branch } = request.params;
        // The commit must be this branch's (a revert of another branch's commit would bring its changes here), and
        // the caller must be able to write every key it changed (admin for `.store/`: a revert is a write of them).
        const commit = await store.resolve(request.body.commit, branch);
        await checkCommits(request, store, branch, [commit]);
        checkWrites(request, branch, await store.changesOf(commit));
        return store.revert(commit, {
          branch,
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
          committer: committerOf(request),
          force: forceOf(request),
        });
      },
    );
  };
}
