/**
 * Merges as replication needs them (issue 14): last-writer-wins per key (the side whose last change to the key is
 * newer wins, whatever its head's time), criss-cross histories merged over a virtual base built with the real
 * strategies (no double-counted counters, no resurrected set members), and deterministic merge commits that two
 * replicas merging the same heads both make, byte for byte. Histories are written through the library with a test
 * clock; disk stores are checked with `git fsck --strict`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type FsLike,
  MERGE_CONFIG_KEY,
  type MergePolicy,
  type OpenOptions,
  openStore,
  type Store,
} from '../src/index.js';
import { LastChanges } from '../src/merge/last-change.js';
import { ObjectDb } from '../src/objects/db.js';
import { Files } from '../src/storage/fs.js';
import { expectFsckClean } from './git-packs.js';
import { codeOf, tempDir } from './helpers.js';

const POLICY: MergePolicy = {
  default: 'conflict',
  prefixes: { last: 'lww', stats: 'counter', tags: 'set', cfg: 'json' },
};

/** A store whose clock reads `clock.now` (seconds), on disk, with `.store/merge.json` and `base` on main. */
async function policyStore(base: Record<string, string>, options: Partial<OpenOptions> = {}) {
  const clock = { now: 1000 };
  const dir = path.join(tempDir('gitstore-merge-repl-'), 'store.git');
  const store = await openStore({ fs, dir, create: true, clock: () => new Date(clock.now * 1000), ...options });
  await store.batch([
    { op: 'set', key: MERGE_CONFIG_KEY, value: JSON.stringify(POLICY) },
    ...Object.entries(base).map(([key, value]) => ({ op: 'set' as const, key, value })),
  ]);
  await store.createBranch('dev');
  /** Runs `write` with the clock at `t`. */
  const at = async <T>(t: number, write: () => Promise<T>): Promise<T> => {
    clock.now = t;
    return write();
  };
  return { store, dir, clock, at };
}

const text = async (store: Store, key: string, branch = 'main') =>
  (await codeOf(store.get(key, { branch }))) === 'NOT_FOUND' ? null : store.getText(key, { branch });

describe('lww is per key: the side whose last change to the key is newer wins', () => {
  it('an old write on a branch whose head is newer loses to a newer write of the key on the other side', async () => {
    const { store, dir, at } = await policyStore({ 'last/seen': 'base' });
    await at(2000, () => store.set('last/seen', 'main-old'));
    await at(3000, () => store.set('last/seen', 'dev-newer', { branch: 'dev' }));
    await at(4000, () => store.set('unrelated', 'x')); // main's head is now the newest commit
    const devHead = await store.resolve('dev');
    const mainHead = await store.resolve('main');
    await at(5000, () => store.merge('dev'));
    expect(await text(store, 'last/seen')).toBe('dev-newer');
    // The other way round gives the same value.
    await store.createBranch('dev2', { from: devHead });
    await at(5000, () => store.merge(mainHead, { into: 'dev2' }));
    expect(await text(store, 'last/seen', 'dev2')).toBe('dev-newer');
    expectFsckClean(dir);
  });

  it('a deletion is a change: a newer delete wins over an older write, and an older delete loses', async () => {
    const { store, at } = await policyStore({ 'last/a': 'base', 'last/b': 'base' });
    await at(3000, () => store.delete('last/a'));
    await at(2000, () => store.set('last/a', 'older write', { branch: 'dev' }));
    await at(2000, () => store.delete('last/b'));
    await at(3000, () => store.set('last/b', 'newer write', { branch: 'dev' }));
    await at(9000, () => store.set('other', 'x', { branch: 'dev' }));
    await at(9000, () => store.merge('dev'));
    expect(await text(store, 'last/a')).toBeNull();
    expect(await text(store, 'last/b')).toBe('newer write');
  });

  it("a value that came through a merge counts from its original write, not from the merge's time", async () => {
    const { store, at } = await policyStore({ 'last/seen': 'base' });
    await store.createBranch('feature', { from: 'dev' });
    await at(1500, () => store.set('last/seen', 'feature (t=1500)', { branch: 'feature' }));
    await at(1600, () => store.set('dev-only', 'x', { branch: 'dev' }));
    await at(3500, () => store.merge('feature', { into: 'dev' })); // a merge commit at 3500 brings the old value
    await at(2000, () => store.set('last/seen', 'main (t=2000)'));
    await at(4000, () => store.merge('dev'));
    expect(await text(store, 'last/seen')).toBe('main (t=2000)');
  });

  it('a tie (same second) goes to the greater value whichever side merges, never to a side; absent is lowest', async () => {
    const { store, at } = await policyStore({ 'last/x': 'base', 'last/y': 'base' });
    await at(2000, () =>
      store.batch([
        { op: 'set', key: 'last/x', value: 'alpha' },
        { op: 'delete', key: 'last/y' },
      ]),
    );
    await at(2000, () =>
      store.batch(
        [
          { op: 'set', key: 'last/x', value: 'zeta' },
          { op: 'set', key: 'last/y', value: 'present' },
        ],
        { branch: 'dev' },
      ),
    );
    const [mainHead, devHead] = [await store.resolve('main'), await store.resolve('dev')];
    await store.merge(devHead);
    await store.merge(mainHead, { into: 'dev' });
    for (const branch of ['main', 'dev']) {
      expect(await text(store, 'last/x', branch)).toBe('zeta');
      expect(await text(store, 'last/y', branch)).toBe('present');
    }
  });
});

