import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cloneStore, openStore, StoreClient } from '../src/index.js';
import { freePort } from './free-port.js';
import { startServer } from './http.js';
import { KEYS_PER_VM, keyOf, valueAt } from './workloads.js';

/**
 * Remotes and replication (issue 14):
 * - lag: three `store serve` replicas on loopback, all peered; each takes `rate` writes/s of its own keys for
 *   `seconds`; lag is from a write's acknowledgement on its replica to its event on each other replica's watch;
 * - clone: `store clone` of a repository (the W2 one after `store gc`) against `git clone --bare` of the same, both
 *   from a file:// URL (a full pack transfer, no hard links);
 * - incremental pull and push of 100 commits between two repositories on disk, over the W1 keys. (With 10,000 keys
 *   in ONE directory, each commit's tree is 400 KB and plain `git fetch` of 100 such commits alone takes ~630 ms on
 *   this machine: tree size, not the store, sets that cost.)
 */

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!) : null;
};

const git = (args: string[]) => {
  const r = spawnSync('git', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

export async function benchReplicationLag(seconds: number, rate = 100, replicas = 3) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-repl-'));
  const repos = Array.from({ length: replicas }, (_, i) => path.join(dir, `r${i}.git`));
  const seed = await openStore({ fs, dir: repos[0]!, create: true });
  await seed.set('seed', 'x');
  await seed.close();
  for (const r of repos.slice(1)) git(['clone', '--bare', '-q', repos[0]!, r]);
  const ports = await Promise.all(repos.map(() => freePort()));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const servers = await Promise.all(
    repos.map((repo, i) =>
      startServer(repo, ['--port', String(ports[i]), ...urls.filter((_, j) => j !== i).flatMap((u) => ['--peer', u])]),
    ),
  );
  const clients = urls.map((url) => new StoreClient(url));
  // arrival[i] maps a key to the time it appeared on replica i.
  const arrival = urls.map(() => new Map<string, number>());
  const watches = await Promise.all(clients.map((c) => c.watch({ prefix: 'lag' })));
  const pumps = watches.map(async (w, i) => {
    for await (const e of w) if (!arrival[i]!.has(e.key)) arrival[i]!.set(e.key, performance.now());
  });
  const { acked, failed } = await openLoop(clients, rate, seconds);
  const pending = () => [...acked].some(([k, a]) => arrival.some((m, i) => i !== a.origin && !m.has(k)));
  const settleStart = performance.now();
  while (pending() && performance.now() - settleStart < 60_000) await new Promise((r) => setTimeout(r, 50));
  const lags: number[] = [];
  let missing = 0;
  for (const [k, a] of acked)
    for (let i = 0; i < replicas; i++) {
      if (i === a.origin) continue;
      const t = arrival[i]!.get(k);
      if (t === undefined) missing++;
      else lags.push(Math.max(0, t - a.at));
    }
  const trees = repos.map((r) => git(['--git-dir', r, 'rev-parse', 'main^{tree}']));
  for (const w of watches) w.close();
  await Promise.allSettled(pumps);
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    replicas,
    writesPerSecondPerReplica: rate,
    seconds,
    acknowledged: acked.size,
    failedWrites: failed,
    lagMs: { p50: percentile(lags, 50), p99: percentile(lags, 99), max: percentile(lags, 100) },
    neverArrived: missing,
    sameTreeAtEnd: trees.every((t) => t === trees[0]),
  };
}

/**
 * Writes at `rate` per second to each client for `seconds`, open loop: a write starts every 1/rate s whether or not
 * the last one was answered, as a fleet's writes do. Each acknowledged key with when and where it was acknowledged.
 */
