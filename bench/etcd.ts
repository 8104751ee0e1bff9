import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

/**
 * etcd figures, the same workload as bench/http.ts against etcd's JSON gateway (grpc-gateway, `/v3/kv/*`): a
 * single-member etcd on a fresh data directory with its default durability (an fsync per commit), 1,000 keys
 * preloaded, driven by autocannon from this process at 50 connections. Writes go to distinct new keys; reads hit
 * existing keys. Returns null when no `etcd` binary is on PATH.
 */

interface Figures {
  requestsPerSecond: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
}

export interface EtcdFigures {
  version: string;
  connections: number;
  keys: number;
  writes: Figures;
  reads: Figures;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** The version `etcd --version` reports, or null when etcd cannot be run. */
function etcdVersion(): string | null {
  const probe = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return null;
  return /etcd Version:\s*(\S+)/.exec(probe.stdout)?.[1] ?? probe.stdout.trim().split('\n')[0] ?? 'unknown';
}

/** Two distinct free loopback ports (both held open at once so they differ, then released for etcd). */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** Whether `child` is gone (or never started: a failed spawn has no pid and emits no 'exit'). */
const exited = (child: ChildProcess): boolean =>
  child.pid === undefined || child.exitCode !== null || child.signalCode !== null;

/** SIGTERM, wait for the exit, SIGKILL if it has not come after 5 s. */
function stopEtcd(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function post(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Polls `POST /v3/kv/range` every 50 ms until it answers 200; fails after 15 s or if etcd exits first. */
async function waitReady(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited(child)) throw new Error(`etcd exited (${child.exitCode ?? child.signalCode}) before serving:\n${log()}`);
    try {
      const res = await post(`${url}/v3/kv/range`, { key: b64('ready') });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`etcd at ${url} did not answer /v3/kv/range within 15 s:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Puts `keys` keys through the gateway, a few requests in flight at once. */
async function preload(url: string, keys: number, concurrency = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < keys; i = next++) {
      const res = await post(`${url}/v3/kv/put`, { key: b64(existingKey(i)), value: b64(`v${i}`) });
      const text = await res.text();
      if (!res.ok) throw new Error(`etcd preload put ${existingKey(i)}: ${res.status} ${text}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const existingKey = (i: number): string => `local/domain/${i % 100}/cfg/k${Math.floor(i / 100)}`;

function run(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function figures(result: autocannon.Result): Figures {
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  };
}

export async function benchEtcd(seconds: number, keys = 1000, connections = 50): Promise<EtcdFigures | null> {
  const version = etcdVersion();
  if (version === null) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-etcd-'));
  const [client, peer] = await freePorts(2);
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const child = spawn(
    'etcd',
    [
      '--data-dir',
      path.join(dir, 'data'),
      '--name',
      'default',
      '--listen-client-urls',
      url,
      '--advertise-client-urls',
      url,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `default=${peerUrl}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // etcd logs to stderr; keep only the tail, for error messages (and keep draining so it never blocks on a full pipe).
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  try {
    await spawned;
    await waitReady(url, child, () => tail);
    await preload(url, keys);
    let n = 0;
    const writes = await run({
      url,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: '/v3/kv/put',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => {
            const i = n++;
            return {
              ...req,
              body: JSON.stringify({ key: b64(`local/domain/${i % 100}/cfg/w${i}`), value: b64(`value ${i}`) }),
            };
          },
        },
      ],
    });
    const bodies = Array.from({ length: keys }, (_, i) => JSON.stringify({ key: b64(existingKey(i)) }));
    let r = 0;
    const reads = await run({
      url,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: '/v3/kv/range',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, body: bodies[r++ % keys]! }),
        },
      ],
    });
    return { version, connections, keys, writes: figures(writes), reads: figures(reads) };
  } finally {
    await stopEtcd(child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