describe('the walk that finds when a side last changed a key', () => {
  it('stops after its bound: a key still traced counts as changed where the walk stopped', async () => {
    const { store, dir, at } = await policyStore({});
    await at(2000, () => store.set('last/k', 'written at 2000'));
    for (let i = 1; i <= 20; i++) await at(2000 + i * 100, () => store.set('other', String(i)));
    const head = await store.resolve('main');
    const db = new ObjectDb(new Files(fs as unknown as FsLike), dir);
    const read = async (id: string) => {
      const c = await db.readCommit(id);
      return { tree: c.tree, parents: c.parents, time: c.committer.timestamp };
    };
    const keys = ['last/k', 'never/written'];
    expect(await new LastChanges(db, read).times(head, keys)).toEqual(
      new Map([
        ['last/k', 2000],
        ['never/written', 1000], // absent since the root commit, which introduced the absence
      ]),
    );
    // Bounded at 5 commits: 4000 down to 3600 are walked (one per 100 s); the next, 3500, is where both keys stop.
    expect(await new LastChanges(db, read, 5).times(head, keys)).toEqual(
      new Map([
        ['last/k', 3500],
        ['never/written', 3500],
      ]),
    );
  });
});

/**
 * Builds a criss-cross: after `fork`, main and dev each write once, then each merges the other's head as it was
 * before either merge, so the next merge has two bases (main's and dev's first writes).
 */
async function crissCross(
  s: Awaited<ReturnType<typeof policyStore>>,
  mainWrite: () => Promise<unknown>,
  devWrite: () => Promise<unknown>,
) {
  const { store, at } = s;
  await at(2000, mainWrite);
  await at(3000, devWrite);
  const [a1, b1] = [await store.resolve('main'), await store.resolve('dev')];
  await at(3100, () => store.merge(b1));
  await at(3100, () => store.merge(a1, { into: 'dev' }));
  return { a1, b1 };
}

describe('counters', () => {
  it('two equal increments made on both sides are two increments: base 0, both +2 → 4 (either direction)', async () => {
    const { store, at } = await policyStore({ 'stats/c': '0' });
    await at(2000, () => store.set('stats/c', '2'));
    await at(2001, () => store.set('stats/c', '2', { branch: 'dev' }));
    const mainHead = await store.resolve('main');
    await store.merge('dev');
    await store.merge(mainHead, { into: 'dev' });
    expect(await text(store, 'stats/c')).toBe('4');
    expect(await text(store, 'stats/c', 'dev')).toBe('4');
  });
});

