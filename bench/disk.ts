import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GcResult } from '../src/index.js';
import { CHILD_HELPERS, child, INDEX_URL } from './history.js';

/**
 * Space figures for a repository our store wrote (the W2 50-caller one): objects/ as automatic maintenance left it,
 * after `store.gc()`, and — the space reference — a copy after `git gc --aggressive --prune=now`.
 *
 * The reference is run with `-c repack.writeBitmaps=false -c gc.writeCommitGraph=false`: on a bare repository git
 * would otherwise add a reachability bitmap and a commit-graph, optional indexes that are not the objects' space.
 */

/** Total size of the regular files below `dir` (0 when it does not exist); files vanishing meanwhile are skipped. */
export async function dirBytes(dir: string): Promise<number> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else if (e.isFile()) {
      try {
        total += (await fs.promises.stat(p)).size;
      } catch {
        // removed by maintenance between readdir and stat
      }
    }
  }
  return total;
}

/** Samples `dir`'s size every `everyMs` (one sample at a time) until stop(), which takes a last one and returns the max. */
export function sampleMaxBytes(dir: string, everyMs: number): { stop: () => Promise<number> } {
  let max = 0;
  let running: Promise<void> | null = null;
  const sample = () => {
    running ??= dirBytes(dir)
      .then((bytes) => {
        max = Math.max(max, bytes);
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  void sample();
  const timer = setInterval(() => void sample(), everyMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
      await sample();
      return max;
    },
  };
}

/** Opens the store and runs Store.gc() (null while Store has no gc); prints its result and the peak RSS. */
const GC_SCRIPT = `
import fs from 'node:fs';
${CHILD_HELPERS}
const [url, dir] = process.argv.slice(1);
const { openStore } = await import(url);
const store = await openStore({ fs, dir });
const result = typeof store.gc === 'function' ? await store.gc() : null;
await store.close();
process.stdout.write(JSON.stringify({ result, peakRssMB: peakRssMB() }));
`;

const round2 = (x: number) => Math.round(x * 100) / 100;
const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a == null || b == null || b === 0 ? null : round2(a / b);

const packCount = (repo: string) => {
  try {
    return fs.readdirSync(path.join(repo, 'objects/pack')).filter((f) => f.endsWith('.pack')).length;
  } catch {
    return 0;
  }
};

/** The commits reachable from every ref, by git itself. */
function commitCount(repo: string): number | null {
  const r = spawnSync('git', ['--git-dir', repo, 'rev-list', '--all', '--count'], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : null;
}

/**
 * Disk figures of `repo` (closed, written by the store). `maxDuringRun` is the largest objects/ size sampled while it
 * was written. Each `bytesPerCommit` divides the whole objects/ size by every commit in the repository (prefill
 * commit included, so for W2 it carries the 70,000-key prefill too).
 */
export async function benchDisk(repo: string, maxDuringRun: number | null) {
  const objects = path.join(repo, 'objects');
  const commits = commitCount(repo);
  const perCommit = (bytes: number | null) => (bytes == null || !commits ? null : Math.round(bytes / commits));
  const withMaintenance = { bytes: await dirBytes(objects), packs: packCount(repo) };

  // The space reference, on a copy taken before our gc so both start from the same repository.
  const copyRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-gc-'));
  const copy = path.join(copyRoot, 'copy.git');
  let gitGcAggressive: { bytes: number; ms: number; packs: number; bytesPerCommit: number | null } | { error: string };
  try {
    fs.cpSync(repo, copy, { recursive: true });
    const start = process.hrtime.bigint();
    const r = spawnSync(
      'git',
      [
        '-C',
        copy,
        '-c',
        'repack.writeBitmaps=false',
        '-c',
        'gc.writeCommitGraph=false',
        'gc',
        '--aggressive',
        '--prune=now',
        '-q',
      ],
      { encoding: 'utf8' },
    );
    const ms = Math.round(Number(process.hrtime.bigint() - start) / 1e6);
    if (r.status !== 0) throw new Error(`git gc --aggressive failed (${r.status}): ${r.stderr}`);
    const bytes = await dirBytes(path.join(copy, 'objects'));
    gitGcAggressive = { bytes, ms, packs: packCount(copy), bytesPerCommit: perCommit(bytes) };
  } catch (e) {
    gitGcAggressive = { error: (e as Error).message };
  } finally {
    fs.rmSync(copyRoot, { recursive: true, force: true });
  }

  // store.gc() in a process of its own: its peak RSS is a figure, and its heap does not stay in this one.
  let storeGc:
    | { bytes: number; bytesPerCommit: number | null; packs: number; peakRssMB: number; result: GcResult }
    | { error: string }
    | null = null;
  try {
    const r = child<{ result: GcResult | null; peakRssMB: number }>(GC_SCRIPT, [INDEX_URL, repo]);
    if (r.result) {
      const bytes = await dirBytes(objects);
      storeGc = {
        bytes,
        bytesPerCommit: perCommit(bytes),
        packs: packCount(repo),
        peakRssMB: Math.round(r.peakRssMB),
        result: r.result,
      };
    }
  } catch (e) {
    storeGc = { error: (e as Error).message };
  }

  const reference = 'bytes' in gitGcAggressive ? gitGcAggressive.bytes : null;
  const afterGc = storeGc && 'bytes' in storeGc ? storeGc.bytes : null;
  return {
    commits,
    withMaintenance: { ...withMaintenance, bytesPerCommit: perCommit(withMaintenance.bytes) },
    maxDuringRun: maxDuringRun == null ? null : { bytes: maxDuringRun, bytesPerCommit: perCommit(maxDuringRun) },
    afterStoreGc: storeGc,
    ...(storeGc === null ? { note: 'this build of Store has no gc(): afterStoreGc is null' } : {}),
    gitGcAggressive,
    ratios: {
      withMaintenanceOverGitGcAggressive: ratio(withMaintenance.bytes, reference),
      afterGcOverGitGcAggressive: ratio(afterGc, reference),
      maxDuringRunOverGitGcAggressive: ratio(maxDuringRun, reference),
    },
  };
}
