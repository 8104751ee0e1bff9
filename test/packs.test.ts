/**
 * The packs the store writes, checked by plain git: batches of commits with several versions of a wide directory
 * (stored as OFS_DELTA entries), background consolidation of small packs, and the same on memfs (copied to disk
 * for git to look at).
 */
import fs from 'node:fs';
import path from 'node:path';
import { memfs } from 'memfs';
import { describe, expect, it } from 'vitest';
import { type FsLike, openStore, type Store } from '../src/index.js';
import { hashObject } from '../src/objects/object.js';
import { writePack } from '../src/objects/pack.js';
import { Files } from '../src/storage/fs.js';
import { copyFromMemfs, expectFsckClean, gitValues, verifyPacks } from './git-packs.js';
import { diskStore, git, random, tempDir } from './helpers.js';

/** The values of `keys` at `rev` as git reads them, as text. */
const gitTexts = (dir: string, keys: string[], rev = 'main'): Map<string, string> =>
  new Map([...gitValues(dir, keys, rev)].map(([k, v]) => [k, v.toString()]));

/** Every commit of a branch's log, page by page. */
async function storeLog(store: Store, branch = 'main'): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null | undefined;
  do {
    const page = await store.log({ branch, limit: 37, ...(cursor ? { cursor } : {}) });
    ids.push(...page.commits.map((c) => c.id));
    cursor = page.next;
  } while (cursor);
  return ids;
}

const WIDE = 300;
const wideKey = (i: number) => `local/domain/${i}/name`;

/** Seeds the wide directory `local/domain` (300 entries, ~9 KB serialised) in one commit. */
async function seedWide(store: Store, expected: Map<string, string>): Promise<void> {
  const ops = Array.from({ length: WIDE }, (_, i) => ({ op: 'set' as const, key: wideKey(i), value: `domain-${i}` }));
  await store.batch(ops);
  for (const op of ops) expected.set(op.key, op.value);
}

/**
 * `callers` concurrent callers, `each` single-key commits apiece, to random entries of the wide directory: caller c
 * touches only entries ≡ c (mod callers), so the last value each caller wrote is the final one.
 */
async function concurrentWideWrites(
  store: Store,
  expected: Map<string, string>,
  callers: number,
  each: number,
  seed: number,
): Promise<void> {
  const rand = random(seed);
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let n = 0; n < each; n++) {
        const key = wideKey(c + callers * rand(WIDE / callers));
        const value = `caller${c}-write${n}`;
        await store.set(key, value);
        expected.set(key, value);
      }
    }),
  );
}

/** Sequential awaited writes, each its own batch and so its own pack. */
async function sequentialWideWrites(store: Store, expected: Map<string, string>, count: number, seed: number) {
  const rand = random(seed);
  for (let n = 0; n < count; n++) {
    const key = wideKey(rand(WIDE));
    const value = `sequential-${n}`;
    await store.set(key, value);
    expected.set(key, value);
  }
}

async function expectStoreValues(store: Store, expected: Map<string, string>) {
  for (const [key, value] of expected) expect(await store.getText(key), key).toBe(value);
  expect((await store.list('local/domain')).entries).toHaveLength(WIDE);
}

describe('writing a pack', () => {
  it('leaves a pack already there under the same name alone (its file may be the durable one)', async () => {
    const files = new Files(fs as unknown as FsLike, false);
    const dir = path.join(tempDir(), 'pack');
    fs.mkdirSync(dir);
    const body = new TextEncoder().encode('the same value, written twice');
    const objects = () => [{ oid: hashObject('blob', body), type: 'blob' as const, body }];
    const first = await writePack(files, dir, objects());
    const inode = (ext: string) => fs.statSync(path.join(dir, `${first.name}.${ext}`)).ino;
    const before = [inode('pack'), inode('idx')];
    const again = await writePack(files, dir, objects());
    expect(again.name).toBe(first.name);
    // Renamed over, the file a checkpoint had fsynced would be replaced by one not yet flushed.
    expect([inode('pack'), inode('idx')]).toEqual(before);
    expect(fs.readdirSync(dir).sort()).toEqual([`${first.name}.idx`, `${first.name}.pack`]);
  });
});

