import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { type BatchOp, type Store, StoreError } from '../../src/index.js';
import { errorSchema } from '../errors.js';
import {
  acceptRawBodies,
  authorOf,
  branchParams,
  committerOf,
  keyParams,
  listResponse,
  messageOf,
  sendValue,
  writeOptionsOf,
} from './shared.js';

const errors = { '4xx': errorSchema };

interface KeyRoute {
  Params: { b: string; '*': string };
  Querystring: { at?: string; recursive?: boolean };
}

/** Values: raw bytes in and out, with the blob oid as ETag for compare-and-set. */
export function keyRoutes(store: Store): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    acceptRawBodies(app);

    app.get<KeyRoute>(
      '/v1/branches/:b/keys/*',
      {
        schema: {
          summary: 'Read a value (raw bytes); ETag is its blob oid, X-Store-Commit the commit read',
          tags: ['keys'],
          params: keyParams,
          querystring: { type: 'object', properties: { at: { type: 'string' } } },
          response: errors,
        },
      },
      async (request, reply) => {
        const { b, '*': key } = request.params;
        return sendValue(request, reply, await store.read(key, { branch: b, at: request.query.at }));
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
              properties: { commit: { type: 'string' }, key: { type: 'string' }, oid: { type: 'string' } },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const { b, '*': key } = request.params;
        const r = await store.set(key, request.body ?? new Uint8Array(0), { branch: b, ...writeOptionsOf(request) });
        reply.status(r.created ? 201 : 200).header('etag', `"${r.oid}"`);
        return { commit: r.commit, key: r.key, oid: r.oid };
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
          response: { 200: { type: 'object', properties: { commit: { type: 'string' } } }, ...errors },
        },
      },
      async (request) => {
        const { b, '*': key } = request.params;
        return store.delete(key, { branch: b, recursive: request.query.recursive, ...writeOptionsOf(request) });
      },
    );

    const listSchema = {
      summary: 'List a directory (?recursive=true: every value below it)',
      tags: ['keys'],
      querystring: { type: 'object', properties: { at: { type: 'string' }, recursive: { type: 'boolean' } } },
      response: { 200: listResponse, ...errors },
    };
    const list = async (b: string, prefix: string, q: { at?: string; recursive?: boolean }) =>
      store.list(prefix, { branch: b, at: q.at, recursive: q.recursive });
    app.get<KeyRoute>('/v1/branches/:b/list/*', { schema: { ...listSchema, params: keyParams } }, (request) =>
      list(request.params.b, request.params['*'], request.query),
    );
    app.get<KeyRoute>('/v1/branches/:b/list', { schema: { ...listSchema, params: branchParams } }, (request) =>
      list(request.params.b, '', request.query),
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
          response: { 200: { type: 'object', properties: { commit: { type: 'string' } } }, ...errors },
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
          committer: committerOf(request),
        });
      },
    );
  };
}