describe('criss-cross histories: the virtual base merges the bases with the real strategies', () => {
  it("counter: after a criss-cross, both sides' later increments add up (6), nothing is counted twice (9)", async () => {
    const s = await policyStore({ 'stats/c': '0' });
    const { store, dir, at } = s;
    await crissCross(
      s,
      () => store.set('stats/c', '1'),
      () => store.set('stats/c', '2', { branch: 'dev' }),
    );
    expect(await text(store, 'stats/c')).toBe('3');
    expect(await text(store, 'stats/c', 'dev')).toBe('3');
    await at(4000, () => store.set('stats/c', '4'));
    await at(4100, () => store.set('stats/c', '5', { branch: 'dev' })); // dev +2 more
    const mainHead = await store.resolve('main');
    await at(5000, () => store.merge('dev'));
    expect(await text(store, 'stats/c')).toBe('6'); // 0 + 1 + 2 + 1 + 2
    await at(5000, () => store.merge(mainHead, { into: 'dev' }));
    expect(await text(store, 'stats/c', 'dev')).toBe('6');
    expectFsckClean(dir);
  });

  it('counter: the example of the brief, exactly (4, not 7)', async () => {
    const s = await policyStore({ 'stats/c': '0' });
    const { store, at } = s;
    await crissCross(
      s,
      () => store.set('stats/c', '1'),
      () => store.set('stats/c', '2', { branch: 'dev' }),
    );
    await at(4000, () => store.set('stats/c', '4'));
    await at(5000, () => store.merge('dev'));
    expect(await text(store, 'stats/c')).toBe('4');
  });

  it('set: a member removed after a criss-cross stays removed (the stale base made it come back)', async () => {
    const s = await policyStore({ 'tags/web': 'x\n' });
    const { store, dir, at } = s;
    await crissCross(
      s,
      () => store.set('tags/web', 'x\na\n'),
      () => store.set('tags/web', 'x\nb\n', { branch: 'dev' }),
    );
    const members = async (branch: string) => new Set((await text(store, 'tags/web', branch))?.split('\n'));
    expect(await members('main')).toEqual(new Set(['x', 'a', 'b', '']));
    expect(await members('dev')).toEqual(new Set(['x', 'a', 'b', '']));
    await at(4000, () => store.set('tags/web', 'x\nb\n')); // main removes a
    await at(4000, () => store.set('tags/web', 'x\na\nb\nc\n', { branch: 'dev' })); // dev adds c
    await at(5000, () => store.merge('dev'));
    expect(await text(store, 'tags/web')).toBe('x\nb\nc\n');
    expectFsckClean(dir);
  });

  it('lww: a write made after seeing the other side wins even when its clock is behind (no stale-base conflict)', async () => {
    const s = await policyStore({ 'last/seen': 'v0' });
    const { store, dir, at } = s;
    await crissCross(
      s,
      () => store.set('last/seen', 'a (t=2000)'),
      () => store.set('last/seen', 'b (t=3000)', { branch: 'dev' }),
    );
    expect(await text(store, 'last/seen')).toBe('b (t=3000)');
    // Main's clock is behind: its next write of the key is dated before dev's, but main saw dev's value and
    // replaced it. Over the real virtual base (b) only main changed the key, so main's value stays.
    await at(2500, () => store.set('last/seen', 'c (t=2500, after seeing b)'));
    await at(5000, () => store.merge('dev'));
    expect(await text(store, 'last/seen')).toBe('c (t=2500, after seeing b)');
    expectFsckClean(dir);
  });

  it('a key the bases themselves conflict on falls back to the older value in the virtual base', async () => {
    const s = await policyStore({ plain: 'v0' });
    const { store, at } = s;
    // Main and dev write `plain` differently; each cross-merge resolves it with `ours`, so both bases disagree.
    await at(2000, () => store.set('plain', 'main'));
    await at(3000, () => store.set('plain', 'dev', { branch: 'dev' }));
    const [a1, b1] = [await store.resolve('main'), await store.resolve('dev')];
    await store.merge(b1, { strategy: 'ours' });
    await store.merge(a1, { into: 'dev', strategy: 'ours' });
    await store.set('other', 'x', { branch: 'dev' });
    // The bases disagree on `plain`, which has no strategy: the virtual base keeps the fork's v0, over which both
    // sides changed it: a conflict, reported, not a crash or a silent pick.
    const e = await store.merge('dev').catch((error: unknown) => error);
    expect((e as { code?: string }).code).toBe('CONFLICT');
    expect((e as { data: { conflicts: { key: string }[] } }).data.conflicts.map((c) => c.key)).toEqual(['plain']);
  });
});

