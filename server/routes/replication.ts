import type { FastifyInstance } from 'fastify';
import { HEADERS, ROUTES } from '../../src/http/contract.js';
import { encodeObjects, type ReplicationStatus, type Store } from '../../src/index.js';
import { operation } from '../spec.js';
import { branchParams, hex40 } from './shared.js';

const link = {
  type: 'object',
  required: ['peer', 'branch', 'state', 'lastSync', 'peerHead', 'localHead', 'rounds', 'merges'],
  properties: {
    peer: { type: 'string' },
    branch: { type: 'string' },
    state: { enum: ['starting', 'ok', 'conflict', 'invalid', 'unreachable'] },
    lastSync: { type: ['string', 'null'] },
    peerHead: { type: ['string', 'null'] },
    localHead: { type: ['string', 'null'] },
    rounds: { type: 'integer' },
    merges: { type: 'integer' },
    conflicts: { type: 'array', items: { type: 'string' } },
    error: { type: 'string' },
    since: { type: 'string' },
  },
};

/**
 * GET /v1/replication: where each replicated branch stands with each peer (empty when replication is off); and POST
 * /v1/replication/branches/:branch/objects, which a replica asks its peers each round for the commits it lacks.
 */
export function replicationRoutes(store: Store, status: () => ReplicationStatus | null) {
  return async (app: FastifyInstance) => {
    app.post<{ Params: { branch: string }; Body: { have: string[] } }>(
      ROUTES.replicationObjects,
      {
        schema: operation({
          operationId: 'replicationObjects',
          summary:
            'The commits of a branch the caller lacks, given commits it has, with their trees and blobs (how replicas ' +
            'pull each other without running git)',
          tags: ['replication'],
          params: branchParams,
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['have'],
            properties: {
              have: {
                type: 'array',
                maxItems: 64,
                items: hex40,
                description: 'Commits the caller has (its head, and the head it last took from this server).',
              },
            },
          },
          ok: {
            200: {
              description:
                'The objects, oldest commit first: `GSO1`, then per object a type byte (git’s pack codes), a 4-byte ' +
                'big-endian length and the body. X-Store-Commit is the branch head they lead to.',
              content: { type: 'application/octet-stream', schema: {} },
              headers: ['commit'],
            },
          },
          // 413: more objects are new than one answer carries (a first sync): fetch from /git with git.
          errors: [400, 404, 413],
        }),
      },
      async (request, reply) => {
        const { head, objects } = await store.outgoing(request.params.branch, request.body.have);
        reply.header(HEADERS.commit, head).type('application/octet-stream');
        return encodeObjects(objects);
      },
    );

    const schema = operation({
      operationId: 'replicationStatus',
      summary: 'Replication: each peer and branch, its state, conflicts and last sync',
      tags: ['replication'],
      ok: {
        200: {
          description: 'The replication state (no links when the server has no peers).',
          json: {
            type: 'object',
            required: ['peers', 'branches', 'intervalMs', 'links'],
            properties: {
              peers: { type: 'array', items: { type: 'string' } },
              branches: { type: 'array', items: { type: 'string' } },
              intervalMs: { type: 'integer' },
              links: { type: 'array', items: link },
            },
          },
        },
      },
      errors: [],
    });
    app.get(
      ROUTES.replication,
      { schema },
      async () => status() ?? { peers: [], branches: [], intervalMs: 0, links: [] },
    );
  };
}
