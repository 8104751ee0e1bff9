/**
 * Issue 13, defect 11, through the library: a compaction right after the writes prunes nothing, and now says what
 * the prune grace kept and when it can go; a time inside a compacted interval still answers COMPACTED, and with
 * `nearest: 'before'` reads the kept snapshot at or before it, naming the commit it read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore, type Store } from '../src/index.js';
import { codeOf, git, tempDir } from './helpers.js';

const MIN = 60_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
/** Recent: the last hour as it was; older: the newest commit of each hour. */
const POLICY = [
  { within: '1h', keep: 'all' },
  { within: '1d', every: '1h' },
];

/** A disk store whose clock the test sets. */
async function clocked(t: { now: number }, options: { pruneGraceMs?: number } = {}): Promise<Store> {
  const dir = path.join(tempDir(), 'store.git');
  return openStore({ fs, dir, create: true, clock: () => new Date(t.now), ...options });
}

/** Dates every pack back by `ms`, as far as the prune grace is concerned. */
function agePacks(dir: string, ms: number): void {
  const packDir = path.join(dir, 'objects/pack');
  const then = new Date(Date.now() - ms);
  for (const f of fs.readdirSync(packDir)) fs.utimesSync(path.join(packDir, f), then, then);
}

/**
 * 18 commits of `k` (`v<i>` at 00:i0, ten minutes apart from 00:00 to 02:50), compacted at 03:20: kept are 02:20 to
 * 02:50 as they were and the snapshots of 02:10 (absorbing 02:00), 01:50 (absorbing 01:00–01:40) and 00:50
 * (absorbing 00:00–00:40). Returns the old ids and what they became.
 */
async function compactedHistory(options: { pruneGraceMs?: number } = {}) {
  const t = { now: T0 };
  const store = await clocked(t, { pruneGraceMs: 0, ...options });
  const commits: string[] = [];
  for (let i = 0; i < 18; i++) {
    t.now = T0 + i * 10 * MIN;
    commits.push((await store.set('k', `v${i}`)).commit);
  }
  t.now = T0 + 200 * MIN;
  const r = await store.compact({ policy: POLICY });
  expect(r.snapshots.map((s) => s.commit)).toEqual([commits[13], commits[11], commits[5]]);
  const kept = (i: number) => store.resolve(commits[i]!);
  return { store, commits, r, kept };
}

describe('compaction and the prune grace', () => {
  it('right after the writes it prunes nothing and says what the grace kept and when it can go; later it frees them', async () => {
    const { store, r } = await compactedHistory({ pruneGraceMs: 60_000 });
    const newest = Math.max(
      ...fs.readdirSync(path.join(store.dir, 'objects/pack')).map((f) => {
        return fs.statSync(path.join(store.dir, 'objects/pack', f)).mtimeMs;
      }),
    );
    // Every pack was written moments ago: nothing is old enough to prune, and the result says why.
    expect(r.dropped).toBe(11);
    expect(r.pruned.objects).toBe(0);
    const { deferred } = r.pruned;
    expect(deferred.objects).toBeGreaterThan(11); // at least the dropped commits, and their trees
    expect(deferred.bytes).toBeGreaterThan(0);
    expect(deferred.packs).toBeGreaterThan(0);
    expect(deferred.graceMs).toBe(60_000);
    // Free once the youngest pack holding any of them is past the grace: at most a minute after the newest pack.
    const until = Date.parse(deferred.until!);
    expect(until).toBeGreaterThan(Date.now() - 60_000);
    expect(until).toBeLessThanOrEqual(Math.ceil(newest) + 60_000);

    // A dry run now says so too (it counts a little more: it leaves the branch's own commits out of its roots).
    const dry = await store.compact({ policy: POLICY, dryRun: true });
    expect(dry.pruned.objects).toBe(0);
    expect(dry.pruned.deferred.objects).toBeGreaterThanOrEqual(deferred.objects);
    expect(Date.parse(dry.pruned.deferred.until!)).toBeGreaterThanOrEqual(until);

    // Past the grace (the packs dated back, rather than waiting a minute): the next compaction frees them.
    agePacks(store.dir, 10 * MIN);
    const later = await store.compact({ policy: POLICY });
    expect(later.dropped).toBe(0);
    expect(later.pruned.objects).toBeGreaterThanOrEqual(deferred.objects);
    expect(later.pruned.deferred).toEqual({ packs: 0, objects: 0, bytes: 0, graceMs: 60_000, until: null });
    await store.close();
  });

  it('reports no deferred objects when there is no garbage (the grace kept nothing)', async () => {
    const t = { now: T0 };
    const store = await clocked(t);
    await store.set('k', 'v');
    const r = await store.compact({ policy: POLICY });
    expect(r.pruned.deferred).toEqual({ packs: 0, objects: 0, bytes: 0, graceMs: 60_000, until: null });
    await store.close();
  });
});

