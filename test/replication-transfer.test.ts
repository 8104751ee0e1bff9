/**
 * How replicas pull each other without git (issue 14, the lag target): a peer answers the commits a replica lacks
 * with their trees and blobs (Store.outgoing, POST /v1/replication/branches/:b/objects), and the replica stores
 * them only once they are whole (Store.pullObjects). Checked against plain git: what is sent is what `git rev-list
 * --objects WANT --not HAVES` lists, and the receiver passes `git fsck --strict` with the peer's head.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { decodeObjects, encodeObjects, type Store, StoreClient } from '../src/index.js';
import { hashObject } from '../src/objects/object.js';
import { expectFsckClean } from './git-packs.js';
import { codeOf, diskStore, git } from './helpers.js';

const revListObjects = (dir: string, want: string, haves: string[]) =>
  new Set(
    git(['--git-dir', dir, 'rev-list', '--objects', want, '--not', ...haves])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(0, 40)),
  );

/** A peer with a history of branches, merges (a criss-cross among them), deletions and a wide directory. */
async function history(store: Store): Promise<string[]> {
  const marks: string[] = [];
  await store.batch(Array.from({ length: 300 }, (_, i) => ({ op: 'set' as const, key: `wide/k${i}`, value: `${i}` })));
  marks.push(await store.resolve('main'));
  await store.createBranch('dev');
  for (let round = 0; round < 3; round++) {
    await store.set(`a/r${round}`, `main ${round}`);
    await store.set(`wide/k${round}`, `changed on main ${round}`);
    await store.set(`b/r${round}`, `dev ${round}`, { branch: 'dev' });
    await store.delete(`wide/k${100 + round}`, { branch: 'dev' });
    marks.push(await store.resolve('main'));
    await store.merge('dev', { into: 'main' });
    await store.merge('main', { into: 'dev' });
  }
  await store.set('a/back', '0'); // a value that was seen before, at another path
  marks.push(await store.resolve('main'));
  return marks;
}

/** A replica that has `at` of the peer's main (a git clone, then reset to it). */
async function replicaAt(peer: Store, at: string): Promise<Store> {
  const replica = await diskStore();
  git(['--git-dir', replica.dir, 'fetch', '-q', peer.dir, `${at}:refs/heads/main`, '--update-head-ok']);
  return replica;
}

/** A peer with one commit (`key` = `value`), and a replica of it at that commit. */
async function forked(key: string, value: string) {
  const peer = await diskStore();
  await peer.set(key, value);
  const base = await peer.resolve('main');
  return { peer, base, replica: await replicaAt(peer, base) };
}

