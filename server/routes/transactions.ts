import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HEADERS, ROUTES } from '../../src/http/contract.js';
import type { Isolation, Store } from '../../src/index.js';
import { checkRead, checkVisible, checkWrites, forbidden, visibleListing } from '../auth.js';
import { callerOf } from '../limits.js';
import { operation } from '../spec.js';
import {
  acceptRawBodies,
  authorOf,
  branchParams,
  commitResult,
  header,
  listResponse,
  nullableHex40,
  sendValue,
  setResult,
} from './shared.js';

const id = { type: 'string', minLength: 1, description: 'The id `begin` answered.' };
const txParams = { type: 'object', properties: { id }, required: ['id'] } as const;
const txKeyParams = {
  type: 'object',
  properties: { id, '*': { type: 'string' } },
  required: ['id', '*'],
} as const;
const recursive = { type: 'boolean', description: 'A directory and everything below it.' };

interface TxKeyRoute {
  Params: { id: string; '*': string };
  Querystring: { recursive?: boolean };
}

/**
 * Who a transaction belongs to, for the per-client cap: with auth on, the token (a new X-Store-Client per request
 * must not multiply the cap); else X-Store-Client when given, else the address.
 */
const clientOf = (request: FastifyRequest) =>
  request.access.principal ? callerOf(request) : (header(request, HEADERS.client) ?? request.ip);

/** The request's transaction, when it is the caller's (with auth on, another token's is NOT_FOUND). */
function txOfStore(store: Store, request: FastifyRequest<{ Params: { id: string } }>) {
  return store.transaction(request.params.id, request.access.enabled ? clientOf(request) : undefined);
}