describe("reading at a compacted time with nearest: 'before'", () => {
  it('reads the kept snapshot at or before the time, names it, and leaves COMPACTED the default', async () => {
    const { store, commits, kept } = await compactedHistory();
    const at = (hm: string) => `2026-01-01T${hm}:00Z`;

    // 01:25 lies among the commits the 01:50 snapshot absorbed: COMPACTED as before…
    expect(await codeOf(store.getText('k', { at: at('01:25') }))).toBe('COMPACTED');
    // …and with nearest, the snapshot of 00:50 (the kept commit at or before 01:25), saying which commit it read.
    const read = await store.read('k', { at: at('01:25'), nearest: 'before' });
    expect(Buffer.from(read.value).toString()).toBe('v5');
    expect(read.commit).toBe(await kept(5));
    expect((await store.commit(read.commit)).committer.time).toBe('2026-01-01T00:50:00.000Z');
    expect(await store.resolve(at('01:25'), 'main', { nearest: 'before' })).toBe(await kept(5));
    expect(await store.resolve(`main@{${at('01:25')}}`, 'main', { nearest: 'before' })).toBe(await kept(5));

    // 02:05, absorbed by the 02:10 snapshot: the 01:50 one.
    expect(await store.getText('k', { at: at('02:05'), nearest: 'before' })).toBe('v11');
    // A time a kept commit answers exactly is that state, with or without nearest.
    expect(await store.getText('k', { at: at('02:35'), nearest: 'before' })).toBe('v15');
    expect(await store.getText('k', { at: at('02:35') })).toBe('v15');
    expect(await store.getText('k', { at: at('00:55'), nearest: 'before' })).toBe('v5');

    // A dropped commit id (01:10, absorbed into 01:50): the kept snapshot at or before its time.
    expect(await codeOf(store.getText('k', { at: commits[7] }))).toBe('COMPACTED');
    expect(await store.getText('k', { at: commits[7], nearest: 'before' })).toBe('v5');
    expect(await store.getText('k', { at: commits[7]!.slice(0, 8), nearest: 'before' })).toBe('v5');

    // Before every kept snapshot (00:20 was absorbed by the oldest one): nothing kept is at or before it.
    expect(await codeOf(store.getText('k', { at: at('00:20') }))).toBe('COMPACTED');
    await expect(store.getText('k', { at: at('00:20'), nearest: 'before' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(
        /main has no kept commit at or before 2026-01-01T00:20:00Z; its first is [0-9a-f]{12} of 2026-01-01T00:50:00.000Z/,
      ),
    });

    // Listing, snapshots and blame take it too.
    const listed = await store.list('', { at: at('01:25'), nearest: 'before' });
    expect(listed).toMatchObject({ commit: await kept(5), entries: [{ key: 'k', type: 'value' }] });
    const snap = await store.snapshot('', { at: at('01:25'), nearest: 'before' });
    expect(snap.commit).toBe(await kept(5));
    expect(Buffer.from(snap.entries[0]!.value).toString()).toBe('v5');
    expect((await store.blame('k', { at: at('01:25'), nearest: 'before' }))[0]!.commit.id).toBe(await kept(5));

    // Only 'before' is understood.
    await expect(store.getText('k', { at: at('01:25'), nearest: 'after' as 'before' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('"before"'),
    });
    // Plain git agrees on what 00:50's snapshot holds.
    expect(git(['--git-dir', store.dir, 'show', `${await kept(5)}:k`]).toString()).toBe('v5');
    await store.close();
  });
});
