/**
 * Issue 13, defect 1: one batch of concurrent writes whose tree versions are already stored (values written again
 * unchanged, or changed and changed back) used to be rejected whole with "delta base of <oid> is not in the pack".
 * Checked on memfs and disk through the library, with plain git's fsck and verify-pack on the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import { memfs } from 'memfs';
import { describe, expect, it } from 'vitest';
import { type FsLike, openStore, type Store } from '../src/index.js';
import { ObjectBatch } from '../src/objects/batch.js';
import { ObjectDb } from '../src/objects/db.js';
import { hashObject } from '../src/objects/object.js';
import { Files } from '../src/storage/fs.js';
import { copyFromMemfs, expectFsckClean, verifyPacks } from './git-packs.js';
import { diskStore, git, tempDir } from './helpers.js';
import { put, startServe, stopServe } from './serve.js';

/** Keys in one directory: 40 entries serialise to more than 1 KB, so a writer patches the tree in place. */
const KEYS = 40;
const key = (i: number) => `r0/k${i}`;

/** Every key written at once, each by its own caller; the writes land in a few batches of many commits. */
async function writeAll(
  store: Store,
  value: (i: number) => string,
  batches: number[],
  unchanged = false,
): Promise<void> {
  const results = await Promise.allSettled(Array.from({ length: KEYS }, (_, i) => store.set(key(i), value(i))));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
  expect(failed).toEqual([]);
  const written = Math.max(0, ...batches.splice(0));
  if (unchanged) {
    // Values already there: no commit, so no batch reached the disk (no empty commits).
    for (const r of results) expect((r as PromiseFulfilledResult<{ changed: boolean }>).value.changed).toBe(false);
    expect(written).toBe(0);
  } else {
    // The premise: some batch held several writes, so several versions of r0 met in one pack.
    expect(written).toBeGreaterThan(1);
  }
}

async function expectValues(store: Store, value: (i: number) => string): Promise<void> {
  for (let i = 0; i < KEYS; i++) expect(await store.getText(key(i))).toBe(value(i));
}

/** Concurrent unchanged writes, twice, then flips that come back to a version stored earlier in the same batch. */
async function exercise(store: Store): Promise<void> {
  const batches: number[] = [];
  store.onBatch(({ writes }) => batches.push(writes));
  const v = (i: number) => `v${i}`;
  await writeAll(store, v, batches);
  await writeAll(store, v, batches, true);
  await writeAll(store, v, batches, true);
  await expectValues(store, v);
  // Each key set to another value and back by concurrent callers: r0's versions repeat within one batch.
  const flips = await Promise.allSettled(
    Array.from({ length: KEYS }, (_, i) => [store.set(key(i), `w${i}`), store.set(key(i), v(i))]).flat(),
  );
  expect(flips.filter((r) => r.status === 'rejected')).toEqual([]);
  expect(Math.max(...batches)).toBeGreaterThan(2);
  await expectValues(store, v);
}

describe('concurrent writes of versions already stored', () => {
  it('on disk: every write succeeds, and git finds the packs and the repository sound', async () => {
    const store = await diskStore();
    await exercise(store);
    await store.close();
    verifyPacks(store.dir);
    expectFsckClean(store.dir);
    const fresh = await openStore({ fs, dir: store.dir });
    await expectValues(fresh, (i) => `v${i}`);
    expect(git(['--git-dir', store.dir, 'show', `main:${key(7)}`]).toString()).toBe('v7');
  });

  it('on memfs: the same, and the copied repository passes git fsck', async () => {
    const { fs: mfs } = memfs();
    const dir = '/repo/store.git';
    const store = await openStore({ fs: mfs as unknown as FsLike, dir, create: true });
    await exercise(store);
    await store.close();
    const copy = path.join(tempDir(), 'copy.git');
    copyFromMemfs(mfs, dir, copy);
    verifyPacks(copy);
    expectFsckClean(copy);
    expect(git(['--git-dir', copy, 'show', `main:${key(3)}`]).toString()).toBe('v3');
  });
});

describe('store serve: 40 concurrent PUTs, then the same 40 again', () => {
  it('every PUT of both rounds succeeds (201, then 200 or 201), and the repository is sound', async () => {
    const repo = path.join(tempDir(), 'served.git');
    const server = await startServe(repo);
    try {
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(Array.from({ length: KEYS }, (_, i) => put(server.url, key(i), `v${i}`)));
        const failed = answers.filter((a) => a.status < 200 || a.status >= 300);
        expect(failed, `round ${round}; server log:\n${server.stderr()}`).toEqual([]);
      }
    } finally {
      expect(await stopServe(server)).toEqual({ code: 0, signal: null });
    }
    verifyPacks(repo);
    expectFsckClean(repo);
    expect(git(['--git-dir', repo, 'show', `main:${key(39)}`]).toString()).toBe('v39');
  });
});

describe('ObjectBatch: a version added again is not made a patch of itself or of a later version', () => {
  /** A tree body of `n` entries whose first blob oid is `first`. */
  const treeBody = (first: string, n = 40): Uint8Array => {
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const oid = i === 0 ? first : hashObject('blob', Buffer.from(`v${i}`));
      parts.push(Buffer.from(`100644 k${String(i).padStart(2, '0')}\0`), Buffer.from(oid, 'hex'));
    }
    return Buffer.concat(parts);
  };
  const blobA = hashObject('blob', Buffer.from('a'));
  const blobB = hashObject('blob', Buffer.from('b'));
  /** The write patching entry k00 of `body` to `oid` (k00 is first: its oid starts after "100644 k00\0"). */
  const patchOf = (body: Uint8Array, oid: string) => {
    const next = Buffer.from(body);
    const at = '100644 k00\0'.length;
    Buffer.from(oid, 'hex').copy(next, at);
    return { body: next, inPlace: true, writes: [{ at, oid: Buffer.from(oid, 'hex') }] };
  };

  it('A, then A → B and B → A in later requests of the batch: one pack git verifies', async () => {
    const a = treeBody(blobA);
    const b = treeBody(blobB);
    const writer = new ObjectBatch();
    const first = new ObjectBatch(writer);
    const oidA = first.add('tree', a);
    writer.merge(first);
    // Same version again (an unchanged write): a patch of A that leaves A as it was.
    const again = new ObjectBatch(writer);
    expect(again.addPatch(patchOf(a, blobA), oidA)).toBe(oidA);
    writer.merge(again);
    const second = new ObjectBatch(writer);
    const oidB = second.addPatch(patchOf(a, blobB), oidA);
    writer.merge(second);
    // Back to A, built as a patch of B: A is already whole in the batch.
    const third = new ObjectBatch(writer);
    expect(third.addPatch(patchOf(b, blobA), oidB)).toBe(oidA);
    writer.merge(third);
    expect(writer.get(oidA)?.body).toEqual(a);
    expect(writer.get(oidB)?.body).toEqual(b);

    const dir = path.join(tempDir(), 'batch.git');
    git(['init', '--bare', '-q', dir]);
    const db = new ObjectDb(new Files(fs as unknown as FsLike), dir);
    await db.write(writer);
    const { objects } = verifyPacks(dir);
    expect(objects).toBe(2);
    expect(git(['--git-dir', dir, 'cat-file', 'tree', oidA])).toEqual(Buffer.from(a));
    expect(git(['--git-dir', dir, 'cat-file', 'tree', oidB])).toEqual(Buffer.from(b));
  });
});
