import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BatchOp, openStore, type Store } from '../src/index.js';
import { dirBytes, sampleMaxBytes } from './disk.js';

/**
 * The issue-6 workloads: `vms` VMs × 7 keys `local/domain/<vm>/cfg/k<i>`. A repository is first prefilled with every
 * key in ONE commit (so W2 measures writes at Xenstore width, not the growth of an empty tree); then commit n sets
 * key `keyOf(n)` to `value n`, one key per commit.
 */

export const KEYS_PER_VM = 7;

export interface Workload {
  name: 'W1' | 'W2';
  vms: number;
  /** Timed commits with one caller awaiting each write. */
  nOne: number;
  /** Timed commits with 50 concurrent callers. */
  n50: number;
  /** Timed commits of the naive isomorphic-git loop (0: not run). */
  nNaive: number;
  /** Commits of fast-import timed without the glibc tunables, for comparison (see compare.ts). */
  nUntuned: number;
}

export function workloads(quick: boolean): Workload[] {
  return [
    {
      name: 'W1',
      vms: 100,
      nOne: quick ? 1000 : 10_000,
      n50: quick ? 2000 : 10_000,
      nNaive: quick ? 200 : 1000,
      nUntuned: 300,
    },
    {
      name: 'W2',
      vms: 10_000,
      nOne: quick ? 300 : 2000,
      n50: quick ? 1000 : 10_000,
      nNaive: quick ? 20 : 100,
      nUntuned: 100,
    },
  ];
}

/** The key timed commit n updates. */
export const keyOf = (n: number, vms: number): string => `local/domain/${n % vms}/cfg/k${n % KEYS_PER_VM}`;
export const valueAt = (n: number): string => `value ${n}`;

/** Every key of the workload with its prefill value, in order. */
export function prefillEntries(vms: number): { key: string; value: string }[] {
  const entries: { key: string; value: string }[] = [];
  for (let vm = 0; vm < vms; vm++) {
    for (let i = 0; i < KEYS_PER_VM; i++)
      entries.push({ key: `local/domain/${vm}/cfg/k${i}`, value: `init ${vm} ${i}` });
  }
  return entries;
}

export const prefillOps = (vms: number): BatchOp[] =>
  prefillEntries(vms).map(({ key, value }) => ({ op: 'set' as const, key, value }));

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

export const perSecond = (n: number, ms: number): number => Math.round((n / ms) * 1000);

/**
 * A fresh durable disk store under os.tmpdir(), prefilled with the workload's keys in one batch commit, closed (so
 * any maintenance is over) and opened again: the timed writes start on an existing repository, as a server would.
 */
export async function prefilledStore(
  vms: number,
  durability: Durability = 'journal',
): Promise<{ root: string; repo: string; store: Store; ms: number }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-bench-'));
  const repo = path.join(root, 'store.git');
  try {
    const first = await openStore({ fs, dir: repo, create: true });
    const { ms } = await timed(() => first.batch(prefillOps(vms)));
    await first.close();
    const store = await openStore({ fs, dir: repo, durability });
    return { root, repo, store, ms: Math.round(ms) };
  } catch (e) {
    fs.rmSync(root, { recursive: true, force: true });
    throw e;
  }
}

/** How writes are made durable (OpenOptions.durability): the journal (the default), or fsyncs per batch. */
export type Durability = 'journal' | 'sync';

/** N timed commits, one caller awaiting each. */
export async function libraryOneCaller(w: Workload, durability: Durability = 'journal') {
  const { root, store, ms: prefillMs } = await prefilledStore(w.vms, durability);
  try {
    const { ms } = await timed(async () => {
      for (let n = 0; n < w.nOne; n++) await store.set(keyOf(n, w.vms), valueAt(n));
    });
    await store.close();
    return { commits: w.nOne, callers: 1, prefillMs, ms: Math.round(ms), commitsPerSecond: perSecond(w.nOne, ms) };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export interface FiftyCallers {
  commits: number;
  callers: number;
  prefillMs: number;
  ms: number;
  commitsPerSecond: number;
  /** Bytes under objects/ after the prefill commit, before the timed commits. */
  objectBytesAfterPrefill: number;
  /** Bytes under objects/ after the run and the automatic maintenance it triggered. */
  objectBytesAfterRun: number;
  /** (objectBytesAfterRun − objectBytesAfterPrefill) / commits: what each timed commit added. */
  bytesPerCommit: number;
  /** Largest size of objects/ sampled every 100 ms from the first timed write until close() returned. */
  maxObjectBytesDuringRun: number;
  /** Batches the writer made durable (store.onBatch), and the mean number of writes per batch. */
  batches: number;
  writesPerBatch: number;
}

/**
 * N timed commits from `callers` concurrent callers. With `keep`, the repository is left in place (closed) and its
 * directories returned, for the disk figures; the caller removes `root`.
 */
export async function libraryConcurrent(
  w: Workload,
  callers: number,
  keep: boolean,
  durability: Durability = 'journal',
): Promise<{ figures: FiftyCallers; root: string; repo: string }> {
  const { root, repo, store, ms: prefillMs } = await prefilledStore(w.vms, durability);
  try {
    const objects = path.join(repo, 'objects');
    const objectBytesAfterPrefill = await dirBytes(objects);
    let batches = 0;
    let batchedWrites = 0;
    store.onBatch(({ writes }) => {
      batches++;
      batchedWrites += writes;
    });
    const sampler = sampleMaxBytes(objects, 100);
    let next = 0;
    const { ms } = await timed(() =>
      Promise.all(
        Array.from({ length: callers }, async () => {
          while (next < w.n50) {
            const n = next++;
            await store.set(keyOf(n, w.vms), valueAt(n));
          }
        }),
      ),
    );
    await store.close();
    const maxObjectBytesDuringRun = await sampler.stop();
    const objectBytesAfterRun = await dirBytes(objects);
    const figures: FiftyCallers = {
      commits: w.n50,
      callers,
      prefillMs,
      ms: Math.round(ms),
      commitsPerSecond: perSecond(w.n50, ms),
      objectBytesAfterPrefill,
      objectBytesAfterRun,
      bytesPerCommit: Math.round((objectBytesAfterRun - objectBytesAfterPrefill) / w.n50),
      maxObjectBytesDuringRun,
      batches,
      writesPerBatch: batches ? Math.round((batchedWrites / batches) * 10) / 10 : 0,
    };
    if (!keep) fs.rmSync(root, { recursive: true, force: true });
    return { figures, root, repo };
  } catch (e) {
    fs.rmSync(root, { recursive: true, force: true });
    throw e;
  }
}

/**
 * What a process that writes once pays (the CLI): open the store, one set, close, `runs` times on one repository,
 * alternating durabilities; the median milliseconds of each.
 */
export async function oneWritePerOpen(runs: number): Promise<Record<Durability, number>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-bench-'));
  const dir = path.join(root, 'store.git');
  try {
    await (await openStore({ fs, dir, create: true })).close();
    const ms: Record<Durability, number[]> = { journal: [], sync: [] };
    for (let i = 0; i < runs * 2; i++) {
      const durability: Durability = i % 2 === 0 ? 'sync' : 'journal';
      const { ms: took } = await timed(async () => {
        const store = await openStore({ fs, dir, durability });
        await store.set(`k/${i}`, `v${i}`);
        await store.close();
      });
      ms[durability].push(took);
    }
    const median = (xs: number[]) => Math.round([...xs].sort((a, b) => a - b)[xs.length >> 1]! * 100) / 100;
    return { journal: median(ms.journal), sync: median(ms.sync) };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
