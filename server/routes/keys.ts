import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { decodeValue, formatEtag, HEADERS, ROUTES } from '../../src/http/contract.js';
import { type BatchOp, type Store, StoreError } from '../../src/index.js';
import { checkVisible, checkWrites, visibleListing } from '../auth.js';
import { readAt } from '../history-access.js';
import { operation, READ_ERRORS, WRITE_ERRORS } from '../spec.js';
import {
  acceptRawBodies,
  authorOf,
  branchParams,
  commitHeaders,
  committerOf,
  consistencyQuery,
  forceOf,
  keyParams,
  listResponse,
  messageOf,
  readAtQuery,
  sendValue,
  setWriteResult,
  writeOptionsOf,
  writeResult,
} from './shared.js';

interface KeyRoute {
  Params: { branch: string; '*': string };
  Querystring: {
    at?: string;
    nearest?: 'before';
    recursive?: boolean;
    consistency?: 'linearizable' | 'cached';
    limit?: number;
    offset?: number;
  };
}

const recursive = { type: 'boolean', description: 'A directory and everything below it.' };

/** A page of a listing: a large directory's first screen need not wait for all of it (the web UI's tree). */
const page = {
  limit: { type: 'integer', minimum: 1, description: 'At most this many entries (the answer then has `total`).' },
  offset: {
    type: 'integer',
    minimum: 0,
    description: 'Skip this many first (read the next page `at` the same commit).',
  },
} as const;

/** Values: raw bytes in and out, with the blob oid as ETag for compare-and-set. */
export function keyRoutes(store: Store): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    acceptRawBodies(app);

    app.get<KeyRoute>(
      ROUTES.key,
      {
        schema: operation({
          operationId: 'readKey',
          summary: 'Read a value (raw bytes); ETag is its blob oid, X-Store-Commit the commit read',
          tags: ['keys'],
          params: keyParams,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { ...readAtQuery, consistency: consistencyQuery },
          },
          headers: ['ifNoneMatchRead'],
          ok: {
            200: {
              description: 'The value, byte-exact.',
              content: { type: 'application/octet-stream', schema: {} },
              headers: ['etag', 'commit'],
              optionalHeaders: ['commitTime'],
            },
            304: {
              description: 'The client’s copy (If-None-Match) is current.',
              headers: ['etag', 'commit'],
              optionalHeaders: ['commitTime'],
            },
          },
          errors: READ_ERRORS,
        }),
      },
      async (request, reply) => {
        const { branch, '*': key } = request.params;
        const { consistency } = request.query;
        // A revision of another branch must not be read with this branch's rights (server/history-access.ts).
        const { at, nearest } = await readAt(request, store, branch, request.query.at, request.query.nearest);
        const read = await store.read(key, { branch, at, nearest, consistency });
        if (at !== undefined) await commitHeaders(reply, store, read.commit);
        return sendValue(request, reply, read);
      },
    );

    app.put<KeyRoute & { Body: Buffer | undefined }>(
      ROUTES.key,
      {
        schema: operation({
          operationId: 'writeKey',
          summary: 'Write a value (the body, byte-exact); If-Match / If-None-Match: * for compare-and-set',
          tags: ['keys'],
          params: keyParams,
          rawBody: true,
          headers: ['ifMatch', 'ifNoneMatchWrite', 'message', 'author', 'committer', 'force'],
          ok: {
            200: {
              description: 'Replaced a value, or (changed: false) it was already there: no commit was made.',
              json: setWriteResult,
              headers: ['etag'],
            },
            201: { description: 'Created the key.', json: setWriteResult, headers: ['etag'] },
          },
          errors: WRITE_ERRORS,
        }),
      },
      async (request, reply) => {
        const { branch, '*': key } = request.params;
        const r = await store.set(key, request.body ?? new Uint8Array(0), { branch, ...writeOptionsOf(request) });
        reply.status(r.created ? 201 : 200).header(HEADERS.etag, formatEtag(r.oid));
        return { commit: r.commit, changed: r.changed, key: r.key, oid: r.oid };
      },
    );

    app.delete<KeyRoute>(
      ROUTES.key,
      {
        schema: operation({
          operationId: 'deleteKey',
          summary: 'Delete a key (?recursive=true for a directory); If-Match honoured',
          tags: ['keys'],
          params: keyParams,
          querystring: { type: 'object', additionalProperties: false, properties: { recursive } },
          headers: ['ifMatch', 'message', 'author', 'committer', 'force'],
          ok: { 200: { description: 'Deleted.', json: writeResult } },
          errors: WRITE_ERRORS,
        }),
      },
      async (request) => {
        const { branch, '*': key } = request.params;
        return store.delete(key, { branch, recursive: request.query.recursive, ...writeOptionsOf(request) });
      },
    );

    const listOperation = (operationId: string, params: Record<string, unknown>, what: string) =>
      operation({
        operationId,
        summary: `List ${what} (?recursive=true: every value below it)`,
        tags: ['keys'],
        params,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...readAtQuery, recursive, consistency: consistencyQuery, ...page },
        },
        ok: {
          200: {
            description: 'The entries, sorted by key.',
            json: listResponse,
            optionalHeaders: ['commit', 'commitTime'],
          },
        },
        // 409: the prefix is a value, not a directory.
        errors: [...READ_ERRORS, 409],
      });
    const list = async (request: FastifyRequest<KeyRoute>, prefix: string, reply: FastifyReply) => {
      const { branch } = request.params;
      const { recursive, consistency } = request.query;
      // Before listing: whether a path it may not see is a value, a directory or nothing is not the caller's to learn.
      checkVisible(request, branch, prefix);
      const { at, nearest } = await readAt(request, store, branch, request.query.at, request.query.nearest);
      const listed = await store.list(prefix, { branch, at, nearest, recursive, consistency });
      if (at !== undefined) await commitHeaders(reply, store, listed.commit);
      const visible = visibleListing(request, branch, prefix, listed);
      const { limit, offset } = request.query;
      if (limit === undefined && offset === undefined) return visible;
      const from = offset ?? 0;
      const entries = visible.entries.slice(from, limit === undefined ? undefined : from + limit);
      return { ...visible, entries, total: visible.entries.length };
    };
    app.get<KeyRoute>(ROUTES.list, { schema: listOperation('listKeys', keyParams, 'a directory') }, (request, reply) =>
      list(request, request.params['*'], reply),
    );
    app.get<KeyRoute>(
      ROUTES.listRoot,
      { schema: listOperation('listRoot', branchParams, 'the top directory') },
      (request, reply) => list(request, '', reply),
    );
  };
}

