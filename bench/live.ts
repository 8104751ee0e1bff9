import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../src/index.js';
import { startServer } from './http.js';
import { watchPrefix } from './watch-prefix.js';

/**
 * Transactions and watches over HTTP against `store serve` on disk (server in its own process, clients here):
 * - VM-start transactions/s with 50 concurrent clients: begin, read two shared keys under tool/, write 8 keys under
 *   the client's own local/domain/<id>/, commit;
 * - watch latency: 1,000 SSE watchers on distinct prefixes while writes are applied at a steady 500/s (and the
 *   fan-out: 10,000 watchers at 1,000 writes/s); latency is from a write's acknowledgement to its event arriving at
 *   the watcher of that prefix. The watchers live in a process of their own (bench/watchers.ts), each on its own
 *   connection.
 */

/** The writers' and transactions' connections (the watchers have their own, outside any pool). */
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

/** Options of {@link benchWatch}. */
export interface WatchBenchOptions {
  /**
   * Processes the watchers are spread over (default 1: measured, 10,000 streams connect fastest from one, 8 s
   * against 11 s from 4, and one process parses the 1,000 events/s with a core to spare).
   */
  watcherProcesses?: number;
  /** Connections each watcher process has connecting at once (default 200). */
  connectInFlight?: number;
  /** Watcher i on `local/domain/<i mod 100>/<i>` instead of `local/domain/<i>` (see bench/watch-prefix.ts). */
  nested?: boolean;
  /**
   * Writes awaiting their answer at most (default 256): when the server falls behind, the writer waits instead of
   * piling up thousands of connections, and the achieved rate says how far behind it is.
   */
  maxWritesInFlight?: number;
}

/** One forked watcher process (bench/watchers.ts) and what it has told us. */
interface WatcherProcess {
  child: ChildProcess;
  ready: Promise<{ connectMs: number; opened: number; failed: number }>;
  done: Promise<Record<string, number>>;
}

function forkWatchers(
  url: string,
  range: [number, number],
  inFlight: number,
  nested: boolean,
  arrived: Map<string, number[]>,
) {
  const [from, to] = range;
  const argv = [url, String(from), String(to), String(inFlight), nested ? 'nested' : 'flat'];
  const child = fork(path.join(import.meta.dirname, 'watchers.js'), argv, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  type Message =
    | { type: 'ready'; connectMs: number; opened: number; failed: number }
    | { type: 'arrived'; keys: string[]; times: number[] }
    | { type: 'done'; stats: Record<string, number> };
  let onReady: (v: { connectMs: number; opened: number; failed: number }) => void = () => {};
  let onDone: (v: Record<string, number>) => void = () => {};
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`watcher process ${from}..${to} exited with ${code}`))),
  );
  exited.catch(() => {});
  const ready = Promise.race([new Promise<Parameters<typeof onReady>[0]>((r) => (onReady = r)), exited]);
  const done = Promise.race([new Promise<Record<string, number>>((r) => (onDone = r)), exited]);
  child.on('message', (m: Message) => {
    if (m.type === 'ready') onReady(m);
    else if (m.type === 'done') onDone(m.stats);
    else
      m.keys.forEach((key, i) => {
        const list = arrived.get(key);
        if (list) list.push(m.times[i]!);
        else arrived.set(key, [m.times[i]!]);
      });
  });
  return { child, ready, done } satisfies WatcherProcess;
}

/** Milliseconds of the system-wide monotonic clock: comparable between the bench's processes. */
const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Watch latency and delivery: `watchers` SSE streams, watcher i on `local/domain/<i>`, each its own connection,
 * held by a few watcher processes of their own (bench/watchers.ts), while this process writes
 * `local/domain/<n mod watchers>/w<n>` at a steady `writesPerSecond` for `seconds` (open loop: a write is sent when
 * due, whether or not the earlier ones have been answered). Each write is one event for exactly one watcher, so the
 * watchers together receive `writesPerSecond` events/s whatever their number. Latency is from a write's
 * acknowledgement (as the writer saw it) to its event's arrival at its watcher (as that watcher's process saw it),
 * both on the machine's monotonic clock; an event that arrives before its write's answer counts as 0.
 * `fromSendMs` is the same from when the write was sent.
 */
