import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { openStore } from '../src/index.js';

/**
 * HTTP figures: `store serve` on a disk repository of 1,000 keys in its own process, driven by autocannon from this
 * one at 50 connections. Writes go to distinct keys (one commit each); reads hit existing keys.
 */

export interface HttpFigures {
  keys: number;
  connections: number;
  writes: Latency & { commits: number };
  /** Linearizable reads (the default: each checks the ref's version). */
  reads: Latency;
  /** `?consistency=cached` reads (the head cache trusted for 10 ms). */
  cachedReads: Latency;
}

interface Latency {
  requestsPerSecond: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
}

const latency = (r: autocannon.Result): Latency => ({
  requestsPerSecond: Math.round(r.requests.average),
  p50ms: r.latency.p50,
  p99ms: r.latency.p99,
  non2xx: r.non2xx + r.errors,
});

/** `store serve` on `repo` in a process of its own; resolves with its URL once it listens. */
export async function startServer(
  repo: string,
  args: string[] = ['--port', '0'],
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const bin = path.join(import.meta.dirname, '../../bin/store.js');
  // BENCH_SERVER_NODE_ARGS: node options for the servers, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them.
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  // The bench measures capacity: one address drives every connection, so the per-caller limits are lifted.
  const unlimited = ['--rate-limit', '0', '--max-watches', '1000000'];
  const child = spawn(process.execPath, [...nodeArgs, bin, 'serve', '--repo', repo, ...unlimited, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim().split('\n')[0]!));
    child.once('exit', (code) => reject(new Error(`store serve exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function run(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/**
 * With `auth`, the store has tokens and `.store/access.json`, and every request carries the token of a role that may
 * write `local/` on main (a rule to evaluate, not the built-in admin): what authentication and authorisation cost.
 */
export async function benchHttp(
  seconds: number,
  keys = 1000,
  connections = 50,
  options: { auth?: boolean } = {},
): Promise<HttpFigures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-http-'));
  const repo = path.join(dir, 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch(
    Array.from({ length: keys }, (_, i) => ({
      op: 'set' as const,
      key: `local/domain/${i % 100}/cfg/k${Math.floor(i / 100)}`,
      value: `v${i}`,
    })),
  );
  const headers: Record<string, string> = {};
  if (options.auth) {
    await store.set(
      '.store/access.json',
      JSON.stringify({ roles: { svc: { rules: [{ branch: 'main', prefix: 'local/', access: 'write' }] } } }),
    );
    await store.access.tokens.create('ops', { roles: ['admin'] });
    headers.authorization = `Bearer ${(await store.access.tokens.create('svc', { roles: ['svc'] })).token}`;
  }
  await store.close();
  const server = await startServer(repo);
  try {
    let n = 0;
    const writes = await run({
      url: server.url,
      headers,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'PUT',
          setupRequest: (req) => ({
            ...req,
            path: `/v1/branches/main/keys/local/domain/${n % 100}/cfg/w${n++}`,
            body: `value ${n}`,
          }),
        },
      ],
    });
    const readRun = (query: string) =>
      run({
        url: server.url,
        headers,
        connections,
        duration: seconds,
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => ({
              ...req,
              path: `/v1/branches/main/keys/local/domain/${n++ % 100}/cfg/k${n % 10}${query}`,
            }),
          },
        ],
      });
    const reads = await readRun('');
    const cachedReads = await readRun('?consistency=cached');
    const after = await openStore({ fs, dir: repo });
    let commits = options.auth ? -2 : -1; // the seeding batch (and access.json) are not benchmark writes
    for (
      let page = await after.log({ limit: 10_000 });
      ;
      page = await after.log({ limit: 10_000, cursor: page.next! })
    ) {
      commits += page.commits.length;
      if (!page.next) break;
    }
    return {
      keys,
      connections,
      writes: { ...latency(writes), commits },
      reads: latency(reads),
      cachedReads: latency(cachedReads),
    };
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
