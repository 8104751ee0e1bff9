/**
 * Transactions (src/transaction.ts, Store.begin/withTransaction): isolation, fast-forward vs merge commits, conflicts,
 * abort, the short-lived ref, expiry, the per-client cap — run against every store factory — plus, on disk only,
 * what a restart leaves behind and what `git fsck --strict` says after a mixed workload.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Conflict, openStore, type Store, type StoreError } from '../../src/index.js';
import { errorOf, git, sleep, tempDir } from '../helpers.js';
import { factories } from './store-factories.js';

const TX_PREFIX = 'refs/store/tx/';

const codeOf = async (p: Promise<unknown>) => (await errorOf(p)).code;

/** The transaction refs that exist right now, by full name, sorted. */
const txRefs = async (s: Store) => [...(await s.refs.list(TX_PREFIX)).keys()].sort();

/**
 * Polls until `probe` returns `want` (deep equality), up to `ms`; returns the last value seen. A transaction answers a
 * write before its ref has caught up (the ref is mirrored in the background), so "the ref exists after a write" is
 * checked as "it gets there promptly".
 */
async function eventually<T>(probe: () => Promise<T>, want: T, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > until) return got;
    await sleep(5);
  }
}

/** The first-parent subjects of a branch, newest first. */
const subjects = async (s: Store, branch = 'main') =>
  (await s.log({ branch, limit: 1000 })).commits.map((c) => c.subject);

