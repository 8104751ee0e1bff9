import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { simulateYear } from '../bench/retention.js';
import { expectFsckClean } from './git-packs.js';
import { tempDir } from './helpers.js';

/**
 * Issue 7's simulated year: 200,000 commits through the library with synthetic times spread over 365 days,
 * compacting every simulated week with the example policy (bench/retention.ts). After every compaction the
 * repository must be under one constant size — never compacted it reaches 120 MB — keep no more commits than the
 * policy allows, and pass `git fsck --strict`; at the end, reading at each kept commit's time must give the state at
 * that time, as recomputed from the writes themselves.
 */

const COMMITS = 200_000;
const DAYS = 365;
const STEP_MS = (DAYS * 86_400_000) / COMMITS;
/** The policy's most: the last hour's commits, then per tier one snapshot per interval of its age range, the head. */
const MOST_KEPT = Math.ceil(3_600_000 / STEP_MS) + 1 + (23 + 1) + (29 + 1) + (Math.ceil(335 / 7) + 1) + 1;
/** Asserted after every compaction (measured: 1.2 MB after four weeks, 2.6 MB after the year, 200 keys). */
const BOUND_BYTES = 4 << 20;

describe('a simulated year of writes, compacted as it goes', () => {
  it('stays under a constant size, fsck-clean, with every kept commit readable by time', {
    tags: ['slow'],
  }, async () => {
    const dir = path.join(tempDir(), 'store.git');
    const sample: { time: number; value: string }[] = [];
    const { store, points } = await simulateYear({
      dir,
      commits: COMMITS,
      days: DAYS,
      keys: 200,
      compactEveryDays: 7,
      onSample: (time, value) => sample.push({ time, value }),
      onCompaction: (point, r) => {
        expect(r.kept).toBeLessThanOrEqual(MOST_KEPT);
        expect(point.bytes).toBeLessThan(BOUND_BYTES);
        expect(r.dropped).toBeGreaterThan(0);
        expectFsckClean(dir);
      },
    });
    expect(points.length).toBe(53);
    expect(points.at(-1)!.commits).toBe(COMMITS);
    // The size stays bounded while the writes grow 13-fold from the first month to the end of the year.
    const month = points.find((p) => p.day >= 28)!;
    expect(points.at(-1)!.commits / month.commits).toBeGreaterThan(12);

    // Every kept commit, read by its own time, gives the sample key's value at that time.
    const kept = (await store.log({ limit: 1000 })).commits;
    expect(kept.length).toBeLessThanOrEqual(MOST_KEPT);
    let checked = 0;
    for (const c of kept) {
      const at = Date.parse(c.committer.time);
      const expected = sample.filter((s) => s.time <= at).at(-1);
      if (!expected) continue;
      expect(await store.getText('vm/7/state', { at: c.committer.time })).toBe(expected.value);
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
    await store.close();
  });
});
