import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/index.js';
import { codeOf } from '../helpers.js';
import { factories } from './store-factories.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

for (const factory of factories) {
  describe(`store conformance (${factory.name})`, () => {
    const open = factory.open;

    it('sets, gets and lists keys; values round-trip byte-exact', async () => {
      const s = await open();
      const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
      await s.set('vm/1/name', 'web');
      await s.set('/vm/1/image', binary);
      await s.set('vm/2/name', 'db');
      await s.set('top', 'level');
      expect(await s.getText('vm/1/name')).toBe('web');
      expect(Buffer.from(await s.get('vm/1/image')).equals(Buffer.from(binary))).toBe(true);
      expect((await s.list('')).entries.map((e) => [e.key, e.type])).toEqual([
        ['top', 'value'],
        ['vm', 'dir'],
      ]);
      expect((await s.list('vm')).entries.map((e) => e.key)).toEqual(['vm/1', 'vm/2']);
      expect((await s.list('vm', { recursive: true })).entries.map((e) => e.key)).toEqual([
        'vm/1/image',
        'vm/1/name',
        'vm/2/name',
      ]);
      // A directory exists while something is below it: a missing one is NOT_FOUND, like a missing key.
      expect(await codeOf(s.list('missing'))).toBe('NOT_FOUND');
      expect(await codeOf(s.list('vm/3', { recursive: true }))).toBe('NOT_FOUND');
      expect(await codeOf(s.list('top'))).toBe('KEY_IS_VALUE');
      expect(await codeOf(s.get('vm/1'))).toBe('NOT_FOUND');
      expect(await codeOf(s.get('nope'))).toBe('NOT_FOUND');
    });

    it('a write that leaves the tree as it was makes no commit and says so (changed: false)', async () => {
      const s = await open();
      const first = await s.set('a/b', '1');
      expect(first).toMatchObject({ created: true, changed: true });
      const again = await s.set('a/b', '1');
      expect(again).toMatchObject({ commit: first.commit, created: false, changed: false, oid: first.oid });
      const batch = await s.batch([
        { op: 'set', key: 'a/b', value: '1' },
        { op: 'set', key: 'a/c', value: '2' },
        { op: 'delete', key: 'a/c' },
      ]);
      expect(batch).toEqual({ commit: first.commit, changed: false });
      const tx = await s.begin();
      await tx.set('a/b', '1');
      expect(await tx.commit()).toMatchObject({ commit: first.commit, outcome: 'empty' });
      const tx2 = await s.begin();
      await tx2.set('a/b', '2');
      await tx2.set('a/b', '1');
      expect(await tx2.commit()).toMatchObject({ commit: first.commit, outcome: 'empty' });
      // A real change after all that is the second commit, the child of the first.
      const changed = await s.set('a/b', '3');
      expect(changed.changed).toBe(true);
      const { commits } = await s.log();
      expect(commits.map((c) => c.subject)).toEqual(['set a/b', 'set a/b']);
      expect(commits[0]!.parents).toEqual([first.commit]);
    });

    it('refuses control characters in messages and branch names git cannot store, writing nothing', async () => {
      const s = await open();
      await s.set('a', '1');
      const head = (await s.log()).commits[0]!.id;
      for (const message of ['a\u0000b', 'bell\u0007', 'esc\u001b[31m', 'del\u007f']) {
        expect(await codeOf(s.set('a', '2', { message }))).toBe('INVALID_ARGUMENT');
        expect(await codeOf(s.batch([{ op: 'set', key: 'a', value: '2' }], { message }))).toBe('INVALID_ARGUMENT');
        expect(await codeOf(s.delete('a', { message }))).toBe('INVALID_ARGUMENT');
        expect(await codeOf(s.revert(head, { message }))).toBe('INVALID_ARGUMENT');
      }
      expect((await s.set('a', '3', { message: 'line one\n\ttabbed line' })).changed).toBe(true);
      await s.createBranch('main2');
      expect(await codeOf(s.merge('main2', { message: 'x\u0000' }))).toBe('INVALID_ARGUMENT');
      // 251 bytes and more: refs/heads/<name>.lock would pass the file system's 255-byte name limit.
      expect(await codeOf(s.createBranch('b'.repeat(251)))).toBe('INVALID_BRANCH');
      expect((await s.createBranch('b'.repeat(250))).name).toHaveLength(250);
      await s.createBranch('dir/x');
      expect(await codeOf(s.createBranch('main/x'))).toBe('BRANCH_EXISTS');
      expect(await codeOf(s.createBranch('dir'))).toBe('BRANCH_EXISTS');
      expect((await s.branches()).map((b) => b.name).sort()).toEqual(['b'.repeat(250), 'dir/x', 'main', 'main2']);
      expect(await s.getText('a')).toBe('3');
    });

    it('makes one commit per write whose first line says what happened', async () => {
      const s = await open({ author: { name: 'Ada', email: 'ada@example.org' } });
      await s.set('a', '1');
      await s.set('b', '2', { message: 'because', author: { name: 'Bob', email: 'bob@example.org' } });
      await s.delete('a');
      await s.batch([
        { op: 'set', key: 'c/d', value: '3' },
        { op: 'set', key: 'c/e', value: '4' },
        { op: 'delete', key: 'b' },
      ]);
      const { commits, next } = await s.log();
      expect(next).toBeNull();
      expect(commits.map((c) => c.subject)).toEqual(['batch: 3 changes', 'delete a', 'set b', 'set a']);
      const setB = commits[2]!;
      expect(setB.message).toBe('set b\n\nbecause\n');
      expect(setB.author.name).toBe('Bob');
      expect(commits[0]!.author).toMatchObject({ name: 'Ada', email: 'ada@example.org' });
      expect(Math.abs(Date.parse(commits[0]!.author.time) - Date.now())).toBeLessThan(60_000);
      // `|| 0`: in UTC JavaScript's offset is -0, git's zone (and JSON's) is 0.
      expect(commits[0]!.author.timezoneOffset).toBe(-new Date().getTimezoneOffset() || 0);
      // The first-parent chain is exactly the operations, each the child of the one before.
      for (let i = 0; i + 1 < commits.length; i++) expect(commits[i]!.parents[0]).toBe(commits[i + 1]!.id);
      expect(commits[3]!.parents).toEqual([]);
    });

    it('keeps a value and a directory apart', async () => {
      const s = await open();
      await s.set('a/b/c', 'x');
      const before = await s.resolve('main');
      expect(await codeOf(s.set('a/b', 'y'))).toBe('KEY_IS_DIRECTORY');
      expect(await codeOf(s.set('a/b/c/d', 'y'))).toBe('KEY_IS_VALUE');
      expect(await codeOf(s.delete('a'))).toBe('KEY_IS_DIRECTORY');
      expect(await s.resolve('main')).toBe(before);
      await s.delete('a', { recursive: true });
      expect((await s.list('')).entries).toEqual([]);
      await s.set('a/b', 'now a value');
      expect(await s.getText('a/b')).toBe('now a value');
    });

    it('honours compare-and-set preconditions', async () => {
      const s = await open();
      const first = await s.set('k', 'v1', { ifNoneMatch: true });
      expect(first.created).toBe(true);
      expect(await codeOf(s.set('k', 'v2', { ifNoneMatch: true }))).toBe('PRECONDITION_FAILED');
      expect(await codeOf(s.set('k', 'v2', { ifMatch: '0'.repeat(40) }))).toBe('PRECONDITION_FAILED');
      const second = await s.set('k', 'v2', { ifMatch: first.oid });
      expect(second.created).toBe(false);
      expect(await codeOf(s.delete('k', { ifMatch: first.oid }))).toBe('PRECONDITION_FAILED');
      await s.delete('k', { ifMatch: second.oid });
      expect(await codeOf(s.get('k'))).toBe('NOT_FOUND');
      // As HTTP's If-Match: a list matches when any of its oids does, and '*' when the key has any value.
      const third = await s.set('k', 'v3');
      expect(await codeOf(s.set('k', 'v4', { ifMatch: [first.oid, second.oid] }))).toBe('PRECONDITION_FAILED');
      const fourth = await s.set('k', 'v4', { ifMatch: [first.oid, third.oid] });
      await s.set('k', 'v5', { ifMatch: '*' });
      expect(await codeOf(s.set('absent', 'x', { ifMatch: '*' }))).toBe('PRECONDITION_FAILED');
      await s.set('dir/x', 'x');
      expect(await codeOf(s.set('dir', 'x', { ifMatch: '*' }))).toBe('PRECONDITION_FAILED');
      expect(await codeOf(s.delete('k', { ifMatch: [fourth.oid] }))).toBe('PRECONDITION_FAILED');
      await s.batch([{ op: 'delete', key: 'k', ifMatch: '*' }]);
      expect(await codeOf(s.get('k'))).toBe('NOT_FOUND');
    });

    it('writes a batch as one commit, or nothing when an op fails', async () => {
      const s = await open();
      await s.set('keep', '1');
      const head = await s.resolve('main');
      expect(
        await codeOf(
          s.batch([
            { op: 'set', key: 'x', value: '1' },
            { op: 'delete', key: 'missing' },
          ]),
        ),
      ).toBe('NOT_FOUND');
      expect(await s.resolve('main')).toBe(head);
      expect(await codeOf(s.get('x'))).toBe('NOT_FOUND');
      const { commit } = await s.batch([
        { op: 'set', key: 'x', value: '1' },
        { op: 'set', key: 'x', value: '2' },
      ]);
      expect((await s.commit(commit)).parents).toEqual([head]);
      expect(await s.getText('x')).toBe('2');
    });

    it('batches concurrent writers into chained commits, each its own', async () => {
      const s = await open();
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => s.set(`vm/${i}/cfg`, String(i))));
      expect(new Set(results.map((r) => r.commit)).size).toBe(200);
      const { commits } = await s.log({ limit: 1000 });
      expect(commits).toHaveLength(200);
      // Each request is its own commit, applied in the order it was submitted (over HTTP: in the order the
      // requests arrived, which their connections decide).
      const subjects = commits.map((c) => c.subject).reverse();
      const submitted = results.map((_, i) => `set vm/${i}/cfg`);
      if (factory.can('callOrder')) expect(subjects).toEqual(submitted);
      else expect([...subjects].sort()).toEqual([...submitted].sort());
      for (let i = 0; i < 200; i += 37) expect(await s.getText(`vm/${i}/cfg`)).toBe(String(i));
      await s.close();
    });

    it('creates, lists and deletes branches from any revision, and writes on each independently', async () => {
      const s = await open();
      await s.set('a', '1');
      await s.set('a', '2');
      await s.set('a', '3');
      const c1 = (await s.log()).commits[2]!.id;
      await s.createBranch('old', { from: 'main~2' });
      await s.createBranch('by-id', { from: c1.slice(0, 8) });
      await s.createBranch('feature/x');
      expect(await s.getText('a', { branch: 'old' })).toBe('1');
      expect(await s.getText('a', { branch: 'by-id' })).toBe('1');
      await s.set('b', 'on feature', { branch: 'feature/x' });
      expect(await codeOf(s.get('b'))).toBe('NOT_FOUND');
      expect(await s.getText('b', { branch: 'feature/x' })).toBe('on feature');
      const branches = await s.branches();
      expect(branches.map((b) => b.name)).toEqual(['by-id', 'feature/x', 'main', 'old']);
      expect(branches.find((b) => b.name === 'main')).toMatchObject({ default: true, head: await s.resolve('main') });
      expect(await codeOf(s.createBranch('old'))).toBe('BRANCH_EXISTS');
      expect(await codeOf(s.deleteBranch('main'))).toBe('FORBIDDEN');
      await s.deleteBranch('old');
      expect(await codeOf(s.deleteBranch('old'))).toBe('NOT_FOUND');
      expect(await codeOf(s.set('x', '1', { branch: 'old' }))).toBe('NOT_FOUND');
      expect((await s.branches()).map((b) => b.name)).toEqual(['by-id', 'feature/x', 'main']);
    });

    it.runIf(factory.can('clock'))('resolves revisions: names, ids, prefixes, ~N, ^N and ISO times', async () => {
      let now = Date.parse('2026-01-01T00:00:00Z');
      const s = await open({ clock: () => new Date(now) });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        ids.push((await s.set('n', String(i))).commit);
        now += 3600_000;
      }
      expect(await s.resolve('main')).toBe(ids[3]);
      expect(await s.resolve('HEAD~1')).toBe(ids[2]);
      expect(await s.resolve('main~3')).toBe(ids[0]);
      expect(await s.resolve('main^^')).toBe(ids[1]);
      expect(await s.resolve(ids[1]!.slice(0, 7))).toBe(ids[1]);
      expect(await s.resolve('2026-01-01T01:30:00Z')).toBe(ids[1]);
      expect(await s.resolve('main@{2026-01-01T02:00:00Z}')).toBe(ids[2]);
      expect(await s.getText('n', { at: '2026-01-01T00:59:59Z' })).toBe('0');
      expect(await s.getText('n', { at: 'main~2' })).toBe('1');
      expect(await codeOf(s.resolve('2025-01-01'))).toBe('NOT_FOUND');
      expect(await codeOf(s.resolve('main~9'))).toBe('NOT_FOUND');
      expect(await codeOf(s.resolve('unknown'))).toBe('NOT_FOUND');
    });

    it('pages the log and filters it by key or prefix', async () => {
      const s = await open();
      for (let i = 0; i < 5; i++) {
        await s.set(`cfg/a`, `a${i}`);
        await s.set(`cfg/b`, `b${i}`);
        await s.set(`other`, `o${i}`);
      }
      const page1 = await s.log({ limit: 4 });
      expect(page1.commits).toHaveLength(4);
      const page2 = await s.log({ limit: 100, cursor: page1.next! });
      expect(page2.commits).toHaveLength(11);
      expect(page2.next).toBeNull();
      expect(new Set([...page1.commits, ...page2.commits].map((c) => c.id)).size).toBe(15);
      const a = await s.log({ path: 'cfg/a' });
      expect(a.commits.map((c) => c.subject)).toEqual(Array(5).fill('set cfg/a'));
      const cfg = await s.log({ path: 'cfg' });
      expect(cfg.commits).toHaveLength(10);
    });

    it('diffs two revisions per key with both oids', async () => {
      const s = await open();
      await s.set('keep', 'k');
      const mod = await s.set('mod', 'before');
      await s.set('gone', 'x');
      const from = await s.resolve('main');
      const after = await s.set('mod', 'after');
      await s.delete('gone');
      const added = await s.set('dir/new', 'n');
      const changes = await s.diff(from);
      expect(changes).toEqual([
        { key: 'dir/new', kind: 'added', before: null, after: added.oid },
        { key: 'gone', kind: 'deleted', before: expect.any(String), after: null },
        { key: 'mod', kind: 'modified', before: mod.oid, after: after.oid },
      ]);
      expect(await s.diff(from, from)).toEqual([]);
    });

    it('diffs under a prefix that names a key: that key alone, whatever it became (issue 13, defect 3)', async () => {
      const s = await open();
      const x1 = await s.set('a/x', '1');
      await s.set('a/xy', 'sibling');
      await s.set('a/y', 'other');
      const from = await s.resolve('main');
      const x2 = await s.set('a/x', '2');
      await s.set('a/xy', 'sibling 2');
      await s.set('a/y', 'other 2');
      expect(await s.diff(from, undefined, { prefix: 'a/x' })).toEqual([
        { key: 'a/x', kind: 'modified', before: x1.oid, after: x2.oid },
      ]);
      expect((await s.diff(from, undefined, { prefix: 'a' })).map((c) => c.key)).toEqual(['a/x', 'a/xy', 'a/y']);
      // Added, deleted, and a value that became a directory.
      const added = await s.set('b', 'new');
      expect(await s.diff(from, undefined, { prefix: 'b' })).toEqual([
        { key: 'b', kind: 'added', before: null, after: added.oid },
      ]);
      await s.delete('a/y');
      expect(await s.diff(from, undefined, { prefix: 'a/y' })).toEqual([
        { key: 'a/y', kind: 'deleted', before: expect.any(String), after: null },
      ]);
      await s.delete('a/x');
      const below = await s.set('a/x/z', 'deeper');
      expect(await s.diff(from, undefined, { prefix: 'a/x' })).toEqual([
        { key: 'a/x', kind: 'deleted', before: x1.oid, after: null },
        { key: 'a/x/z', kind: 'added', before: null, after: below.oid },
      ]);
      expect(await s.diff(from, undefined, { prefix: 'a/x/z' })).toEqual([
        { key: 'a/x/z', kind: 'added', before: null, after: below.oid },
      ]);
      expect(await s.diff(from, undefined, { prefix: 'nothing/here' })).toEqual([]);
      // blame and log read a key's history the same way.
      expect((await s.blame('a/xy')).map((l) => l.key)).toEqual(['a/xy']);
      expect((await s.log({ path: 'a/xy' })).commits.map((c) => c.subject)).toEqual(['set a/xy', 'set a/xy']);
    });

    it('reverts a commit as a new commit, and refuses when later commits changed the same keys', async () => {
      const s = await open();
      await s.set('a', '1');
      const bad = await s.batch([
        { op: 'set', key: 'a', value: 'bad' },
        { op: 'set', key: 'b', value: 'new' },
      ]);
      await s.set('c', 'unrelated');
      const r = await s.revert(bad.commit);
      expect(await s.getText('a')).toBe('1');
      expect(await codeOf(s.get('b'))).toBe('NOT_FOUND');
      expect(await s.getText('c')).toBe('unrelated');
      expect((await s.commit(r.commit)).subject).toBe(`revert ${bad.commit}`);
      const later = await s.set('c', 'v2');
      await s.set('c', 'v3');
      const head = await s.resolve('main');
      expect(await codeOf(s.revert(later.commit))).toBe('CONFLICT');
      expect(await s.resolve('main')).toBe(head);
    });

    describe('merge', () => {
      async function forked(s: Store) {
        await s.set('shared', 'base');
        await s.set('cfg/x', '1');
        await s.createBranch('dev');
      }

      it('merges disjoint changes with a merge commit whose first parent is the target', async () => {
        const s = await open();
        await forked(s);
        await s.set('cfg/y', 'from dev', { branch: 'dev' });
        await s.set('main-only', 'm');
        const ours = await s.resolve('main');
        const theirs = await s.resolve('dev');
        const r = await s.merge('dev');
        expect(r.outcome).toBe('merged');
        const c = await s.commit(r.commit);
        expect(c.parents).toEqual([ours, theirs]);
        expect(c.subject).toBe('merge dev into main');
        expect(await s.getText('cfg/y')).toBe('from dev');
        expect(await s.getText('main-only')).toBe('m');
        expect((await s.merge('dev')).outcome).toBe('up-to-date');
      });

      it('returns conflicts as data and writes nothing', async () => {
        const s = await open();
        await forked(s);
        await s.set('shared', 'dev', { branch: 'dev' });
        await s.delete('cfg/x', { branch: 'dev' });
        await s.set('new', 'dev', { branch: 'dev' });
        await s.set('shared', 'main');
        await s.set('cfg/x', '2');
        await s.set('new', 'main');
        const head = await s.resolve('main');
        let data: { conflicts: { key: string; kind: string }[] } | undefined;
        try {
          await s.merge('dev');
        } catch (e) {
          expect((e as { code: string }).code).toBe('CONFLICT');
          data = (e as { data: typeof data }).data;
        }
        expect(data?.conflicts.map((c) => [c.key, c.kind])).toEqual([
          ['cfg/x', 'modify-delete'],
          ['new', 'add-add'],
          ['shared', 'both-modified'],
        ]);
        expect(await s.resolve('main')).toBe(head);
        const r = await s.merge('dev', { strategy: 'theirs' });
        expect(r.outcome).toBe('merged');
        expect(await s.getText('shared')).toBe('dev');
        expect(await codeOf(s.get('cfg/x'))).toBe('NOT_FOUND');
      });

      it('previews a merge with each conflict’s three values, and merges with a person’s resolutions', async () => {
        const s = await open();
        await forked(s);
        await s.set('shared', 'dev', { branch: 'dev' });
        await s.set('bin', Uint8Array.of(0, 255, 1), { branch: 'dev' });
        await s.set('other', 'dev only', { branch: 'dev' });
        await s.set('shared', 'main');
        await s.set('bin', 'main text');
        const head = await s.resolve('main');
        const preview = await s.mergePreview('dev');
        expect(preview).toMatchObject({ outcome: 'conflict', ours: head, theirs: await s.resolve('dev') });
        expect(preview.conflicts.map((c) => [c.key, c.kind])).toEqual([
          ['bin', 'add-add'],
          ['shared', 'both-modified'],
        ]);
        const shared = preview.conflicts.find((c) => c.key === 'shared')!;
        expect([shared.values.base, shared.values.ours, shared.values.theirs].map((v) => v && text(v))).toEqual([
          'base',
          'main',
          'dev',
        ]);
        const bin = preview.conflicts.find((c) => c.key === 'bin')!;
        expect(bin.values.base).toBeNull();
        expect([...bin.values.theirs!]).toEqual([0, 255, 1]);
        // The preview wrote nothing.
        expect(await s.resolve('main')).toBe(head);

        // A resolution for only one key leaves the other conflicting: nothing written.
        expect(await codeOf(s.merge('dev', { resolutions: { shared: 'both' } }))).toBe('CONFLICT');
        // A resolution for a key that does not conflict is refused: the person decided on something else.
        expect(await codeOf(s.merge('dev', { resolutions: { shared: 'x', bin: null, other: 'y' } }))).toBe('CONFLICT');
        expect(await s.resolve('main')).toBe(head);

        const merged = await s.merge('dev', { resolutions: { shared: 'main and dev', bin: null } });
        expect(merged.outcome).toBe('merged');
        expect((await s.commit(merged.commit)).parents).toEqual([head, await s.resolve('dev')]);
        expect(await s.getText('shared')).toBe('main and dev');
        expect(await codeOf(s.get('bin'))).toBe('NOT_FOUND');
        expect(await s.getText('other')).toBe('dev only');
        expect((await s.mergePreview('dev')).outcome).toBe('up-to-date');
      });

      it('chooses strategies per prefix from .store/merge.json', async () => {
        const s = await open();
        await s.set(
          '.store/merge.json',
          JSON.stringify({ default: 'conflict', prefixes: { stats: 'counter', tags: 'set' } }),
        );
        await s.set('stats/hits', '10');
        await s.set('tags/web', 'a\nb\n');
        await s.createBranch('dev');
        await s.set('stats/hits', '15');
        await s.set('tags/web', 'a\nb\nc\n');
        await s.set('stats/hits', '12', { branch: 'dev' });
        await s.set('tags/web', 'b\nd\n', { branch: 'dev' });
        await s.merge('dev');
        expect(await s.getText('stats/hits')).toBe('17');
        expect(await s.getText('tags/web')).toBe('b\nc\nd\n');
      });

      it('fast-forwards only when asked', async () => {
        const s = await open();
        await forked(s);
        const dev = (await s.set('cfg/x', '9', { branch: 'dev' })).commit;
        const r = await s.merge('dev', { ff: true });
        expect(r).toEqual({ commit: dev, outcome: 'fast-forward' });
        expect(await s.resolve('main')).toBe(dev);
        await s.set('cfg/x', '10', { branch: 'dev' });
        const merged = await s.merge('dev');
        expect(merged.outcome).toBe('merged');
        expect((await s.commit(merged.commit)).parents).toHaveLength(2);
        await s.set('m', '1');
        await s.set('d', '1', { branch: 'dev' });
        expect(await codeOf(s.merge('dev', { ff: true }))).toBe('CONFLICT');
      });

      it('merges criss-cross histories without crashing', async () => {
        const s = await open();
        await forked(s);
        await s.set('a', 'main1');
        await s.set('b', 'dev1', { branch: 'dev' });
        // Each side merges the other's old head: two merge bases afterwards.
        const mainHead = await s.resolve('main');
        const devHead = await s.resolve('dev');
        await s.createBranch('main-snap', { from: mainHead });
        await s.merge(devHead);
        await s.merge('main-snap', { into: 'dev' });
        await s.set('a', 'main2');
        await s.set('b', 'dev2', { branch: 'dev' });
        const r = await s.merge('dev');
        expect(r.outcome).toBe('merged');
        expect(await s.getText('a')).toBe('main2');
        expect(await s.getText('b')).toBe('dev2');
      });

      it('merges a value/directory clash as a file-dir conflict', async () => {
        const s = await open();
        await forked(s);
        await s.set('node', 'a value');
        await s.set('node/child', 'below', { branch: 'dev' });
        let kinds: string[] = [];
        try {
          await s.merge('dev');
        } catch (e) {
          kinds = (e as { data: { conflicts: { kind: string }[] } }).data.conflicts.map((c) => c.kind);
        }
        expect(kinds).toEqual(['file-dir']);
        await s.merge('dev', { strategy: 'theirs' });
        expect(await s.getText('node/child')).toBe('below');
      });

      it('refuses to merge a branch into itself', async () => {
        const s = await open();
        await forked(s);
        expect(await codeOf(s.merge('main'))).toBe('INVALID_ARGUMENT');
      });
    });

    // Over HTTP this is two servers on one repository, and a server's head cache (refreshMs) is not a setting.
    it.runIf(factory.can('settings'))('sees heads moved by another store on the same repository', async () => {
      const s = await open({ refreshMs: 0 });
      await s.set('a', '1');
      // A second Store over the same files is "another writer" as far as the first one's cache knows.
      const other = await factory.again(s);
      await other.set('a', '2');
      expect(await s.getText('a')).toBe('2');
      const next = await s.set('b', '3');
      expect((await s.commit(next.commit)).parents).toEqual([await other.resolve('main~1')]);
      expect(await s.getText('a')).toBe('2');
    });

    it.runIf(factory.can('internals'))('consolidates many small packs without losing objects', async () => {
      const s = await open();
      for (let i = 0; i < 70; i++) await s.set(`k/${i}`, String(i));
      await s.close();
      const packs = (await s.files.list(`${s.dir}/objects/pack`)).filter((n) => n.endsWith('.pack'));
      expect(packs.length).toBeLessThan(20);
      const fresh = await factory.open({ fs: s.files.raw, dir: s.dir });
      for (let i = 0; i < 70; i++) expect(text(await fresh.get(`k/${i}`))).toBe(String(i));
    });
  });
}
