import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CompactResult, openStore, type Store } from '../src/index.js';

/**
 * Issue 7's simulated year, shared by its test (which asserts on it) and the benchmark (which reports it): commits
 * through the library with synthetic times spread evenly over `days`, 50 callers at once, compacting every
 * `compactEveryDays` simulated days with the example policy.
 */

export const EXAMPLE_POLICY = [
  { within: '1h', keep: 'all' },
  { within: '1d', every: '1h' },
  { within: '30d', every: '1d' },
  { within: '1y', every: '1w' },
];

export interface YearOptions {
  dir: string;
  commits: number;
  days: number;
  /** Distinct keys written, round robin: `vm/<i>/state`. */
  keys: number;
  /** Compact every this many simulated days (0: never). */
  compactEveryDays: number;
  /** Called after each write of `vm/<sampleKey>/state` with its commit time (ms) and value. */
  onSample?: (time: number, value: string) => void;
  /** Called after each compaction. */
  onCompaction?: (point: YearPoint, result: CompactResult) => void;
  sampleKey?: number;
}

/** The repository after one compaction. */
export interface YearPoint {
  day: number;
  commits: number;
  bytes: number;
  kept: number;
  ms: number;
}

/** Runs the simulation; returns the store (open, for the caller to read and close) and one point per compaction. */
export async function simulateYear(o: YearOptions): Promise<{ store: Store; points: YearPoint[]; writeMs: number }> {
  const start = Date.parse('2026-01-01T00:00:00Z');
  const step = (o.days * 86_400_000) / o.commits;
  // Every commit reads the clock once, so each gets its own time, `step` after the one before.
  let ticks = 0;
  const store = await openStore({
    fs,
    dir: o.dir,
    create: true,
    durable: false,
    pruneGraceMs: 0,
    clock: () => new Date(start + ++ticks * step),
  });
  await store.set('.store/retention.json', JSON.stringify(EXAMPLE_POLICY));
  const points: YearPoint[] = [];
  const sample = o.sampleKey ?? 7;
  let n = 0;
  let writeMs = 0;
  for (let day = 0; day < o.days; day++) {
    const target = Math.round(((day + 1) * o.commits) / o.days);
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (n < target) {
          const i = ++n;
          const { commit } = await store.set(`vm/${i % o.keys}/state`, `v${i}`);
          if (o.onSample && i % o.keys === sample) {
            o.onSample(Date.parse((await store.commit(commit)).committer.time), `v${i}`);
          }
        }
      }),
    );
    writeMs += Date.now() - t0;
    const last = day === o.days - 1;
    if (o.compactEveryDays === 0 || ((day + 1) % o.compactEveryDays !== 0 && !last)) continue;
    const r = await store.compact();
    const point = { day: day + 1, commits: n, bytes: r.bytesAfter, kept: r.kept, ms: r.ms };
    points.push(point);
    o.onCompaction?.(point, r);
  }
  return { store, points, writeMs };
}

/**
 * The benchmark: (a) the year compacted weekly — size after each compaction against simulated time; (b) the same
 * writes never compacted, then ONE compaction of the whole history, timed (issue 7: "compaction time for 200,000
 * commits").
 */
export async function benchRetention(commits: number) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-bench-retention-'));
  try {
    const weekly = await simulateYear({
      dir: path.join(root, 'weekly.git'),
      commits,
      days: 365,
      keys: 200,
      compactEveryDays: 7,
    });
    await weekly.store.close();
    const once = await simulateYear({
      dir: path.join(root, 'once.git'),
      commits,
      days: 365,
      keys: 200,
      compactEveryDays: 0,
    });
    const before = await once.store.db.packBytes();
    const r = await once.store.compact();
    await once.store.close();
    const mb = (b: number) => Math.round(b / 1e4) / 100;
    return {
      commits,
      keys: 200,
      policy: EXAMPLE_POLICY,
      compactedWeekly: {
        writesPerSecond: Math.round((commits / weekly.writeMs) * 1000),
        maxMB: mb(Math.max(...weekly.points.map((p) => p.bytes))),
        meanCompactionMs: Math.round(weekly.points.reduce((s, p) => s + p.ms, 0) / weekly.points.length),
        // Every fourth week and the last: the table in README.
        sizeByWeek: weekly.points
          .filter((_, i) => i % 4 === 3 || i === weekly.points.length - 1)
          .map((p) => ({ day: p.day, commits: p.commits, kept: p.kept, MB: mb(p.bytes) })),
      },
      neverCompacted: { MB: mb(before), commits: r.commits },
      oneCompaction: {
        ms: r.ms,
        kept: r.kept,
        dropped: r.dropped,
        prunedObjects: r.pruned.objects,
        MBAfter: mb(r.bytesAfter),
      },
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