/** A batch op as it arrives: a value is text, or base64 with `encoding`. */
type WireOp = BatchOp & { value?: string; encoding?: 'base64' | 'utf8'; recursive?: boolean };

/** A batch op's value as bytes; base64 is checked, not decoded leniently (node drops what it cannot read). */
function opValue(op: WireOp, i: number): string | Uint8Array {
  if (op.value === undefined) throw new StoreError('INVALID_ARGUMENT', `op ${i}: a set needs a "value"`, { op: i });
  return decodeValue({ value: op.value, encoding: op.encoding }, `op ${i}: "value"`, { op: i });
}

const batchOpSchema = {
  type: 'object',
  required: ['op', 'key'],
  additionalProperties: false,
  properties: {
    op: { type: 'string', enum: ['set', 'delete'] },
    key: { type: 'string' },
    value: { type: 'string', description: 'For a set: the value, as text or (with encoding "base64") base64.' },
    encoding: { type: 'string', enum: ['utf8', 'base64'], description: 'How `value` is written (default utf8).' },
    ifMatch: { type: 'string', description: 'Only if the key has this blob oid (or `*`: any value).' },
    ifNoneMatch: { type: 'boolean', description: 'Only if the key is absent.' },
    recursive: { type: 'boolean', description: 'For a delete: a directory and everything below it.' },
  },
} as const;

/** Several changes as one commit; a JSON body, so it lives outside the raw-body plugin above. */
export function batchRoute(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Params: { branch: string }; Body: { message?: string; ops: WireOp[] } }>(
      ROUTES.batch,
      {
        schema: operation({
          operationId: 'batch',
          summary: 'Apply several sets and deletes as ONE commit (all or nothing)',
          tags: ['keys'],
          params: branchParams,
          headers: ['message', 'author', 'committer', 'force'],
          body: {
            type: 'object',
            required: ['ops'],
            additionalProperties: false,
            properties: {
              message: { type: 'string' },
              ops: { type: 'array', minItems: 1, items: batchOpSchema },
            },
          },
          ok: {
            200: { description: 'Applied, as one commit (changed: false when it changed nothing).', json: writeResult },
          },
          errors: WRITE_ERRORS,
        }),
      },
      async (request) => {
        const ops = request.body.ops.map((op, i): BatchOp => {
          const pre = { ifMatch: op.ifMatch, ifNoneMatch: op.ifNoneMatch };
          if (op.op === 'delete') {
            if (op.value !== undefined || op.encoding !== undefined) {
              throw new StoreError('INVALID_ARGUMENT', `op ${i}: a delete takes no "value" or "encoding"`, { op: i });
            }
            return { op: 'delete', key: op.key, recursive: op.recursive, ...pre };
          }
          if (op.recursive !== undefined) {
            throw new StoreError('INVALID_ARGUMENT', `op ${i}: a set takes no "recursive"`, { op: i });
          }
          return { op: 'set', key: op.key, value: opValue(op, i), ...pre };
        });
        checkWrites(request, request.params.branch, ops);
        return store.batch(ops, {
          branch: request.params.branch,
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
          committer: committerOf(request),
          force: forceOf(request),
        });
      },
    );
  };
}
