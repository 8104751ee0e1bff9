import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import { type BatchOp, type Store, StoreError } from '../../src/index.js';
import { errorSchema } from '../errors.js';
import {
  acceptRawBodies,
  authorOf,
  branchParams,
  commitHeaders,
  keyParams,
  listResponse,
  messageOf,
  readAtQuery,
  sendValue,
  writeOptionsOf,
  writeResult,
} from './shared.js';

const errors = { '4xx': errorSchema };

/** `cached` trades linearizability for speed: see ReadOptions in src/store/types.ts. */
const consistency = { type: 'string', enum: ['linearizable', 'cached'] } as const;

interface KeyRoute {
  Params: { b: string; '*': string };
  Querystring: { at?: string; nearest?: 'before'; recursive?: boolean; consistency?: 'linearizable' | 'cached' };
}

/** Values: raw bytes in and out, with the blob oid as ETag for compare-and-set. */
export function keyRoutes(store: Store): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    acceptRawBodies(app);

    app.get<KeyRoute>(
      '/v1/branches/:b/keys/*',
      {
        schema: {
          summary:
            'Read a value (raw bytes); ETag is its blob oid, X-Store-Commit the commit read (with ?at, also ' +
            'X-Store-Commit-Time: its time)',
          tags: ['keys'],
          params: keyParams,
          querystring: { type: 'object', properties: { ...readAtQuery, consistency } },
          response: errors,
        },
      },
      async (request, reply) => {
        const { b, '*': key } = request.params;
        const { at, nearest, consistency } = request.query;
        const read = await store.read(key, { branch: b, at, nearest, consistency });
        if (at !== undefined) await commitHeaders(reply, store, read.commit);
        return sendValue(request, reply, read);
      },
    );

    app.put<KeyRoute & { Body: Buffer | undefined }>(
      '/v1/branches/:b/keys/*',
      {
        schema: {
          summary: 'Write a value (the body, byte-exact); If-Match / If-None-Match: * for compare-and-set',
          tags: ['keys'],
          params: keyParams,
          response: {
            '2xx': {
              type: 'object',
              properties: { ...writeResult.properties, key: { type: 'string' }, oid: { type: 'string' } },
              required: [...writeResult.required, 'key', 'oid'],
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const { b, '*': key } = request.params;
        const r = await store.set(key, request.body ?? new Uint8Array(0), { branch: b, ...writeOptionsOf(request) });
        reply.status(r.created ? 201 : 200).header('etag', `"${r.oid}"`);
        return { commit: r.commit, changed: r.changed, key: r.key, oid: r.oid };
      },
    );

    app.delete<KeyRoute>(
      '/v1/branches/:b/keys/*',
      {
        schema: {
          summary: 'Delete a key (?recursive=true for a directory); If-Match honoured',
          tags: ['keys'],
          params: keyParams,
          querystring: { type: 'object', properties: { recursive: { type: 'boolean' } } },
          response: { 200: writeResult, ...errors },
        },
      },
      async (request) => {
        const { b, '*': key } = request.params;
        return store.delete(key, { branch: b, recursive: request.query.recursive, ...writeOptionsOf(request) });
      },
    );

    const listSchema = {
      summary:
        'List a directory (?recursive=true: every value below it); with ?at, X-Store-Commit and X-Store-Commit-Time ' +
        'name the commit read',
      tags: ['keys'],
      querystring: { type: 'object', properties: { ...readAtQuery, recursive: { type: 'boolean' }, consistency } },
      response: { 200: listResponse, ...errors },
    };
    const list = async (b: string, prefix: string, q: KeyRoute['Querystring'], reply: FastifyReply) => {
      const listed = await store.list(prefix, {
        branch: b,
        at: q.at,
        nearest: q.nearest,
        recursive: q.recursive,
        consistency: q.consistency,
      });
      if (q.at !== undefined) await commitHeaders(reply, store, listed.commit);
      return listed;
    };
    app.get<KeyRoute>('/v1/branches/:b/list/*', { schema: { ...listSchema, params: keyParams } }, (request, reply) =>
      list(request.params.b, request.params['*'], request.query, reply),
    );
    app.get<KeyRoute>('/v1/branches/:b/list', { schema: { ...listSchema, params: branchParams } }, (request, reply) =>
      list(request.params.b, '', request.query, reply),
    );
  };
}

/** Several changes as one commit; a JSON body, so it lives outside the raw-body plugin above. */
export function batchRoute(store: Store): FastifyPluginAsync {
  return async (app) => {
    app.post<{
      Params: { b: string };
      Body: { message?: string; ops: (BatchOp & { encoding?: 'base64' | 'utf8' })[] };
    }>(
      '/v1/branches/:b/batch',
      {
        schema: {
          summary: 'Apply several sets and deletes as ONE commit (all or nothing)',
          tags: ['keys'],
          params: branchParams,
          body: {
            type: 'object',
            required: ['ops'],
            additionalProperties: false,
            properties: {
              message: { type: 'string' },
              ops: {
                type: 'array',
                minItems: 1,
                items: {
                  type: 'object',
                  required: ['op', 'key'],
                  properties: {
                    op: { type: 'string', enum: ['set', 'delete'] },
                    key: { type: 'string' },
                    value: { type: 'string' },
                    encoding: { type: 'string', enum: ['utf8', 'base64'] },
                    ifMatch: { type: 'string' },
                    recursive: { type: 'boolean' },
                  },
                },
              },
            },
          },
          response: { 200: writeResult, ...errors },
        },
      },
      async (request) => {
        const ops = request.body.ops.map((op, i): BatchOp => {
          if (op.op === 'delete') return { op: 'delete', key: op.key, recursive: op.recursive, ifMatch: op.ifMatch };
          const raw = (op as { value?: string }).value;
          if (raw === undefined) throw new StoreError('INVALID_ARGUMENT', `op ${i}: a set needs a "value"`);
          const value = op.encoding === 'base64' ? Buffer.from(raw, 'base64') : raw;
          return { op: 'set', key: op.key, value, ifMatch: op.ifMatch };
        });
        return store.batch(ops, {
          branch: request.params.b,
          message: request.body.message ?? messageOf(request),
          author: authorOf(request),
        });
      },
    );
  };
}