describe('packs written by the store, as plain git sees them', () => {
  it('batches with several versions of a wide tree: deltas that verify-pack and fsck accept', async () => {
    const store = await diskStore();
    const dir = store.dir;
    const batches: number[] = [];
    store.onBatch(({ writes }) => batches.push(writes));
    const expected = new Map<string, string>();
    await seedWide(store, expected);
    await concurrentWideWrites(store, expected, 20, 10, 1);
    await store.close();

    // The premise: some batch held several commits, so several versions of local/domain in one pack.
    expect(batches.reduce((a, b) => a + b, 0)).toBe(201);
    expect(Math.max(...batches)).toBeGreaterThan(1);

    const { packs, deltas } = verifyPacks(dir);
    // One pack per batch (unless there were enough batches for background consolidation to merge some).
    if (batches.length < 32) expect(packs.length).toBe(batches.length);
    else expect(packs.length).toBeLessThan(batches.length);
    expect(deltas.length).toBeGreaterThan(0);
    // Only wide trees are stored as deltas, and their bases are in the same pack (verify-pack resolved them).
    for (const d of deltas) expect(d.type).toBe('tree');
    expectFsckClean(dir);

    expect(git(['--git-dir', dir, 'show', `main:${wideKey(5)}`]).toString()).toBe(expected.get(wideKey(5)));
    expect(await store.getText(wideKey(5))).toBe(expected.get(wideKey(5)));
    const oneline = git(['--git-dir', dir, 'log', '--oneline', 'main']).toString().trim().split('\n');
    expect(oneline).toHaveLength(201);
    const gitLine = git(['--git-dir', dir, 'rev-list', 'main']).toString().trim().split('\n');
    expect(await storeLog(store)).toEqual(gitLine);

    const keys = [...expected.keys()];
    expect(gitTexts(dir, keys)).toEqual(expected);
    const fresh = await openStore({ fs, dir });
    await expectStoreValues(fresh, expected);
    // The blob oids the store lists are the ones git lists.
    const lsTree = git(['--git-dir', dir, 'ls-tree', '-r', 'main']).toString().trim().split('\n');
    const gitOids = new Map(lsTree.map((l) => [l.split('\t')[1]!, l.split(' ')[2]!.slice(0, 40)]));
    for (const e of (await fresh.list('', { recursive: true })).entries) expect(gitOids.get(e.key), e.key).toBe(e.oid);
    expect(gitOids.size).toBe(WIDE);
  });

  it('background maintenance merges small packs; close waits for it; every value survives', async () => {
    const store = await diskStore();
    const dir = store.dir;
    let batches = 0;
    store.onBatch(() => batches++);
    const expected = new Map<string, string>();
    await seedWide(store, expected);
    await sequentialWideWrites(store, expected, 140, 2);
    await store.close();
    expect(batches).toBe(141);

    const { packs, deltas } = verifyPacks(dir);
    // Rounds of consolidation (every 32 packs written) merged the tiny packs.
    expect(packs.length).toBeLessThan(batches - 100);
    // Each sequential write stored its version of local/domain whole; consolidation made them deltas.
    expect(deltas.filter((d) => d.type === 'tree').length).toBeGreaterThan(50);
    expect(Math.max(...deltas.map((d) => d.depth))).toBeLessThanOrEqual(50);
    expectFsckClean(dir);

    const fresh = await openStore({ fs, dir });
    await expectStoreValues(fresh, expected);
    expect(gitTexts(dir, [...expected.keys()])).toEqual(expected);
    expect(git(['--git-dir', dir, 'show', `main:${wideKey(7)}`]).toString()).toBe(expected.get(wideKey(7)));
    expect(Number(git(['--git-dir', dir, 'rev-list', '--count', 'main']).toString())).toBe(141);
    expect((await storeLog(fresh)).length).toBe(141);
    // Every version of history is still readable, not just the head.
    expect(await fresh.getText(wideKey(0), { at: 'main~140' })).toBe('domain-0');
    expect(git(['--git-dir', dir, 'show', `main~140:${wideKey(0)}`]).toString()).toBe('domain-0');
  });

  it('on memfs: maintenance and gc keep every value readable, and git accepts the copied repository', async () => {
    const { fs: mfs } = memfs();
    const memory = mfs as unknown as FsLike;
    const dir = '/repo/store.git';
    const store = await openStore({ fs: memory, dir, create: true });
    let batches = 0;
    store.onBatch(() => batches++);
    const expected = new Map<string, string>();
    await seedWide(store, expected);
    await concurrentWideWrites(store, expected, 10, 6, 3);
    await sequentialWideWrites(store, expected, 80, 4);
    await store.close();
    const packDir = `${dir}/objects/pack`;
    const packsOf = () => (mfs.readdirSync(packDir) as string[]).filter((f) => f.endsWith('.pack'));
    expect(packsOf().length).toBeLessThan(batches);

    const result = await store.gc();
    expect(result.packsAfter).toBe(1);
    expect(result.packsBefore).toBeGreaterThan(1);
    expect(result.bytesAfter).toBeLessThan(result.bytesBefore);
    expect(packsOf()).toHaveLength(1);
    await expectStoreValues(store, expected);
    const fresh = await openStore({ fs: memory, dir });
    await expectStoreValues(fresh, expected);
    expect((await storeLog(fresh)).length).toBe(1 + 60 + 80);

    // The same repository on disk, for git.
    const copy = path.join(tempDir(), 'copy.git');
    copyFromMemfs(mfs, dir, copy);
    const { packs, deltas, objects } = verifyPacks(copy);
    expect(packs).toHaveLength(1);
    expect(objects).toBe(result.objects);
    expect(deltas.length).toBeGreaterThan(0);
    expectFsckClean(copy);
    expect(gitTexts(copy, [...expected.keys()])).toEqual(expected);
  });
});