export async function benchWatch(
  seconds: number,
  watchers = 1000,
  writesPerSecond = 500,
  options: WatchBenchOptions = {},
) {
  const nested = options.nested ?? false;
  // Every watcher's VM exists before the writes, as in xenstore (a VM's directory is made when it starts): without
  // them each of the first `watchers` writes would add an entry to local/domain, which re-sorts and rewrites the
  // whole directory (src/objects/tree.ts patches a wide tree in place only when its names stay the same), and at
  // 10,000 watchers the server then took 60–300 writes/s with or without watchers: VM creation, not the fan-out.
  const vms = Object.fromEntries(
    Array.from({ length: watchers }, (_, i) => [`${watchPrefix(i, nested)}/name`, `vm${i}`]),
  );
  const { dir, repo } = await seeded({ 'tool/version': '4.17', ...vms });
  const server = await startServer(repo);
  const maxInFlight = options.maxWritesInFlight ?? 256;
  const processes = options.watcherProcesses ?? 1;
  const arrived = new Map<string, number[]>(); // key → when its event(s) reached its watcher
  const sent = new Map<string, number>(); // key → when its write was sent
  const acked = new Map<string, number>(); // key → when its write was acknowledged
  const children: WatcherProcess[] = [];
  try {
    const connectStart = monotonicMs();
    for (let p = 0; p < processes; p++) {
      const from = Math.floor((p * watchers) / processes);
      const to = Math.floor(((p + 1) * watchers) / processes);
      children.push(forkWatchers(server.url, [from, to], options.connectInFlight ?? 200, nested, arrived));
    }
    const ready = await Promise.all(children.map((c) => c.ready));
    const connectMs = Math.round(monotonicMs() - connectStart);
    const opened = ready.reduce((n, r) => n + r.opened, 0);
    const failed = ready.reduce((n, r) => n + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} of ${watchers} watch streams failed to open`);

    const total = seconds * writesPerSecond;
    const pending = new Set<Promise<void>>();
    let writeErrors = 0;
    let lateStarts = 0; // writes sent more than 10 ms after they were due: the server (or the writer) fell behind
    const start = monotonicMs();
    const deadline = start + seconds * 1000;
    let n = 0;
    // Writes still unsent when the time is up are not sent: the run lasts `seconds` (and the last answers) whatever
    // rate the server manages.
    for (; n < total && monotonicMs() < deadline; n++) {
      const due = start + (n * 1000) / writesPerSecond;
      const wait = due - monotonicMs();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else if (wait < -10) lateStarts++;
      while (pending.size >= maxInFlight) await Promise.race(pending);
      const key = `${watchPrefix(n % watchers, nested)}/w${n}`;
      sent.set(key, monotonicMs());
      const write = request(`${server.url}/v1/branches/main/keys/${key}`, 'PUT', String(n)).then(
        (r) => {
          if (r.status < 300) acked.set(key, monotonicMs());
          else writeErrors++;
        },
        () => void writeErrors++,
      );
      pending.add(write);
      void write.finally(() => pending.delete(write));
    }
    await Promise.all(pending);
    const elapsed = (monotonicMs() - start) / 1000;
    // Wait until every acknowledged write's event has arrived (or 10 s pass: then the count below says what is missing).
    const missing = () => [...acked.keys()].filter((k) => !arrived.has(k)).length;
    for (let waited = 0; waited < 10_000 && missing() > 0; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const c of children) c.child.send({ type: 'stop' });
    const stats = await Promise.all(children.map((c) => c.done));
    const sum = (name: string) => stats.reduce((n, s) => n + (s[name] ?? 0), 0);

    const latencies: number[] = [];
    const fromSend: number[] = [];
    let duplicates = 0;
    for (const [key, t] of acked) {
      const a = arrived.get(key);
      if (a === undefined) continue;
      duplicates += a.length - 1;
      latencies.push(Math.max(0, a[0]! - t));
      fromSend.push(a[0]! - sent.get(key)!);
    }
    const unexpected = [...arrived.keys()].filter((k) => !acked.has(k)).length;
    return {
      watchers,
      watcherProcesses: processes,
      connect: { ms: connectMs, opened, failed },
      targetWritesPerSecond: writesPerSecond,
      seconds,
      layout: nested ? 'nested' : 'flat',
      achievedWritesPerSecond: Math.round(acked.size / elapsed),
      writes: acked.size,
      writesNotSent: total - n,
      writeErrors,
      writesSentLate: lateStarts,
      eventsReceived: latencies.length,
      eventsMissing: acked.size - latencies.length,
      eventsDuplicated: duplicates,
      eventsUnexpected: unexpected + sum('wrongPrefix'),
      streamsLost: sum('endedEarly') + sum('streamErrors'),
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: percentile(latencies, 100) },
      fromSendMs: { p50: percentile(fromSend, 50), p99: percentile(fromSend, 99), max: percentile(fromSend, 100) },
    };
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