describe('deterministic merges: the commit depends on the two heads only', () => {
  /** Main and dev diverged: each wrote its own key at its own time. */
  async function diverged() {
    const s = await policyStore({ 'stats/c': '0' });
    await s.at(2000, () =>
      s.store.batch([
        { op: 'set', key: 'stats/c', value: '1' },
        { op: 'set', key: 'm', value: 'main' },
      ]),
    );
    await s.at(3000, () =>
      s.store.batch(
        [
          { op: 'set', key: 'stats/c', value: '5' },
          { op: 'set', key: 'd', value: 'dev' },
        ],
        { branch: 'dev' },
      ),
    );
    return { ...s, main: await s.store.resolve('main'), dev: await s.store.resolve('dev') };
  }

  it('two replicas (other clocks, other authors) merging the same heads in opposite directions make one commit', async () => {
    const { store, dir, main, dev } = await diverged();
    // A second store process on the same repository, with its own clock and author: a second replica's view.
    const other = await openStore({
      fs,
      dir,
      clock: () => new Date(7_777_000),
      author: { name: 'Other', email: 'other@example.org' },
    });
    const r1 = await store.merge(dev, { deterministic: true });
    const r2 = await other.merge(main, { into: 'dev', deterministic: true });
    expect(r1.outcome).toBe('merged');
    expect(r2).toEqual(r1);
    const c = await store.commit(r1.commit);
    expect(c.parents).toEqual([main, dev].sort());
    expect(c.message).toBe('merge\n');
    for (const who of [c.author, c.committer]) {
      expect(who).toEqual({
        name: 'gitstore',
        email: 'replication@gitstore',
        time: new Date(3000 * 1000).toISOString(),
        timezoneOffset: 0,
      });
    }
    expect(await text(store, 'stats/c')).toBe('6');
    // The next round: both are up to date, nothing moves.
    expect(await store.merge('dev', { deterministic: true })).toEqual({ commit: r1.commit, outcome: 'up-to-date' });
    expect(await other.merge('main', { into: 'dev', deterministic: true })).toEqual({
      commit: r1.commit,
      outcome: 'up-to-date',
    });
    expectFsckClean(dir);
    await other.close();
  });

  it('a message is added below `merge`; branch names never appear (they differ per replica)', async () => {
    const { store, dev } = await diverged();
    const r = await store.merge(dev, { deterministic: true, message: 'replication round 7' });
    expect((await store.commit(r.commit)).message).toBe('merge\n\nreplication round 7\n');
  });

  it('heads with the same tree still merge, to one commit both sides agree on; the next round is up to date', async () => {
    const { store, at } = await policyStore({ k: '0' });
    await at(2000, () => store.set('k', '1'));
    await at(2500, () => store.set('k', '1', { branch: 'dev', message: 'same change, other commit' }));
    const [main, dev] = [await store.resolve('main'), await store.resolve('dev')];
    expect(main).not.toBe(dev);
    const r1 = await store.merge(dev, { deterministic: true });
    const r2 = await store.merge(main, { into: 'dev', deterministic: true });
    expect(r1.outcome).toBe('merged');
    expect(r2).toEqual(r1);
    expect((await store.commit(r1.commit)).tree).toBe((await store.commit(main)).tree);
    expect((await store.merge('dev', { deterministic: true })).outcome).toBe('up-to-date');
    expect((await store.merge('main', { into: 'dev', deterministic: true })).outcome).toBe('up-to-date');
  });

  it('fast-forwards when the target has not diverged (a merge commit there would ping-pong between replicas)', async () => {
    const { store, at } = await policyStore({ k: '0' });
    await at(2000, () => store.set('k', '1', { branch: 'dev' }));
    const dev = await store.resolve('dev');
    expect(await store.merge('dev', { deterministic: true })).toEqual({ commit: dev, outcome: 'fast-forward' });
    expect((await store.merge('main', { into: 'dev', deterministic: true })).outcome).toBe('up-to-date');
  });

  it("takes the strategies from the merged .store/merge.json, not from the target's, so both directions agree", async () => {
    const { store, at } = await policyStore({ 'hits/n': '10' });
    // Main declares `hits` a counter; dev does not know yet. Both count.
    await at(2000, () =>
      store.batch([
        {
          op: 'set',
          key: MERGE_CONFIG_KEY,
          value: JSON.stringify({ ...POLICY, prefixes: { ...POLICY.prefixes, hits: 'counter' } }),
        },
        { op: 'set', key: 'hits/n', value: '11' },
      ]),
    );
    await at(3000, () => store.set('hits/n', '13', { branch: 'dev' }));
    const [main, dev] = [await store.resolve('main'), await store.resolve('dev')];
    const r1 = await store.merge(dev, { deterministic: true });
    const r2 = await store.merge(main, { into: 'dev', deterministic: true });
    expect(r2).toEqual(r1);
    expect(await text(store, 'hits/n', 'dev')).toBe('14');
  });

  it('refuses an author or committer (the identity is fixed) and writes nothing', async () => {
    const { store, main, dev } = await diverged();
    const author = { name: 'Ada', email: 'ada@example.org' };
    expect(await codeOf(store.merge(dev, { deterministic: true, author }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(store.merge(dev, { deterministic: true, committer: author }))).toBe('INVALID_ARGUMENT');
    expect(await store.resolve('main')).toBe(main);
  });
});
