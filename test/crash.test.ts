import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type FsLike, openStore, type Store } from '../src/index.js';
import { gitEnv, random, tempDir } from './helpers.js';
import { FaultFs } from './support/fault-fs.js';

/**
 * Power loss, simulated (issue 16). A store runs a workload on the fault file system (test/support/fault-fs.ts) —
 * single writes, concurrent writes that share a journal flush, batches, transactions, a merge, gc, a compaction, a
 * checkpoint, a close and reopen — and the power goes off at a random change. The disk as it comes back (only what
 * was made durable) is opened again, which runs recovery; sometimes the power goes off during that recovery too, and
 * the disk is opened once more. Then:
 * - every write acknowledged before the cut is there, on its branch;
 * - every ref names a commit that is there, and `git fsck --strict` finds the repository clean;
 * - the store takes a new write.
 * `npm test` runs CRASH_POINTS (default 20) crash points; `npm run test:slow` runs 1,000.
 */

const DIR = '/store.git';
const START = Date.parse('2026-01-01T00:00:00Z');

/** A clock that moves 10 minutes per commit, so compaction has history to thin. */
function stepClock() {
  let t = START;
  return () => {
    t += 600_000;
    return new Date(t);
  };
}

/**
 * A store on the file system. After a cut, `staleLockMs: 0`: the disk comes back after the time a reboot takes,
 * when a lock the cut left (its owner unknown: its content was never flushed) is old.
 */
const open = (fsLike: FsLike, options: { create?: boolean; afterCut?: boolean } = {}) =>
  openStore({
    fs: fsLike,
    dir: DIR,
    create: options.create,
    clock: stepClock(),
    journal: { checkpointMs: 5 },
    ...(options.afterCut ? { staleLockMs: 0 } : {}),
  });

/** What was acknowledged: branch → key → value. */
type Acked = Map<string, Map<string, string>>;

function ack(acked: Acked, branch: string, key: string, value: string) {
  const keys = acked.get(branch) ?? new Map<string, string>();
  keys.set(key, value);
  acked.set(branch, keys);
}

/**
 * The workload, step by step; returns when done or at the first failure (the power cut). `seed` varies the order
 * of steps and their sizes.
 */
async function workload(fault: FaultFs, seed: number, acked: Acked): Promise<void> {
  const rnd = random(seed);
  let store = null as unknown as Store;
  let n = 0;
  const key = () => `k/${seed}/${n++}`;
  const steps: (() => Promise<void>)[] = [
    async () => {
      const k = key();
      await store.set(k, `v${k}`);
      ack(acked, 'main', k, `v${k}`);
    },
    async () => {
      // Concurrent writes: one batch, one journal record.
      const keys = Array.from({ length: 2 + rnd(6) }, key);
      await Promise.all(
        keys.map(async (k) => {
          await store.set(k, `c${k}`);
          ack(acked, 'main', k, `c${k}`);
        }),
      );
    },
    async () => {
      const keys = [key(), key(), key()];
      await store.batch(keys.map((k) => ({ op: 'set' as const, key: k, value: `b${k}` })));
      for (const k of keys) ack(acked, 'main', k, `b${k}`);
    },
    async () => {
      const tx = await store.begin();
      const keys = [key(), key()];
      for (const k of keys) await tx.set(k, `t${k}`);
      await tx.commit();
      for (const k of keys) ack(acked, 'main', k, `t${k}`);
    },
    async () => {
      const branch = `side${n}`;
      await store.createBranch(branch);
      const k = key();
      await store.set(k, `s${k}`, { branch });
      ack(acked, branch, k, `s${k}`);
      await store.merge(branch);
      ack(acked, 'main', k, `s${k}`);
    },
    async () => {
      await store.gc();
    },
    async () => {
      await store.compact({
        policy: [
          { within: '1h', keep: 'all' },
          { within: '30d', every: '1d' },
        ],
      });
    },
    async () => {
      await store.checkpoint();
    },
    async () => {
      await store.close();
      store = await open(fault as unknown as FsLike);
    },
  ];
  try {
    store = await open(fault as unknown as FsLike, { create: true });
    for (let i = 0; i < 24; i++) await steps[i < 2 ? 0 : rnd(steps.length)]!();
    await store.close();
  } catch (e) {
    if ((e as { code?: string }).code !== 'EIO' && !fault.off) throw e;
  }
}

/** The memfs volume written out to a directory, for git. */
function toDisk(volume: ReturnType<FaultFs['image']>, dir: string): void {
  const copy = (from: string, to: string) => {
    fs.mkdirSync(to, { recursive: true });
    for (const name of volume.readdirSync(from) as string[]) {
      const src = `${from}/${name}`;
      if (volume.statSync(src).isDirectory()) copy(src, path.join(to, name));
      else fs.writeFileSync(path.join(to, name), volume.readFileSync(src) as Buffer);
    }
  };
  copy(DIR, dir);
}