async function openLoop(clients: StoreClient[], rate: number, seconds: number) {
  const acked = new Map<string, { at: number; origin: number }>();
  let failed = 0;
  const until = performance.now() + seconds * 1000;
  const inFlight: Promise<void>[] = [];
  await Promise.all(
    clients.map(async (c, i) => {
      const every = 1000 / rate;
      for (let n = 0, next = performance.now(); performance.now() < until; n++) {
        const key = `lag/r${i}/k${n}`;
        inFlight.push(
          c.set(key, String(n)).then(
            () => void acked.set(key, { at: performance.now(), origin: i }),
            () => void failed++,
          ),
        );
        next += every;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }),
  );
  await Promise.all(inFlight);
  return { acked, failed };
}

/** CPU seconds a process has used (user + system; Linux's /proc, at 100 ticks per second). */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The machine's busy and total CPU ticks so far (/proc/stat; idle and iowait count as not busy). */
function machineTicks(): { busy: number; total: number } {
  const t = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  return { busy: total - t[3]! - t[4]!, total };
}

/**
 * What the lag figure's writes cost without replication: the same servers and open-loop writers, unpeered. On a
 * machine where these writes alone keep the cores busy, replication rounds queue behind them and the lag grows with
 * the queue, whatever replication itself costs.
 */
export async function benchWritesAlone(seconds: number, rate = 100, replicas = 3) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-alone-'));
  const servers = [];
  for (let i = 0; i < replicas; i++) {
    const repo = path.join(dir, `r${i}.git`);
    const s = await openStore({ fs, dir: repo, create: true });
    await s.set('seed', 'x');
    await s.close();
    servers.push(await startServer(repo, ['--port', '0']));
  }
  const clients = servers.map((s) => new StoreClient(s.url));
  const cpu0 = servers.map((s) => cpuSeconds(s.pid));
  const self0 = process.cpuUsage();
  const machine0 = machineTicks();
  const start = performance.now();
  const { acked, failed } = await openLoop(clients, rate, seconds);
  const elapsed = (performance.now() - start) / 1000;
  const machine1 = machineTicks();
  const serverCpu = servers.reduce((n, s, i) => n + cpuSeconds(s.pid) - cpu0[i]!, 0);
  const self = process.cpuUsage(self0);
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
  const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
  return {
    replicas,
    writesPerSecondPerReplica: rate,
    acknowledged: acked.size,
    failedWrites: failed,
    serverCpuMsPerWrite: round((serverCpu * 1000) / Math.max(1, acked.size), 1),
    serversCores: round(serverCpu / elapsed),
    writerProcessCores: round((self.user + self.system) / 1e6 / elapsed),
    cores: os.availableParallelism(),
    machineBusyFraction: round((machine1.busy - machine0.busy) / (machine1.total - machine0.total)),
  };
}

/** `store clone` against `git clone --bare` of `repo`, each from file:// (best of `runs`). */
export async function benchClone(repo: string, runs = 3) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-clone-'));
  const url = `file://${repo}`;
  const time = async (fn: (target: string) => Promise<void>) => {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < runs; i++) {
      const target = path.join(dir, `c${i}-${Math.random().toString(36).slice(2)}.git`);
      const start = performance.now();
      await fn(target);
      best = Math.min(best, performance.now() - start);
      fs.rmSync(target, { recursive: true, force: true });
    }
    return Math.round(best);
  };
  try {
    const gitMs = await time(async (t) => {
      git(['clone', '--bare', '-q', url, t]);
    });
    const storeMs = await time(async (t) => {
      const s = await cloneStore(url, t, { fs });
      await s.close();
    });
    const objects = git(['--git-dir', repo, 'count-objects', '-v']);
    return {
      storeCloneMs: storeMs,
      gitCloneMs: gitMs,
      storeOverGit: Math.round((storeMs / gitMs) * 100) / 100,
      objects,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Pull of 100 commits made upstream, then push of 100 commits made here, between two repositories on disk. */
export async function benchPullPush(commits = 100, runs = 3, vms = 1000) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-pullpush-'));
  try {
    const upstreamDir = path.join(dir, 'up.git');
    const up = await openStore({ fs, dir: upstreamDir, create: true });
    const keys = Array.from({ length: vms * KEYS_PER_VM }, (_, n) => keyOf(n, vms));
    await up.batch(keys.map((key, n) => ({ op: 'set' as const, key, value: valueAt(n) })));
    const here = await cloneStore(upstreamDir, path.join(dir, 'here.git'), { fs });
    const pulls: number[] = [];
    const pushes: number[] = [];
    for (let run = 0; run < runs; run++) {
      for (let i = 0; i < commits; i++) await up.set(keys[(run * 2 * commits + i) % keys.length]!, `up ${run} ${i}`);
      let start = performance.now();
      await here.pull('origin');
      pulls.push(performance.now() - start);
      for (let i = 0; i < commits; i++)
        await here.set(keys[(run * 2 * commits + commits + i) % keys.length]!, `here ${run} ${i}`);
      start = performance.now();
      await here.push('origin');
      pushes.push(performance.now() - start);
    }
    await here.close();
    await up.close();
    return {
      commits,
      keys: vms * KEYS_PER_VM,
      keyPattern: 'the W1 keys (local/domain/<vm>/cfg/k<i>); each commit sets one key',
      pullMs: { best: Math.round(Math.min(...pulls)), median: percentile(pulls, 50) },
      pushMs: { best: Math.round(Math.min(...pushes)), median: percentile(pushes, 50) },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
