import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../src/index.js';
import { startServer } from './http.js';

/**
 * Transactions and watches over HTTP against `store serve` on disk (server in its own process, clients here):
 * - VM-start transactions/s with 50 concurrent clients: begin, read two shared keys under tool/, write 8 keys under
 *   the client's own local/domain/<id>/, commit;
 * - watch latency: 1,000 SSE watchers on distinct prefixes while writes are applied at a steady 500/s (and the
 *   fan-out: 10,000 watchers at 1,000 writes/s); latency is from a write's acknowledgement to its event arriving at
 *   the watcher of that prefix.
 */

const agent = new http.Agent({ keepAlive: true, maxSockets: 2000 });

function request(url: string, method: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/octet-stream' } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length
    ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10
    : null;
};

async function seeded(keys: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-live-'));
  const repo = path.join(dir, 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch(Object.entries(keys).map(([key, value]) => ({ op: 'set' as const, key, value })));
  await store.close();
  return { dir, repo };
}

export async function benchTransactions(seconds: number, clients = 50) {
  const { dir, repo } = await seeded({ 'tool/version': '4.17', 'tool/policy': 'default' });
  const server = await startServer(repo);
  let committed = 0;
  let aborted = 0;
  let next = 0;
  const until = Date.now() + seconds * 1000;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const vm = next++;
        const begin = await request(`${server.url}/v1/branches/main/transactions`, 'POST');
        const { id } = JSON.parse(begin.body) as { id: string };
        await request(`${server.url}/v1/transactions/${id}/keys/tool/version`, 'GET');
        await request(`${server.url}/v1/transactions/${id}/keys/tool/policy`, 'GET');
        for (let k = 0; k < 8; k++) {
          await request(`${server.url}/v1/transactions/${id}/keys/local/domain/${vm}/k${k}`, 'PUT', `value ${k}`);
        }
        const done = await request(`${server.url}/v1/transactions/${id}/commit`, 'POST');
        if (done.status === 200) committed++;
        else aborted++;
      }
    }),
  );
  const ms = Date.now() - start;
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return { clients, seconds, committed, aborted, transactionsPerSecond: Math.round((committed / ms) * 1000) };
}

export async function benchWatch(seconds: number, watchers = 1000, writesPerSecond = 500) {
  const { dir, repo } = await seeded({ 'tool/version': '4.17' });
  const server = await startServer(repo);
  const acked = new Map<string, number>(); // key → time its write was acknowledged
  const arrived = new Map<string, number>(); // key → time its event reached its watcher
  const streams: http.ClientRequest[] = [];
  await Promise.all(
    Array.from(
      { length: watchers },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const req = http.get(`${server.url}/v1/branches/main/watch?prefix=local/domain/${i}`, { agent }, (res) => {
            res.setEncoding('utf8');
            let buffer = '';
            res.once('data', () => resolve());
            res.on('data', (chunk: string) => {
              buffer += chunk;
              for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
                const message = buffer.slice(0, end);
                buffer = buffer.slice(end + 2);
                const data = message.split('\n').find((l) => l.startsWith('data: '));
                if (data) arrived.set((JSON.parse(data.slice(6)) as { key: string }).key, performance.now());
              }
            });
          });
          req.on('error', reject);
          streams.push(req);
        }),
    ),
  );
  const total = seconds * writesPerSecond;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / writesPerSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const key = `local/domain/${n % watchers}/w${n}`;
    pending.push(
      request(`${server.url}/v1/branches/main/keys/${key}`, 'PUT', String(n)).then(() => {
        acked.set(key, performance.now());
      }),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  // Wait until every acknowledged write's event has arrived (or 10 s pass: then the count below says what is missing).
  for (let waited = 0; waited < 10_000 && [...acked.keys()].some((k) => !arrived.has(k)); waited += 100) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const latencies: number[] = [];
  for (const [key, t] of acked) {
    const a = arrived.get(key);
    if (a !== undefined) latencies.push(Math.max(0, a - t));
  }
  for (const s of streams) s.destroy();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    watchers,
    targetWritesPerSecond: writesPerSecond,
    achievedWritesPerSecond: Math.round(total / elapsed),
    writes: total,
    eventsReceived: latencies.length,
    eventsMissing: acked.size - latencies.length,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: percentile(latencies, 100) },
  };
}
