import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../src/index.js';
import { benchCli } from './cli.js';
import { benchFastImport, benchNaiveIsomorphicGit } from './compare.js';
import { benchHttp } from './http.js';
import { benchTransactions, benchWatch } from './live.js';

/**
 * `npm run bench`: prints one JSON object of figures. This first version measures the library's durable write path
 * on disk; `--quick` shrinks the workloads. (The comparison workloads against git fast-import, naive isomorphic-git
 * and etcd belong to the performance issue.)
 */

const quick = process.argv.includes('--quick');
const N = quick ? 1000 : 10_000;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

async function freshStore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-bench-'));
  const store = await openStore({ fs, dir: path.join(dir, 'store.git'), create: true });
  return { store, dir };
}

async function oneCaller(n: number) {
  const { store, dir } = await freshStore();
  const { ms } = await timed(async () => {
    for (let i = 0; i < n; i++) await store.set(`local/domain/${i % 100}/cfg/k${i % 7}`, `value ${i}`);
  });
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { writes: n, ms: Math.round(ms), commitsPerSecond: Math.round((n / ms) * 1000) };
}

async function concurrentCallers(n: number, callers: number) {
  const { store, dir } = await freshStore();
  let next = 0;
  const { ms } = await timed(() =>
    Promise.all(
      Array.from({ length: callers }, async () => {
        while (next < n) {
          const i = next++;
          await store.set(`local/domain/${i % 100}/cfg/k${i % 7}`, `value ${i}`);
        }
      }),
    ),
  );
  await store.close();
  const packBytes = fs
    .readdirSync(path.join(dir, 'store.git/objects/pack'))
    .reduce((sum, f) => sum + fs.statSync(path.join(dir, 'store.git/objects/pack', f)).size, 0);
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    writes: n,
    callers,
    ms: Math.round(ms),
    commitsPerSecond: Math.round((n / ms) * 1000),
    bytesPerCommit: Math.round(packBytes / n),
  };
}

const library = {
  durableOneCallerDisk: await oneCaller(N),
  durable50CallersDisk: await concurrentCallers(N, 50),
};
// The same W1 workload (100 VMs × 7 keys, one key per commit) through git fast-import and naive isomorphic-git.
const fastImportW1 = benchFastImport(N, 100);
const naiveIsomorphicGitW1 = await benchNaiveIsomorphicGit(quick ? 200 : 1000, 100);
const figures = {
  machine: { cpus: os.cpus().length, node: process.version },
  quick,
  library,
  comparisons: {
    fastImportW1,
    naiveIsomorphicGitW1,
    ratios: {
      library50CallersOverFastImport:
        Math.round((library.durable50CallersDisk.commitsPerSecond / fastImportW1.commitsPerSecond) * 100) / 100,
      library50CallersOverNaiveIsomorphicGit:
        Math.round((library.durable50CallersDisk.commitsPerSecond / naiveIsomorphicGitW1.commitsPerSecond) * 10) / 10,
      libraryOneCallerOverNaiveIsomorphicGit:
        Math.round((library.durableOneCallerDisk.commitsPerSecond / naiveIsomorphicGitW1.commitsPerSecond) * 10) / 10,
    },
  },
  http: await benchHttp(quick ? 3 : 10),
  cli: await benchCli(),
  transactions: await benchTransactions(quick ? 3 : 10),
  watch: await benchWatch(quick ? 3 : 10),
};
process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
