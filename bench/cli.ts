import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../src/index.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeRuns(args: string[], runs: number, cwd?: string): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return Math.round(median(times));
}

/** Wall time of `store get` on a 1,000-key repository (median of 20 runs), beside bare `node -e 0`. */
export async function benchCli(
  runs = 20,
): Promise<{ keys: number; runs: number; storeGetMedianMs: number; nodeStartMedianMs: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-cli-'));
  const repo = path.join(dir, 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch(Array.from({ length: 1000 }, (_, i) => ({ op: 'set' as const, key: `cfg/k${i}`, value: `v${i}` })));
  await store.close();
  const bin = path.join(import.meta.dirname, '../../bin/store.js');
  const storeGetMedianMs = timeRuns([bin, '--repo', repo, 'get', 'cfg/k500'], runs);
  const nodeStartMedianMs = timeRuns(['-e', '0'], runs);
  fs.rmSync(dir, { recursive: true, force: true });
  return { keys: 1000, runs, storeGetMedianMs, nodeStartMedianMs };
}
