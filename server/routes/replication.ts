import type { FastifyInstance } from 'fastify';
import { ROUTES } from '../../src/http/contract.js';
import type { ReplicationStatus } from '../../src/index.js';
import { operation } from '../spec.js';

const link = {
  type: 'object',
  required: ['peer', 'branch', 'state', 'lastSync', 'peerHead', 'localHead', 'rounds', 'merges'],
  properties: {
    peer: { type: 'string' },
    branch: { type: 'string' },
    state: { enum: ['starting', 'ok', 'conflict', 'unreachable'] },
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

/** GET /v1/replication: where each replicated branch stands with each peer (empty when replication is off). */
export function replicationRoutes(status: () => ReplicationStatus | null) {
  return async (app: FastifyInstance) => {
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