/** `git fsck --strict` on a repository; throws (with git's stderr) unless it is clean. */
function fsckClean(dir: string): void {
  const out = git(['--git-dir', dir, 'fsck', '--strict', '--no-progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Aborted, conflicting and expired transactions leave dangling commits; anything else is a finding.
  const lines = out.toString().split('\n').filter(Boolean);
  expect(lines.filter((l) => !/^dangling (commit|tree|blob) [0-9a-f]{40}$/.test(l))).toEqual([]);
}

/**
 * Stores opened by a test, closed after it: close() waits for background pack consolidation, which must not still be
 * running when the temporary directory is removed.
 */
const opened: Store[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});
const track = async (store: Promise<Store>) => {
  const s = await store;
  opened.push(s);
  return s;
};

for (const factory of factories) {
  describe(`transactions (${factory.name})`, () => {
    const open = (options?: Parameters<typeof factory.open>[0]) => track(factory.open(options));
    /**
     * Checks of what a transaction leaves in the repository and in the store's registry: internals a StoreClient
     * cannot see, so over HTTP they are left out (the rest of each test runs).
     */
    const internally = async (s: Store, check: (local: Store) => Promise<void> | void) => {
      const local = factory.local(s);
      if (local) await check(local);
    };

    it('sees its own writes and deletes; the branch sees none of them until commit', async () => {
      const s = await open();
      await s.batch([
        { op: 'set', key: 'vm/1/state', value: 'halted' },
        { op: 'set', key: 'vm/1/old', value: 'gone soon' },
      ]);
      const before = await s.resolve('main');
      const tx = await s.begin();
      expect(tx.base.commit).toBe(before);
      await tx.set('vm/1/state', 'running');
      await tx.set('vm/1/host', 'h1');
      await tx.delete('vm/1/old');

      expect(await tx.getText('vm/1/state')).toBe('running');
      expect(await tx.getText('vm/1/host')).toBe('h1');
      expect(await codeOf(tx.get('vm/1/old'))).toBe('NOT_FOUND');
      expect((await tx.list('vm/1')).entries.map((e) => e.key)).toEqual(['vm/1/host', 'vm/1/state']);
      expect((await tx.list('', { recursive: true })).entries.map((e) => e.key)).toEqual(['vm/1/host', 'vm/1/state']);

      // The branch is exactly as it was.
      expect(await s.resolve('main')).toBe(before);
      expect(await s.getText('vm/1/state')).toBe('halted');
      expect(await s.getText('vm/1/old')).toBe('gone soon');
      expect(await codeOf(s.get('vm/1/host'))).toBe('NOT_FOUND');
      expect((await s.list('vm/1')).entries.map((e) => e.key)).toEqual(['vm/1/old', 'vm/1/state']);

      await tx.commit();
      expect(await s.getText('vm/1/state')).toBe('running');
      expect(await s.getText('vm/1/host')).toBe('h1');
      expect(await codeOf(s.get('vm/1/old'))).toBe('NOT_FOUND');
    });

    it('commits as a fast-forward when the branch did not move: one `set …` commit per write', async () => {
      const s = await open();
      const seed = (await s.set('seed', 'x')).commit;
      const tx = await s.begin();
      const writes = [];
      writes.push(await tx.set('a', '1'));
      writes.push(await tx.set('b/c', '2'));
      writes.push(await tx.delete('seed'));
      writes.push(await tx.set('a', '3'));
      const last = writes.at(-1)!.commit;
      expect(tx.head.commit).toBe(last);

      const result = await tx.commit();
      expect(result).toEqual({ commit: last, outcome: 'fast-forward' });
      expect(await s.resolve('main')).toBe(last);
      expect(await subjects(s)).toEqual(['set a', 'delete seed', 'set b/c', 'set a', 'set seed']);
      // The chain is exactly the transaction's commits, each the only child of the one before, on top of the seed.
      const { commits } = await s.log();
      expect(commits.slice(0, 4).map((c) => c.id)).toEqual(writes.map((w) => w.commit).reverse());
      for (let i = 0; i < 4; i++) expect(commits[i]!.parents).toEqual([commits[i + 1]!.id]);
      expect(commits[4]!.id).toBe(seed);
      expect(await s.getText('a')).toBe('3');
      expect(await s.getText('b/c')).toBe('2');
    });

    it('commits with a merge commit [branch head, tx head] when the branch moved on other keys', async () => {
      const s = await open();
      await s.set('shared', 'base');
      const tx = await s.begin({ author: { name: 'Tess', email: 'tess@example.org' } });
      await tx.set('tx/key', 'from tx');
      const txHead = (await tx.set('shared2', 'from tx too')).commit;
      const branchHead = (await s.set('branch/key', 'from branch')).commit;

      const result = await tx.commit();
      expect(result.outcome).toBe('merged');
      expect(await s.resolve('main')).toBe(result.commit);
      const merge = await s.commit(result.commit!);
      expect(merge.parents).toEqual([branchHead, txHead]);
      expect(merge.subject).toBe(`commit transaction ${tx.id}`);
      expect(merge.author).toMatchObject({ name: 'Tess', email: 'tess@example.org' });
      expect(await s.getText('tx/key')).toBe('from tx');
      expect(await s.getText('shared2')).toBe('from tx too');
      expect(await s.getText('branch/key')).toBe('from branch');
      expect(await s.getText('shared')).toBe('base');
      expect((await subjects(s)).slice(0, 3)).toEqual([`commit transaction ${tx.id}`, 'set branch/key', 'set shared']);
    });

    it('commits an empty transaction as a no-op', async () => {
      const s = await open();
      const head = (await s.set('k', 'v')).commit;
      const tx = await s.begin();
      expect(await tx.getText('k')).toBe('v');
      expect(await tx.commit()).toEqual({ commit: head, outcome: 'empty' });
      expect(await s.resolve('main')).toBe(head);
    });

    it('lets exactly one of two transactions writing one key to different values commit', async () => {
      const s = await open();
      await s.set('vm/1/host', 'none');
      const t1 = await s.begin();
      const t2 = await s.begin();
      await t1.set('vm/1/host', 'h1');
      await t1.set('only/t1', 'yes');
      await t2.set('vm/1/host', 'h2');
      await t2.set('only/t2', 'yes');

      const results = await Promise.allSettled([t1.commit(), t2.commit()]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const error = lost[0]!.reason as StoreError<{ conflicts: Conflict[] }>;
      expect(error.code).toBe('CONFLICT');
      expect(error.data.conflicts).toEqual([expect.objectContaining({ key: 'vm/1/host', kind: 'both-modified' })]);
      expect(error.message).toContain('vm/1/host');

      const [winner, loser] = results[0]!.status === 'fulfilled' ? ['t1', 't2'] : ['t2', 't1'];
      expect(await s.getText('vm/1/host')).toBe(winner === 't1' ? 'h1' : 'h2');
      expect(await s.getText(`only/${winner}`)).toBe('yes');
      expect(await codeOf(s.get(`only/${loser}`))).toBe('NOT_FOUND');
      // The loser is over: gone from the store, its ref removed.
      const loserTx = loser === 't1' ? t1 : t2;
      expect(await codeOf(loserTx.set('again', 'x'))).toBe('NOT_FOUND');
      await internally(s, async (local) => {
        expect(await codeOf(Promise.resolve().then(() => local.transaction(loserTx.id)))).toBe('NOT_FOUND');
        expect(await txRefs(local)).toEqual([]);
      });
    });

    it('aborts a serializable transaction whose read key changed; a snapshot one with the same history commits', async () => {
      const s = await open();
      await s.set('price', '10');
      const run = async (isolation: 'snapshot' | 'serializable') => {
        const tx = await s.begin({ isolation });
        expect(await tx.getText('price')).toBe('10');
        await tx.set(`order/${isolation}`, 'at 10');
        await s.set('price', '12'); // the branch changes what the transaction read
        const outcome = await tx.commit().then(
          (r) => ({ ok: true as const, r }),
          (e: StoreError) => ({ ok: false as const, e }),
        );
        await s.set('price', '10'); // back, so the next run sees the identical history
        if (!outcome.ok) throw outcome.e;
        return outcome.r;
      };
      const error = (await errorOf(run('serializable'))) as StoreError<{ conflicts: Conflict[] }>;
      expect(error.code).toBe('CONFLICT');
      expect(error.data.conflicts).toEqual([expect.objectContaining({ key: 'price', kind: 'read-modified' })]);
      expect(await codeOf(s.get('order/serializable'))).toBe('NOT_FOUND');

      const ok = await run('snapshot');
      expect(ok.outcome).toBe('merged');
      expect(await s.getText('order/snapshot')).toBe('at 10');
    });

    it('commits a serializable transaction when the branch only changed keys it did not read', async () => {
      const s = await open();
      await s.batch([
        { op: 'set', key: 'price', value: '10' },
        { op: 'set', key: 'stock', value: '5' },
      ]);
      const tx = await s.begin({ isolation: 'serializable' });
      expect(await tx.getText('price')).toBe('10');
      expect(await codeOf(tx.get('absent'))).toBe('NOT_FOUND');
      await tx.set('order/1', 'at 10');
      await s.set('stock', '4');
      expect((await tx.commit()).outcome).toBe('merged');
      expect(await s.getText('order/1')).toBe('at 10');

      // Reading a key that was absent counts too: it appearing is a change.
      const tx2 = await s.begin({ isolation: 'serializable' });
      expect(await codeOf(tx2.get('absent'))).toBe('NOT_FOUND');
      await tx2.set('order/2', 'x');
      await s.set('absent', 'now present');
      const error = (await errorOf(tx2.commit())) as StoreError<{ conflicts: Conflict[] }>;
      expect(error.code).toBe('CONFLICT');
      expect(error.data.conflicts).toEqual([expect.objectContaining({ key: 'absent', kind: 'read-modified' })]);
    });

    it('aborts a read-only serializable transaction whose read changed, and commits it when nothing changed', async () => {
      const s = await open();
      const head = (await s.set('k', '1')).commit;
      const quiet = await s.begin({ isolation: 'serializable' });
      await quiet.get('k');
      expect(await quiet.commit()).toEqual({ commit: head, outcome: 'empty' });

      const tx = await s.begin({ isolation: 'serializable' });
      await tx.get('k');
      await s.set('k', '2');
      const error = (await errorOf(tx.commit())) as StoreError<{ conflicts: Conflict[] }>;
      expect(error.code).toBe('CONFLICT');
      expect(error.data.conflicts.map((c) => c.key)).toEqual(['k']);
    });

    it('aborts a serializable transaction that listed a prefix when a key is added under it', async () => {
      const s = await open();
      await s.set('vm/1/name', 'web');
      const tx = await s.begin({ isolation: 'serializable' });
      expect((await tx.list('vm')).entries.map((e) => e.key)).toEqual(['vm/1']);
      await tx.set('vm/count', '1');
      await s.set('vm/2/name', 'db');
      const error = (await errorOf(tx.commit())) as StoreError<{ conflicts: Conflict[] }>;
      expect(error.code).toBe('CONFLICT');
      expect(error.data.conflicts).toEqual([expect.objectContaining({ key: 'vm', kind: 'read-modified' })]);
      expect(await codeOf(s.get('vm/count'))).toBe('NOT_FOUND');

      // A prefix that was empty (so NOT_FOUND: git has no empty directories) when listed, then gained a key.
      const tx2 = await s.begin({ isolation: 'serializable' });
      expect(await codeOf(tx2.list('pool', { recursive: true }))).toBe('NOT_FOUND');
      await tx2.set('report', 'pool empty');
      await s.set('pool/a/b', 'x');
      expect(await codeOf(tx2.commit())).toBe('CONFLICT');
      expect(await codeOf(s.get('report'))).toBe('NOT_FOUND');

      // The same under snapshot isolation commits, and a change outside the listed prefix never aborts.
      const snap = await s.begin();
      await snap.list('vm');
      await snap.set('vm/count', '2');
      await s.set('vm/3/name', 'cache');
      expect((await snap.commit()).outcome).toBe('merged');
      const outside = await s.begin({ isolation: 'serializable' });
      await outside.list('vm');
      await outside.set('vm/count', '3');
      await s.set('elsewhere', 'x');
      expect((await outside.commit()).outcome).toBe('merged');
      expect(await s.getText('vm/count')).toBe('3');
    });

    it('abort leaves the branch untouched; every later call on the transaction is NOT_FOUND', async () => {
      const s = await open();
      const head = (await s.set('k', 'before')).commit;
      const tx = await s.begin();
      await tx.set('k', 'during');
      const last = (await tx.set('new', 'x')).commit;
      await internally(s, async (local) => {
        expect(await eventually(() => local.refs.read(tx.ref), last)).toBe(last);
      });
      await tx.abort();

      expect(await s.resolve('main')).toBe(head);
      expect(await s.getText('k')).toBe('before');
      expect(await codeOf(s.get('new'))).toBe('NOT_FOUND');
      await internally(s, async (local) => expect(await txRefs(local)).toEqual([]));
      for (const call of [
        () => tx.get('k'),
        () => tx.read('k'),
        () => tx.list(''),
        () => tx.set('k', 'after'),
        () => tx.delete('k'),
        () => tx.commit(),
        () => tx.abort(),
      ]) {
        expect(await codeOf(call())).toBe('NOT_FOUND');
      }
      await internally(s, async (local) =>
        expect(await codeOf(Promise.resolve().then(() => local.transaction(tx.id)))).toBe('NOT_FOUND'),
      );
      expect(await s.resolve('main')).toBe(head);
    });

    it.runIf(factory.can('internals'))(
      'keeps refs/store/tx/<id> while open (after a write) and removes it after commit and after abort',
      async () => {
        const s = await open();
        await s.set('seed', 'x');
        const committed = await s.begin();
        const aborted = await s.begin();
        expect(committed.ref).toBe(`${TX_PREFIX}${committed.id}`);
        expect(await txRefs(s)).toEqual([]); // no ref before the first write
        const c1 = (await committed.set('a', '1')).commit;
        expect(await eventually(() => s.refs.read(committed.ref), c1)).toBe(c1);
        const c2 = (await committed.set('b', '2')).commit;
        expect(await eventually(() => s.refs.read(committed.ref), c2)).toBe(c2);
        const c3 = (await aborted.set('c', '3')).commit;
        expect(await eventually(() => s.refs.read(aborted.ref), c3)).toBe(c3);
        expect(await txRefs(s)).toEqual([committed.ref, aborted.ref].sort());
        // The ref is a real commit chain: the transaction's writes on top of the branch head it forked from.
        expect((await s.commit(c2)).parents).toEqual([c1]);
        expect((await s.commit(c1)).parents).toEqual([committed.base.commit]);
        expect(s.transaction(committed.id)).toBe(committed);

        await committed.commit();
        expect(await s.refs.read(committed.ref)).toBeNull();
        expect(await txRefs(s)).toEqual([aborted.ref]);
        await aborted.abort();
        expect(await txRefs(s)).toEqual([]);
      },
    );

    it('commits to its own branch only', async () => {
      const s = await open();
      const mainHead = (await s.set('k', 'main')).commit;
      await s.createBranch('side');
      const tx = await s.begin({ branch: 'side' });
      expect(tx.branch).toBe('side');
      await tx.set('k', 'side');
      await tx.commit();
      expect(await s.getText('k', { branch: 'side' })).toBe('side');
      expect(await s.getText('k')).toBe('main');
      expect(await s.resolve('main')).toBe(mainHead);
      expect(await codeOf(s.begin({ branch: 'missing' }))).toBe('NOT_FOUND');
      expect(await codeOf(s.begin({ isolation: 'linearizable' as 'snapshot' }))).toBe('INVALID_ARGUMENT');
    });

    describe('withTransaction', () => {
      it('retries a conflicting fn and commits on a later attempt; gives up after `retries`', async () => {
        const s = await open();
        await s.set('k', '0');
        let runs = 0;
        const result = await s.withTransaction(
          async (tx) => {
            runs++;
            const n = Number(await tx.getText('k'));
            await tx.set('k', String(n + 1));
            if (runs === 1) await s.set('k', '100'); // someone else wins the first time
            return n;
          },
          { retries: 1 },
        );
        expect(runs).toBe(2);
        expect(result.value).toBe(100);
        expect(await s.getText('k')).toBe('101');
        expect(result.commit).toBe(await s.resolve('main'));

        runs = 0;
        const error = await errorOf(
          s.withTransaction(
            async (tx) => {
              runs++;
              await tx.set('k', `mine ${runs}`);
              await s.set('k', `theirs ${runs}`);
            },
            { retries: 2 },
          ),
        );
        expect(error.code).toBe('CONFLICT');
        expect(runs).toBe(3);
        expect(await s.getText('k')).toBe('theirs 3');
        await internally(s, async (local) => expect(await txRefs(local)).toEqual([]));
      });

      it('aborts and rethrows when fn throws', async () => {
        const s = await open();
        const head = (await s.set('k', 'v')).commit;
        let id = '';
        await expect(
          s.withTransaction(async (tx) => {
            id = tx.id;
            await tx.set('k', 'half done');
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        expect(await s.resolve('main')).toBe(head);
        await internally(s, async (local) =>
          expect(await codeOf(Promise.resolve().then(() => local.transaction(id)))).toBe('NOT_FOUND'),
        );
        await internally(s, async (local) => expect(await txRefs(local)).toEqual([]));
      });

      it('20 concurrent serializable counter increments end at exactly 20', async () => {
        const s = await open();
        await s.set('other', 'x');
        let runs = 0;
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            s.withTransaction(
              async (tx) => {
                runs++;
                const n = await tx.getText('counter').then(Number, (e: StoreError) => {
                  if (e.code === 'NOT_FOUND') return 0;
                  throw e;
                });
                await tx.set('counter', String(n + 1));
                await tx.set(`seen/${i}`, String(n));
                return n;
              },
              { isolation: 'serializable', retries: 200 },
            ),
          ),
        );
        expect(await s.getText('counter')).toBe('20');
        // Each increment saw a different count: 0..19, so no two of them were based on the same read.
        expect(results.map((r) => r.value).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
        for (let i = 0; i < 20; i++) expect(await s.getText(`seen/${i}`)).toBe(String(results[i]!.value));
        expect(runs).toBeGreaterThanOrEqual(20);
        await internally(s, async (local) => expect(await txRefs(local)).toEqual([]));
      });
    });

    it.runIf(factory.can('settings'))(
      'expires an idle transaction (NOT_FOUND, ref removed) but not one in use',
      async () => {
        // Idle time 1 s, not less: on a loaded machine one `set` can take a few hundred ms, which must not count as idle.
        const s = await open({ transactionIdleMs: 1000 });
        const head = (await s.set('k', 'v')).commit;
        const idle = await s.begin();
        await idle.set('k', 'idle write');
        const busy = await s.begin();
        await busy.set('busy', '0');
        const both = [idle.ref, busy.ref].sort();
        expect(await eventually(() => txRefs(s), both)).toEqual(both);
        for (let i = 1; i <= 20; i++) {
          await sleep(100);
          await busy.set('busy', String(i)); // used every 100 ms: never idle for 1 s
        }
        expect(await codeOf(idle.get('k'))).toBe('NOT_FOUND');
        expect(await codeOf(idle.commit())).toBe('NOT_FOUND');
        expect(await codeOf(Promise.resolve().then(() => s.transaction(idle.id)))).toBe('NOT_FOUND');
        expect(await txRefs(s)).toEqual([busy.ref]);
        expect(await s.resolve('main')).toBe(head);

        expect(s.transaction(busy.id)).toBe(busy);
        expect((await busy.commit()).outcome).toBe('fast-forward');
        expect(await s.getText('busy')).toBe('20');
        expect(await s.getText('k')).toBe('v');
        await s.close();
      },
    );

    it.runIf(factory.can('settings'))('expires a transaction that never wrote', async () => {
      const s = await open({ transactionIdleMs: 200 });
      const tx = await s.begin({ client: 'c' });
      await sleep(1000);
      expect(await codeOf(tx.get('x'))).toBe('NOT_FOUND');
      // Its slot is free again.
      const s2tx = await s.begin({ client: 'c' });
      await s2tx.abort();
      await s.close();
    });

    it.runIf(factory.can('settings'))(
      'caps open transactions per client with QUOTA; other clients, and freed slots, still begin',
      async () => {
        const s = await open({ maxTransactionsPerClient: 3 });
        const mine = [];
        for (let i = 0; i < 3; i++) mine.push(await s.begin({ client: 'vm-agent' }));
        const error = await errorOf(s.begin({ client: 'vm-agent' }));
        expect(error.code).toBe('QUOTA');
        expect(error.message).toMatch(/vm-agent already has 3 open transactions \(the limit\); commit or abort/);
        expect(error.data).toEqual({ client: 'vm-agent', limit: 3 });

        const other = await s.begin({ client: 'someone-else' });
        const local = await s.begin(); // no client: counted as "local"
        await other.set('other', 'x');
        await other.commit();
        await local.abort();

        await mine[0]!.abort();
        await mine[1]!.set('k', 'v');
        await mine[1]!.commit();
        const again = [await s.begin({ client: 'vm-agent' }), await s.begin({ client: 'vm-agent' })];
        expect(await codeOf(s.begin({ client: 'vm-agent' }))).toBe('QUOTA');
        for (const tx of [mine[2]!, ...again]) await tx.abort();
      },
    );
  });
}

describe('transactions on disk', () => {
  const disk = factories.find((f) => f.name === 'disk')!;

  it('a restarted store drops the old process’s transaction: stale ref removed, writes never on the branch', async () => {
    const dir = path.join(tempDir(), 'store.git');
    const first = await track(openStore({ fs, dir, create: true }));
    const head = (await first.set('vm/1/state', 'halted')).commit;
    const tx = await first.begin();
    await tx.set('vm/1/state', 'running');
    const ghost = (await tx.set('ghost', 'never committed')).commit;
    const refFile = path.join(dir, tx.ref);
    const onDisk = async () => (fs.existsSync(refFile) ? fs.readFileSync(refFile, 'utf8').trim() : null);
    expect(await eventually(onDisk, ghost)).toBe(ghost);
    expect(git(['--git-dir', dir, 'for-each-ref', '--format=%(refname)', TX_PREFIX]).toString().trim()).toBe(tx.ref);
    // `first` is dropped here, as if its process had died: the transaction is neither committed nor aborted.

    // A store opened while the ref is still younger than its idle limit leaves it alone (it may be live).
    const concurrent = await track(openStore({ fs, dir }));
    expect(fs.existsSync(refFile)).toBe(true);
    await concurrent.close();

    await sleep(150);
    const restarted = await track(openStore({ fs, dir, transactionIdleMs: 50 }));
    expect(fs.existsSync(refFile)).toBe(false);
    expect(await txRefs(restarted)).toEqual([]);
    expect(git(['--git-dir', dir, 'for-each-ref', TX_PREFIX]).toString()).toBe('');
    expect(await restarted.resolve('main')).toBe(head);
    expect(await restarted.getText('vm/1/state')).toBe('halted');
    expect(await codeOf(restarted.get('ghost'))).toBe('NOT_FOUND');
    expect(await codeOf(Promise.resolve().then(() => restarted.transaction(tx.id)))).toBe('NOT_FOUND');
    expect(git(['--git-dir', dir, 'rev-parse', 'main']).toString().trim()).toBe(head);

    // The restarted store works normally, transactions included.
    const next = await restarted.begin();
    await next.set('vm/1/state', 'running');
    await next.commit();
    expect(await restarted.getText('vm/1/state')).toBe('running');
    await restarted.close();
    fsckClean(dir);
    // Tidy up the "dead" store's transaction (its ref is already gone, so this removes nothing).
    await tx.abort();
    expect(fs.existsSync(refFile)).toBe(false);
    await first.close();
  });

  it('git fsck --strict is clean after a mixed workload of commits, merges, conflicts, aborts and expiries', async () => {
    const s = await track(disk.open({ transactionIdleMs: 200 }));
    await s.batch(Array.from({ length: 20 }, (_, i) => ({ op: 'set' as const, key: `tool/t${i}`, value: `v${i}` })));
    await s.createBranch('side');

    const work = Array.from({ length: 40 }, async (_, i) => {
      const tx = await s.begin({
        isolation: i % 3 === 0 ? 'serializable' : 'snapshot',
        branch: i % 5 === 0 ? 'side' : undefined,
      });
      await tx.list('tool');
      await tx.get(`tool/t${i % 20}`);
      await tx.set(`local/${i}/a`, `a${i}`);
      await tx.set(`local/${i}/b`, Buffer.from([i, 0, 255]));
      if (i % 4 === 0) await tx.set('hot', `writer ${i}`); // contended: some of these conflict
      if (i % 7 === 0) await tx.delete(`local/${i}/a`);
      if (i % 6 === 5) return tx.abort();
      if (i % 9 === 8) return; // left open: expires
      await tx.commit().catch((e: StoreError) => {
        if (e.code !== 'CONFLICT') throw e;
      });
    });
    const direct = Array.from({ length: 20 }, (_, i) =>
      i % 2 ? s.set(`direct/${i}`, String(i)) : s.set(`tool/t${i}`, `changed ${i}`),
    );
    await Promise.all([...work, ...direct]);
    await s.merge('side', { strategy: 'theirs' }).catch((e: StoreError) => {
      if (e.code !== 'CONFLICT') throw e;
    });
    expect(await eventually(() => txRefs(s), [])).toEqual([]); // the open ones expire
    await s.close();
    fsckClean(s.dir);
    expect(git(['--git-dir', s.dir, 'rev-list', '--count', 'main']).toString().trim()).toMatch(/^\d+$/);
  });
});
