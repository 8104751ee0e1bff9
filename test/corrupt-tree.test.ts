/**
 * Issue 13 (the house): a tree object that does not parse is a damaged repository — CORRUPT, naming the object —
 * not an INTERNAL error. The malformed tree is written by plain git (`hash-object --literally`), and a branch moved
 * onto a commit of it; the store then reads it through the library and through a real `store serve`.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openStore, StoreError } from '../src/index.js';
import { diskStore, git } from './helpers.js';
import { put, startServe, stopServe } from './serve.js';

/** Points main at a commit whose root tree is `body` (written by git as a tree, unchecked); returns the tree's id. */
function commitMalformedTree(dir: string, body: Buffer): string {
  const tree = git(['--git-dir', dir, 'hash-object', '-t', 'tree', '--literally', '-w', '--stdin'], {
    input: body,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
    .toString()
    .trim();
  const commit = git(['--git-dir', dir, 'commit-tree', tree, '-p', 'main', '-m', 'a malformed tree']).toString().trim();
  git(['--git-dir', dir, 'update-ref', 'refs/heads/main', commit]);
  return tree;
}

/** The error a promise rejects with (fails the test when it resolves). */
async function errorOf(p: Promise<unknown>): Promise<StoreError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'expected an error').toBeInstanceOf(StoreError);
  return e as StoreError;
}

describe('a tree that does not parse', () => {
  it('reads, lists and writes on its branch fail with CORRUPT naming the tree; other branches still work', async () => {
    const store = await diskStore();
    await store.set('a', '1');
    await store.createBranch('good');
    // One entry cut short: a mode, a name and its NUL, then 10 of the 20 bytes of the oid.
    const tree = commitMalformedTree(store.dir, Buffer.concat([Buffer.from('100644 a\0'), Buffer.alloc(10, 7)]));
    await store.close();

    const fresh = await openStore({ fs, dir: store.dir });
    for (const attempt of [() => fresh.get('a'), () => fresh.list(''), () => fresh.set('b', '2')]) {
      const e = await errorOf(attempt());
      expect(e.code).toBe('CORRUPT');
      expect(e.message).toContain(tree);
      expect(e.message).toMatch(/git fsck/);
      expect(e.data).toMatchObject({ oid: tree });
    }
    expect(await fresh.getText('a', { branch: 'good' })).toBe('1');
    await fresh.close();
  });

  it('over HTTP: the status of CORRUPT and a message naming the tree, never INTERNAL or a server path', async () => {
    const store = await diskStore();
    await store.set('a', '1');
    await store.close();
    const tree = commitMalformedTree(store.dir, Buffer.from('not a tree at all'));
    const server = await startServe(store.dir);
    try {
      const res = await fetch(`${server.url}/v1/branches/main/keys/a`);
      const body = (await res.json()) as { error: { code: string; message: string; data: { oid: string } } };
      expect(body.error.code).toBe('CORRUPT');
      expect(res.status).toBe(500);
      expect(body.error.message).toContain(tree);
      expect(body.error.data.oid).toBe(tree);
      expect(JSON.stringify(body)).not.toContain(store.dir);
      const write = await put(server.url, 'b', '2');
      expect(JSON.parse(write.body).error.code).toBe('CORRUPT');
    } finally {
      expect(await stopServe(server)).toEqual({ code: 0, signal: null });
    }
  });
});
