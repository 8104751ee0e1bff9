import type { FastifyInstance } from 'fastify';
import { ROUTES } from '../src/http/contract.js';
import type { ReplicationStatus, Store } from '../src/index.js';
import { operation } from './spec.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number) {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }
  render(name: string): string {
    const lines = this.buckets.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`);
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines.join('\n');
  }
}

/** Prometheus metrics: requests by route and status, latency, commits and write-batch sizes. */
/** The replication metrics, per peer and branch: its state, its conflicting keys, rounds and merges, last sync. */
function replicationMetrics(status: ReplicationStatus | null): string[] {
  if (!status || status.links.length === 0) return [];
  const label = (l: ReplicationStatus['links'][number]) =>
    `peer="${l.peer.replace(/["\\\n]/g, '_')}",branch="${l.branch}"`;
  const metric = (name: string, type: string, help: string, samples: string[]) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} ${type}`,
    ...samples,
  ];
  const states = ['starting', 'ok', 'conflict', 'invalid', 'unreachable'] as const;
  const each = (f: (l: ReplicationStatus['links'][number]) => string) => status.links.map(f);
  return [
    ...metric(
      'gitstore_replication_state',
      'gauge',
      'The state each replicated branch is in with each peer (1 for its state).',
      status.links.flatMap((l) =>
        states.map((s) => `gitstore_replication_state{${label(l)},state="${s}"} ${l.state === s ? 1 : 0}`),
      ),
    ),
    ...metric(
      'gitstore_replication_conflicting_keys',
      'gauge',
      'Keys in conflict that stop a branch replicating from a peer until merged by hand.',
      each((l) => `gitstore_replication_conflicting_keys{${label(l)}} ${l.conflicts?.length ?? 0}`),
    ),
    ...metric(
      'gitstore_replication_rounds_total',
      'counter',
      'Pull-and-push rounds run.',
      each((l) => `gitstore_replication_rounds_total{${label(l)}} ${l.rounds}`),
    ),
    ...metric(
      'gitstore_replication_merges_total',
      'counter',
      "Rounds that merged a peer's commits in.",
      each((l) => `gitstore_replication_merges_total{${label(l)}} ${l.merges}`),
    ),
    ...metric(
      'gitstore_replication_last_sync_seconds',
      'gauge',
      'Unix time of the last round that pulled without error (0: none yet).',
      each(
        (l) => `gitstore_replication_last_sync_seconds{${label(l)}} ${l.lastSync ? Date.parse(l.lastSync) / 1000 : 0}`,
      ),
    ),
  ];
}

export function installMetrics(
  app: FastifyInstance,
  store: Store,
  replication: () => ReplicationStatus | null = () => null,
): void {
  const requests = new Map<string, number>();
  const latency = new Histogram(LATENCY_BUCKETS);
  const batches = new Histogram(BATCH_BUCKETS);
  let commits = 0;
  store.onBatch(({ writes }) => {
    commits += writes;
    batches.observe(writes);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const label = `method="${request.method}",route="${route}",status="${reply.statusCode}"`;
    requests.set(label, (requests.get(label) ?? 0) + 1);
    latency.observe(reply.elapsedTime / 1000);
  });
  const schema = operation({
    operationId: 'metrics',
    summary: 'Prometheus metrics',
    tags: ['meta'],
    ok: {
      200: {
        description: 'The metrics, in the Prometheus text format.',
        content: { type: 'text/plain', schema: { type: 'string' } },
      },
    },
    errors: [],
  });
  app.get(ROUTES.metrics, { schema }, async (_request, reply) => {
    const out = [
      '# HELP gitstore_http_requests_total HTTP requests by route and status.',
      '# TYPE gitstore_http_requests_total counter',
      ...[...requests].map(([label, n]) => `gitstore_http_requests_total{${label}} ${n}`),
      '# HELP gitstore_http_request_duration_seconds Time to answer a request.',
      '# TYPE gitstore_http_request_duration_seconds histogram',
      latency.render('gitstore_http_request_duration_seconds'),
      '# HELP gitstore_commits_total Commits made durable by this server.',
      '# TYPE gitstore_commits_total counter',
      `gitstore_commits_total ${commits}`,
      '# HELP gitstore_write_batch_size Writes made durable together (one pack, one ref update).',
      '# TYPE gitstore_write_batch_size histogram',
      batches.render('gitstore_write_batch_size'),
      ...replicationMetrics(replication()),
      '',
    ];
    reply.type('text/plain; version=0.0.4');
    return out.join('\n');
  });
}
