import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Dated, parseRetention, selectRetained } from '../src/history/retention.js';

const EXAMPLE = [
  { within: '1h', keep: 'all' },
  { within: '1d', every: '1h' },
  { within: '30d', every: '1d' },
  { within: '1y', every: '1w' },
];
const tiers = parseRetention(EXAMPLE);
const HOUR = 3600;
const DAY = 86_400;
const NOW = 1_800_000_000;

/** A first-parent history, newest first, from commit times (any order). */
const historyOf = (times: number[]): Dated[] =>
  [...times].sort((a, b) => b - a).map((time, i) => ({ id: `c${i}-${time}`, time }));

const ids = (list: Dated[]) => list.map((c) => c.id);

describe('retention policies', () => {
  it('parses the example policy into seconds', () => {
    expect(tiers).toEqual([
      { within: HOUR, every: null },
      { within: DAY, every: HOUR },
      { within: 30 * DAY, every: DAY },
      { within: 365 * DAY, every: 7 * DAY },
    ]);
  });

  it('refuses policies a person could not mean, saying what is wrong', () => {
    const refuse = (spec: unknown, message: RegExp) =>
      expect(() => parseRetention(spec)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) }),
      );
    refuse([], /non-empty array/);
    refuse({}, /non-empty array/);
    refuse([{ within: '1h' }], /exactly one of "every"/);
    refuse([{ within: '1h', keep: 'all', every: '1m' }], /exactly one of "every"/);
    refuse([{ within: '1 hour', keep: 'all' }], /not a duration/);
    refuse([{ within: '0h', keep: 'all' }], /not a duration/);
    refuse([{ within: '1h', keep: 'some' }], /"keep" can only be "all"/);
    refuse([{ within: '1h', every: '2h' }], /"every" is longer than "within"/);
    refuse(
      [
        { within: '1d', keep: 'all' },
        { within: '1h', every: '1m' },
      ],
      /must be longer than the tier before/,
    );
    refuse([{ within: '1h', keep: 'all', extra: 1 }], /unknown field extra/);
  });

  it('a year of commits every 10 minutes keeps a bounded number of snapshots', () => {
    const times = Array.from({ length: (400 * DAY) / 600 }, (_, i) => NOW - i * 600);
    const s = selectRetained(historyOf(times), tiers, NOW);
    expect(s.recent).toHaveLength(7); // 0, 10, …, 60 minutes old
    // At most one per hour for a day, per day for 30 days, per week for a year (+1 per tier for partial intervals).
    expect(s.snapshots.length).toBeLessThanOrEqual(24 + 30 + 53 + 3);
    expect(s.snapshots.length).toBeGreaterThan(24 + 29 + 47);
    for (const c of s.snapshots) expect(NOW - c.time).toBeLessThanOrEqual(365 * DAY);
    expect(s.recent.length + s.snapshots.length + s.dropped.length).toBe(times.length);
  });

  it('keeps the newest commit of each interval: the state at its end', () => {
    const hourStart = Math.floor((NOW - 5 * HOUR) / HOUR) * HOUR;
    const s = selectRetained(historyOf([hourStart + 10, hourStart + 1000, hourStart + 3599]), tiers, NOW);
    expect(s.snapshots.map((c) => c.time)).toEqual([hourStart + 3599]);
    expect(s.dropped).toHaveLength(2);
  });

  const histories = fc
    .array(fc.integer({ min: 0, max: 400 * DAY }), { minLength: 1, maxLength: 300 })
    .map((ages) => historyOf(ages.map((a) => NOW - a)));

  it('splits every history exactly, keeps one snapshot per interval, and is idempotent', () => {
    fc.assert(
      fc.property(histories, (history) => {
        const s = selectRetained(history, tiers, NOW);
        const all = [...s.recent, ...s.snapshots, ...s.dropped];
        expect(new Set(ids(all))).toEqual(new Set(ids(history)));
        expect(all).toHaveLength(history.length);
        // Compacting what was kept, at the same time, keeps all of it.
        const kept = history.filter((c) => !s.dropped.includes(c));
        const again = selectRetained(kept, tiers, NOW);
        expect(again.dropped).toEqual([]);
      }),
    );
  });

  it('compacting often loses nothing that one compaction at the end would keep', () => {
    fc.assert(
      fc.property(histories, fc.integer({ min: 1, max: 60 * DAY }), (history, later) => {
        const early = selectRetained(history, tiers, NOW - later);
        const survivors = history.filter((c) => !early.dropped.includes(c));
        const twice = selectRetained(survivors, tiers, NOW);
        const once = selectRetained(history, tiers, NOW);
        expect(ids([...twice.recent, ...twice.snapshots])).toEqual(ids([...once.recent, ...once.snapshots]));
      }),
    );
  });
});