async function check(volume: ReturnType<FaultFs['image']>, acked: Acked, where: string): Promise<void> {
  // Cut before the repository was made: nothing can have been acknowledged.
  if (acked.size === 0 && !volume.existsSync(`${DIR}/HEAD`)) return;
  const store = await open(volume as unknown as FsLike, { afterCut: true });
  for (const [branch, keys] of acked) {
    for (const [k, v] of keys) {
      const got = await store.getText(k, { branch }).catch((e: Error) => `missing (${e.message})`);
      if (got !== v) throw new Error(`${where}: ${branch}:${k} is ${got}, not ${v}`);
    }
  }
  for (const b of await store.branches()) await store.db.readCommit(b.head);
  await store.set('after/crash', 'written');
  await store.close();
  const dir = path.join(tempDir('gitstore-crash-'), 'store.git');
  toDisk(volume, dir);
  const r = spawnSync('git', ['--git-dir', dir, 'fsck', '--strict', '--full'], { env: gitEnv, encoding: 'utf8' });
  expect(r.status, `${where}: git fsck\n${r.stdout}${r.stderr}`).toBe(0);
}

/** Opens the store on a disk after a cut (which runs recovery) and closes it; a cut during either ends it there. */
async function reopen(fault: FaultFs): Promise<void> {
  await open(fault as unknown as FsLike, { afterCut: true })
    .then((s) => s.close())
    .catch((e: { code?: string }) => {
      if (e.code !== 'EIO') throw e;
    });
}

/**
 * One crash point: the workload of `seed` with the power cut at change `cut`, then (with `recoveryCut`) again at
 * that change of the recovery that follows; then the checks. Returns the fault file systems' logs, for debugging.
 */
async function crashPoint(seed: number, cut: number, recoveryCut: number | null): Promise<string[][]> {
  const where = `seed ${seed}, cut at change ${cut}${recoveryCut === null ? '' : `, then at ${recoveryCut} of recovery`}`;
  const fault = new FaultFs();
  fault.cutAt(cut);
  const acked: Acked = new Map();
  await workload(fault, seed, acked);
  let disk = fault.image();
  const logs = [fault.log];
  // (A cut before the repository was made leaves nothing to recover.)
  if (recoveryCut !== null && disk.existsSync(`${DIR}/HEAD`)) {
    const again = new FaultFs(disk);
    again.cutAt(recoveryCut);
    await reopen(again);
    disk = again.image();
    logs.push(again.log);
  }
  try {
    await check(disk, acked, where);
  } catch (e) {
    // The checkpoint timer moves with the machine's load, so a point may not repeat: the changes before each cut
    // are what a failure in CI leaves to go on.
    const tails = logs.map(
      (log, i) => `${i === 0 ? 'workload' : 'recovery'}, last changes:\n${log.slice(-40).join('\n')}`,
    );
    throw new Error(`${(e as Error).message}\n${tails.join('\n')}`);
  }
  return logs;
}

async function crashPoints(count: number): Promise<void> {
  // CRASH_ONLY=seed:cut[:recoveryCut] runs one point and prints the changes before each cut.
  const only = process.env.CRASH_ONLY?.split(':').map(Number);
  if (only) {
    const logs = await crashPoint(only[0]!, only[1]!, only[2] ?? null);
    for (const log of logs) console.log(log.slice(-30).join('\n'));
    return;
  }
  // How many changes the workload makes without a cut: the range of the cut points.
  const dry = new FaultFs();
  await workload(dry, 1, new Map());
  const total = dry.count;
  const rnd = random(Number(process.env.CRASH_SEED ?? 16));
  for (let i = 0; i < count; i++) {
    const seed = 1 + rnd(5);
    const cut = 1 + rnd(total);
    // One in four: the power goes off again, during the recovery.
    const recoveryCut = i % 4 === 0 ? 1 + rnd(40) : null;
    await crashPoint(seed, cut, recoveryCut);
  }
}

/**
 * A cut at each change of one recovery, in turn, of a disk that holds a dead process's journal and a torn pack (an
 * idx and a pack whose data never reached the disk). Deterministic, unlike the random points above, whose
 * checkpoint timer varies with the machine's load: a random run once found the torn pack left for good by a cut
 * between removing the journal and removing the pack.
 */
async function everyRecoveryCut(): Promise<number> {
  const fault = new FaultFs();
  const store = await open(fault as unknown as FsLike, { create: true });
  const acked: Acked = new Map();
  for (let i = 0; i < 3; i++) {
    await store.set(`k/${i}`, `v${i}`);
    ack(acked, 'main', `k/${i}`, `v${i}`);
  }
  // The process dies here: its journal is on the disk, and so is a pack of which a cut kept only the names.
  const disk = fault.image();
  disk.writeFileSync(`${DIR}/objects/pack/pack-${'1'.repeat(40)}.pack`, '');
  disk.writeFileSync(`${DIR}/objects/pack/pack-${'1'.repeat(40)}.idx`, '');
  // Each run on its own copy of that disk (a FaultFs changes the volume it is given).
  const copy = () => new FaultFs(new FaultFs(disk).image());
  const dry = copy();
  await reopen(dry);
  for (let cut = 1; cut <= dry.count; cut++) {
    const again = copy();
    again.cutAt(cut);
    await reopen(again);
    await check(again.image(), acked, `recovery cut at change ${cut} of ${dry.count}`);
  }
  return dry.count;
}

describe('power loss', () => {
  it('recovery survives a cut at each of its changes', async () => {
    expect(await everyRecoveryCut()).toBeGreaterThan(5);
  });

  it(`every acknowledged write survives ${process.env.CRASH_POINTS ?? 20} random power cuts`, async () => {
    await crashPoints(Number(process.env.CRASH_POINTS ?? 20));
  });

  // About 150 s alone here; the timeout only catches a hang on a slower, busier machine.
  it('every acknowledged write survives 1,000 random power cuts', { tags: ['slow'], timeout: 900_000 }, async () => {
    await crashPoints(1000);
  });
});