/** Transactions over HTTP: begin on a branch, read and write inside, commit (409 on conflict) or abort. */
export function transactionRoutes(store: Store): FastifyPluginAsync {
  const txOf = (request: FastifyRequest<{ Params: { id: string } }>) => txOfStore(store, request);
  return async (app) => {
    app.post<{ Params: { branch: string }; Body: { isolation?: Isolation } | undefined }>(
      ROUTES.begin,
      {
        // The body is optional: a bare POST begins a snapshot transaction.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: operation({
          operationId: 'beginTransaction',
          summary: 'Begin a transaction on {branch} (isolation: snapshot, the default, or serializable)',
          tags: ['transactions'],
          params: branchParams,
          headers: ['client', 'author'],
          body: {
            type: 'object',
            additionalProperties: false,
            properties: { isolation: { type: 'string', enum: ['snapshot', 'serializable'] } },
          },
          bodyOptional: true,
          ok: {
            201: {
              description: 'Begun.',
              json: {
                type: 'object',
                required: ['id', 'branch', 'base', 'isolation'],
                properties: {
                  id: { type: 'string' },
                  branch: { type: 'string' },
                  base: { ...nullableHex40, description: 'The commit it forked from (null: an empty branch).' },
                  isolation: { type: 'string', enum: ['snapshot', 'serializable'] },
                },
              },
            },
          },
          // 429: the client holds as many open transactions as it may.
          errors: [400, 404, 413, 429],
        }),
      },
      async (request, reply) => {
        if (request.access.enabled && !request.access.grants.readsBranch(request.params.branch)) {
          throw forbidden(`begin a transaction on ${request.params.branch}`);
        }
        const tx = await store.begin({
          branch: request.params.branch,
          isolation: request.body?.isolation,
          client: clientOf(request),
          author: authorOf(request),
        });
        return reply.status(201).send({ id: tx.id, branch: tx.branch, base: tx.base.commit, isolation: tx.isolation });
      },
    );

    app.post<{ Params: { id: string } }>(
      ROUTES.txCommit,
      {
        schema: operation({
          operationId: 'commitTransaction',
          summary: 'Commit: merge the transaction into its branch (409 with data.conflicts: it was aborted)',
          tags: ['transactions'],
          params: txParams,
          ok: {
            200: {
              description: 'Committed.',
              json: {
                type: 'object',
                required: ['commit', 'outcome'],
                properties: {
                  commit: nullableHex40,
                  outcome: { type: 'string', enum: ['fast-forward', 'merged', 'empty'] },
                },
              },
            },
          },
          errors: [404, 409, 422, 423],
        }),
      },
      (request) => txOf(request).commit(),
    );

    app.delete<{ Params: { id: string } }>(
      ROUTES.transaction,
      {
        schema: operation({
          operationId: 'abortTransaction',
          summary: 'Abort a transaction',
          tags: ['transactions'],
          params: txParams,
          ok: { 204: { description: 'Aborted.' } },
          errors: [404],
        }),
      },
      async (request, reply) => {
        await txOf(request).abort();
        return reply.status(204).send();
      },
    );

    await app.register(async (raw) => {
      acceptRawBodies(raw);
      raw.get<TxKeyRoute>(
        ROUTES.txKey,
        {
          schema: operation({
            operationId: 'readInTransaction',
            summary: 'Read a value as the transaction sees it',
            tags: ['transactions'],
            params: txKeyParams,
            headers: ['ifNoneMatchRead'],
            ok: {
              200: {
                description: 'The value, byte-exact.',
                content: { type: 'application/octet-stream', schema: {} },
                headers: ['etag'],
                optionalHeaders: ['commit'],
              },
              304: { description: 'The client’s copy (If-None-Match) is current.', headers: ['etag'] },
            },
            errors: [400, 404],
          }),
        },
        async (request, reply) => {
          const tx = txOf(request);
          checkRead(request, tx.branch, request.params['*']);
          return sendValue(request, reply, await tx.read(request.params['*']));
        },
      );
      raw.put<TxKeyRoute & { Body: Buffer | undefined }>(
        ROUTES.txKey,
        {
          schema: operation({
            operationId: 'writeInTransaction',
            summary: 'Write a value inside the transaction (the body, byte-exact)',
            tags: ['transactions'],
            params: txKeyParams,
            rawBody: true,
            headers: ['author'],
            ok: { 200: { description: 'Written (a commit on the transaction).', json: setResult } },
            errors: [400, 404, 409, 413],
          }),
        },
        (request) => {
          const tx = txOf(request);
          checkWrites(request, tx.branch, [{ key: request.params['*'] }]);
          return tx.set(request.params['*'], request.body ?? new Uint8Array(0), { author: authorOf(request) });
        },
      );
      raw.delete<TxKeyRoute>(
        ROUTES.txKey,
        {
          schema: operation({
            operationId: 'deleteInTransaction',
            summary: 'Delete a key inside the transaction (?recursive=true for a directory)',
            tags: ['transactions'],
            params: txKeyParams,
            querystring: { type: 'object', additionalProperties: false, properties: { recursive } },
            headers: ['author'],
            ok: { 200: { description: 'Deleted (a commit on the transaction).', json: commitResult } },
            errors: [400, 404, 409],
          }),
        },
        (request) => {
          const tx = txOf(request);
          const { recursive } = request.query;
          checkWrites(request, tx.branch, [{ key: request.params['*'], recursive }]);
          return tx.delete(request.params['*'], { recursive, author: authorOf(request) });
        },
      );
    });

    const listOperation = (operationId: string, params: Record<string, unknown>) =>
      operation({
        operationId,
        summary: 'List a directory as the transaction sees it (?recursive=true: every value below it)',
        tags: ['transactions'],
        params,
        querystring: { type: 'object', additionalProperties: false, properties: { recursive } },
        ok: { 200: { description: 'The entries, sorted by key.', json: listResponse } },
        errors: [400, 404, 409],
      });
    const list = async (
      request: FastifyRequest<{ Params: { id: string }; Querystring: { recursive?: boolean } }>,
      prefix: string,
    ) => {
      const tx = txOf(request);
      // Before listing (which a serializable transaction records): what a hidden path is, is not the caller's.
      checkVisible(request, tx.branch, prefix);
      return visibleListing(request, tx.branch, prefix, await tx.list(prefix, { recursive: request.query.recursive }));
    };
    app.get<TxKeyRoute>(ROUTES.txList, { schema: listOperation('listInTransaction', txKeyParams) }, (request) =>
      list(request, request.params['*']),
    );
    app.get<{ Params: { id: string }; Querystring: { recursive?: boolean } }>(
      ROUTES.txListRoot,
      { schema: listOperation('listRootInTransaction', txParams) },
      (request) => list(request, ''),
    );
  };
}