describe('replication transfer: Store.outgoing and Store.pullObjects', () => {
  it('sends what git would send, and the receiver is whole and fsck-clean at the peer’s head', async () => {
    // Several commits in each second, as a busy replica makes them: the walk must still tell what the receiver has.
    let ticks = 0;
    const peer = await diskStore({ clock: () => new Date(Date.UTC(2026, 0, 1) + Math.floor(ticks++ / 3) * 1000) });
    const marks = await history(peer);
    const head = await peer.resolve('main');
    for (const at of marks) {
      const { head: sent, objects } = await peer.outgoing('main', [at]);
      expect(sent).toBe(head);
      const replica = await replicaAt(peer, at);
      // What is sent is what git would send (new since `at`), no object twice, and at most a value the receiver had
      // at another path or time (here `a/back`, whose value `0` is also `wide/k0`'s first).
      const rev = revListObjects(peer.dir, head, [at]);
      const had = revListObjects(peer.dir, at, []);
      const oids = objects.map((o) => hashObject(o.type, o.body));
      expect(new Set(oids).size).toBe(oids.length);
      const extra = oids.filter((oid) => !rev.has(oid));
      for (const oid of extra) expect(had.has(oid), `${oid} is neither new since ${at} nor in its history`).toBe(true);
      expect(extra.length).toBeLessThanOrEqual(1);
      for (const oid of rev) expect(oids.includes(oid), `${oid} is new since ${at} and was not sent`).toBe(true);
      // What a wire carries, the receiver takes; the branch fast-forwards to the peer's head.
      const pulled = await replica.pullObjects('http://peer.example/git', sent, decodeObjects(encodeObjects(objects)));
      expect(pulled.merge).toEqual({ commit: head, outcome: at === head ? 'up-to-date' : 'fast-forward' });
      // The tracking ref a `store fetch` of the same URL moves.
      expect(pulled.fetched).toEqual([
        { ref: expect.stringMatching(/^refs\/remotes\/peer_example_git-[0-9a-f]{8}\/main$/), old: null, new: head },
      ]);
      expectFsckClean(replica.dir);
      await replica.close();
    }
    // Up to date: nothing to send. A commit the peer does not know is ignored; none known sends the whole history.
    expect((await peer.outgoing('main', [head])).objects).toEqual([]);
    const unknown = 'f'.repeat(40);
    const all = await peer.outgoing('main', [unknown]);
    expect(all.objects.length).toBe(revListObjects(peer.dir, head, []).size);
  });

  it('merges what it received with the branch’s own commits, as a pull does', async () => {
    const { peer, base, replica } = await forked('shared', 'base');
    await peer.set('theirs', '1');
    await replica.set('ours', '1');
    const offer = await peer.outgoing('main', [await replica.resolve('main'), base]);
    const pulled = await replica.pullObjects('http://peer.example/git', offer.head, offer.objects, {
      deterministic: true,
    });
    expect(pulled.merge.outcome).toBe('merged');
    expect(await replica.getText('theirs')).toBe('1');
    expect(await replica.getText('ours')).toBe('1');
    expectFsckClean(replica.dir);
  });

  it('refuses an incomplete or damaged stream and stores nothing; a transfer past the limit is TOO_LARGE', async () => {
    const { peer, base, replica } = await forked('k', 'v1');
    await peer.set('k', 'v2');
    await peer.set('dir/x', 'new');
    const { head, objects } = await peer.outgoing('main', [base]);
    const refsBefore = git(['--git-dir', replica.dir, 'for-each-ref']).toString();
    const packsBefore = git(['--git-dir', replica.dir, 'count-objects', '-v']).toString();
    // Each object left out in turn: the receiver finds what is missing.
    for (let i = 0; i < objects.length; i++) {
      const missing = objects.filter((_, j) => j !== i);
      await expect(replica.pullObjects('http://peer.example/git', head, missing)).rejects.toThrow(/incomplete/);
    }
    // A malformed tree (its bytes cut short) is refused too.
    const cut = objects.map((o) => (o.type === 'tree' ? { ...o, body: o.body.subarray(0, 10) } : o));
    expect(await codeOf(replica.pullObjects('http://peer.example/git', head, cut))).toBe('REMOTE');
    expect(() => decodeObjects(encodeObjects(objects).subarray(0, 20))).toThrow(/truncated/);
    expect(() => decodeObjects(new Uint8Array([1, 2, 3, 4, 5]))).toThrow(/not a GSO1 body/);
    expect(git(['--git-dir', replica.dir, 'for-each-ref']).toString()).toBe(refsBefore);
    expect(git(['--git-dir', replica.dir, 'count-objects', '-v']).toString()).toBe(packsBefore);
    expect(await codeOf(replica.outgoing('nope', []))).toBe('NOT_FOUND');
    // Seven objects are new (two commits, three trees, two blobs): six is past the limit; git carries such transfers.
    expect(objects).toHaveLength(7);
    expect((await peer.outgoing('main', [base], 7)).objects).toHaveLength(7);
    expect(await codeOf(peer.outgoing('main', [base], 6))).toBe('TOO_LARGE');
    await replica.close();
  });
});

describe('replication transfer over HTTP', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('POST /v1/replication/branches/:b/objects answers the objects with the head, and bad requests clearly', async () => {
    const peer = await diskStore();
    await peer.set('k', 'v1');
    const base = await peer.resolve('main');
    await peer.set('k', 'v2');
    const app = await buildApp({ store: peer });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    const client = new StoreClient(url);
    closers.push(() => client.close());
    const offer = await client.outgoing('main', [base]);
    expect(offer.head).toBe(await peer.resolve('main'));
    expect(offer.objects.map((o) => o.type).sort()).toEqual(['blob', 'commit', 'tree']);
    expect(await codeOf(client.outgoing('nope', []))).toBe('NOT_FOUND');
    const post = (body: string) =>
      fetch(`${url}/v1/replication/branches/main/objects`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
    for (const body of ['{"have": ["not an oid"]}', '{}', 'not json', `{"have": [], "extra": 1}`]) {
      const r = await post(body);
      expect(r.status, body).toBe(400);
      const text = await r.text();
      expect(JSON.parse(text).error.code, text).toMatch(/INVALID_ARGUMENT/);
      expect(text).not.toContain(peer.dir);
    }
  });
});
