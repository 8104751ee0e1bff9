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
  /**
   * `serverCpuUsPerWrite`: the server process's CPU time (user and system, from /proc; null elsewhere) over the write
   * run, per commit made — what a write costs the server, which other load on the machine moves far less than rates.
   */
  writes: Latency & { commits: number; serverCpuUsPerWrite: number | null };
  /** Linearizable reads (the default: each checks the ref's version); absent with `reads: false`. */
  reads?: Latency;
  /** `?consistency=cached` reads (the head cache trusted for 10 ms); absent with `reads: false`. */
  cachedReads?: Latency;
}

/** What a run of benchHttp turns on; see there. */
export interface HttpOptions {
  auth?: boolean;
  schemas?: boolean;
  /** false: the writes only (default true: then the reads, linearizable and cached). */
  reads?: boolean;
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

/** CPU time a process has used so far, user and system, in microseconds (Linux's /proc; null elsewhere). */
function cpuUs(pid: number): number | null {
  try {
    // Fields 14 and 15 (utime, stime), counted after the command name, which may hold spaces, in clock ticks (100/s).
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return null;
  }
}

function run(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/**
 * `.store/schema.json` of the schemas-on runs (issue 18): one schema covering every key the run seeds and writes,
 * `local/domain/<vm>/cfg/<key>`, fitting their values (`v<i>` seeded, `value <n>` written): text, so each write is
 * checked as a string against length and pattern, the path a string-valued key takes.
 */
export const HTTP_SCHEMA = {
  'local/domain/*/cfg/*': { type: 'string', minLength: 1, maxLength: 64, pattern: '^v(alue )?[0-9]+$' },
};

/** The schemas-on server must refuse a value its schema does not allow, with 422 (INVALID_VALUE). */
async function expectRefused(url: string, headers: Record<string, string>): Promise<void> {
  const res = await fetch(`${url}/v1/branches/main/keys/local/domain/0/cfg/invalid`, {
    method: 'PUT',
    headers,
    body: 'not a value the schema allows',
  });
  const body = await res.text();
  if (res.status !== 422) {
    throw new Error(`an invalid value under the schema was answered ${res.status}, not 422: ${body.slice(0, 200)}`);
  }
}

/**
 * With `auth`, the store has tokens and `.store/access.json`, and every request carries the token of a role that may
 * write `local/` on main (a rule to evaluate, not the built-in admin): what authentication and authorisation cost.
 * With `schemas`, main has HTTP_SCHEMA, so every write is validated: what validation costs. Before the timed run the
 * server must refuse an invalid value with 422, and during it no write may be refused, or the run throws: a
 * comparison that checked nothing, or measured refusals, would mean nothing.
 */
export async function benchHttp(
  seconds: number,
  keys = 1000,
  connections = 50,
  options: HttpOptions = {},
): Promise<HttpFigures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-http-'));
  const repo = path.join(dir, 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  // One seeding commit either way: the schema, when there is one, is checked against the seeded values in it.
  await store.batch([
    ...(options.schemas ? [{ op: 'set' as const, key: '.store/schema.json', value: JSON.stringify(HTTP_SCHEMA) }] : []),
    ...Array.from({ length: keys }, (_, i) => ({
      op: 'set' as const,
      key: `local/domain/${i % 100}/cfg/k${Math.floor(i / 100)}`,
      value: `v${i}`,
    })),
  ]);
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
    if (options.schemas) await expectRefused(server.url, headers);
    let n = 0;
    const cpuBefore = cpuUs(server.pid);
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
    const cpuAfter = cpuUs(server.pid);
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
    if (options.schemas && writes.non2xx > 0) {
      throw new Error(`${writes.non2xx} writes were answered with an error status under the schema`);
    }
    const reads = options.reads === false ? undefined : await readRun('');
    const cachedReads = options.reads === false ? undefined : await readRun('?consistency=cached');
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
      writes: {
        ...latency(writes),
        commits,
        serverCpuUsPerWrite:
          cpuBefore === null || cpuAfter === null || commits <= 0 ? null : Math.round((cpuAfter - cpuBefore) / commits),
      },
      ...(reads && cachedReads ? { reads: latency(reads), cachedReads: latency(cachedReads) } : {}),
    };
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
