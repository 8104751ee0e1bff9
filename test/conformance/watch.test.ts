import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Change, CommitEvents, Store, WatchEvent } from '../../src/index.js';
import { codeOf, git, settle, sleep, until } from '../helpers.js';
import { factories } from './store-factories.js';

/**
 * Watches (src/watch.ts, Store.watch) against every store factory: which events a watcher gets, in which order, with
 * which kinds and oids; `since` replays; commits made by another store instance on the same repository (and, on
 * disk, by plain git) are seen; closing ends the iteration.
 */

/** The blob oid git gives a value: computed here, not by the store. */
const blobOid = (value: string | Uint8Array) => {
  const bytes = Buffer.from(value);
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
};

interface Watchable {
  commits(): AsyncIterable<CommitEvents>;
}

/** Consumes a watch in the background, recording each commit's group as it arrives. */
class Recorder {
  readonly groups: CommitEvents[] = [];
  ended = false;
  error: unknown = null;
  readonly done: Promise<void>;

  constructor(watch: Watchable, perGroup?: (group: CommitEvents) => Promise<void>) {
    this.done = (async () => {
      try {
        for await (const group of watch.commits()) {
          this.groups.push(group);
          if (perGroup) await perGroup(group);
        }
      } catch (e) {
        this.error = e;
      } finally {
        this.ended = true;
      }
    })();
  }

  get events(): WatchEvent[] {
    return this.groups.flatMap((g) => g.events);
  }

  get commits(): string[] {
    return this.groups.map((g) => g.commit);
  }
}

const covers = (prefix: string, key: string) => prefix === '' || key === prefix || key.startsWith(`${prefix}/`);

/** The first-parent commits of a branch after `after` (exclusive; null: all), oldest first. */
async function commitsAfter(s: Store, after: string | null, branch?: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await s.log({ branch, limit: 1000, cursor });
    for (const c of page.commits) {
      if (c.id === after) return ids.reverse();
      ids.push(c.id);
    }
    if (!page.next) break;
    cursor = page.next;
  }
  if (after !== null) throw new Error(`${after} is not in the history`);
  return ids.reverse();
}

/** Each commit's changes, asked once per store: they never change, and over HTTP each ask is a request. */
const changesSeen = new WeakMap<Store, Map<string, Promise<Change[]>>>();
function changesOf(s: Store, commit: string): Promise<Change[]> {
  let seen = changesSeen.get(s);
  if (!seen) {
    seen = new Map();
    changesSeen.set(s, seen);
  }
  let changes = seen.get(commit);
  if (!changes) {
    changes = s.changesOf(commit);
    seen.set(commit, changes);
  }
  return changes;
}

/** What a watcher of `prefix` must see for the commits after `after`, worked out from the log and each commit's
 * changes against its first parent. */
async function expectedGroups(s: Store, after: string | null, prefix: string, branch?: string) {
  const groups: CommitEvents[] = [];
  for (const commit of await commitsAfter(s, after, branch)) {
    const events = (await changesOf(s, commit))
      .filter((c) => covers(prefix, c.key))
      .map((c) => ({ commit, key: c.key, kind: c.kind, oid: c.after }));
    if (events.length > 0) groups.push({ commit, events });
  }
  return groups;
}

/** No commit is reported twice, and commits come in the branch's order. */
function expectInLogOrder(commits: string[], log: string[]) {
  expect(new Set(commits).size).toBe(commits.length);
  const positions = commits.map((c) => log.indexOf(c));
  expect(positions.every((p) => p >= 0)).toBe(true);
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
}

for (const factory of factories) {
  describe(`watch (${factory.name})`, () => {
    const open = factory.open;

    it('delivers exactly the events under the prefix, per commit, in commit order, with kinds and oids', async () => {
      const s = await open();
      // Watched from before the first commit: the branch is unborn.
      const w = await s.watch({ prefix: 'a' });
      const all = await s.watch();
      const exact = await s.watch({ prefix: '/a/x' });
      const rec = new Recorder(w);
      const recAll = new Recorder(all);
      const recExact = new Recorder(exact);

      const c1 = await s.set('a/x', 'one');
      const c2 = await s.set('ab/x', 'not a'); // `a` is not a prefix of `ab`
      const c3 = await s.set('a/x', 'two');
      const c4 = await s.set('a/xy', 'sibling'); // nor is `a/x` of `a/xy`
      const c5 = await s.batch([
        { op: 'set', key: 'a/z/deep', value: 'deep' },
        { op: 'set', key: 'b', value: 'outside' },
        { op: 'set', key: 'a/y', value: 'y' },
        { op: 'set', key: 'ab/y', value: 'outside too' },
        { op: 'set', key: 'a/x', value: 'three' },
      ]);
      const c6 = await s.delete('a/x');
      const c7 = await s.set('b', 'outside again');
      // A merge commit: its events are its changes against the first parent, what it brought to main.
      await s.createBranch('feat');
      const f1 = await s.set('a/m', 'from feat', { branch: 'feat' });
      const f2 = await s.set('ab/m', 'from feat, outside', { branch: 'feat' });
      const c8 = await s.set('a/n', 'on main');
      const merge = await s.merge('feat');
      expect(merge.outcome).toBe('merged');
      // A fast-forward: main moves over two commits, each reported on its own.
      await s.createBranch('ff');
      const g1 = await s.set('a/ff1', 'ff1', { branch: 'ff' });
      const g2 = await s.batch(
        [
          { op: 'set', key: 'a/ff2', value: 'ff2' },
          { op: 'delete', key: 'a/y' },
        ],
        { branch: 'ff' },
      );
      expect((await s.merge('ff', { ff: true })).outcome).toBe('fast-forward');

      const expected: CommitEvents[] = [
        { commit: c1.commit, events: [{ commit: c1.commit, key: 'a/x', kind: 'added', oid: blobOid('one') }] },
        { commit: c3.commit, events: [{ commit: c3.commit, key: 'a/x', kind: 'modified', oid: blobOid('two') }] },
        { commit: c4.commit, events: [{ commit: c4.commit, key: 'a/xy', kind: 'added', oid: blobOid('sibling') }] },
        {
          commit: c5.commit,
          events: [
            { commit: c5.commit, key: 'a/x', kind: 'modified', oid: blobOid('three') },
            { commit: c5.commit, key: 'a/y', kind: 'added', oid: blobOid('y') },
            { commit: c5.commit, key: 'a/z/deep', kind: 'added', oid: blobOid('deep') },
          ],
        },
        { commit: c6.commit, events: [{ commit: c6.commit, key: 'a/x', kind: 'deleted', oid: null }] },
        { commit: c8.commit, events: [{ commit: c8.commit, key: 'a/n', kind: 'added', oid: blobOid('on main') }] },
        {
          commit: merge.commit,
          events: [{ commit: merge.commit, key: 'a/m', kind: 'added', oid: blobOid('from feat') }],
        },
        { commit: g1.commit, events: [{ commit: g1.commit, key: 'a/ff1', kind: 'added', oid: blobOid('ff1') }] },
        {
          commit: g2.commit,
          events: [
            { commit: g2.commit, key: 'a/ff2', kind: 'added', oid: blobOid('ff2') },
            { commit: g2.commit, key: 'a/y', kind: 'deleted', oid: null },
          ],
        },
      ];
      await until(() => rec.groups.length >= expected.length, `${expected.length} commits under a`);
      await settle(() => rec.groups.length);
      expect(rec.groups).toEqual(expected);
      // The iteration of events is the same, flattened.
      expect(rec.events).toEqual(expected.flatMap((g) => g.events));
      // Nothing of feat's own commits: only main's first-parent history.
      expect(rec.commits).not.toContain(f1.commit);
      expect(rec.commits).not.toContain(f2.commit);

      const expectedAll = await expectedGroups(s, null, '');
      await until(() => recAll.groups.length >= expectedAll.length, 'every commit, unfiltered');
      await settle(() => recAll.groups.length);
      expect(recAll.groups).toEqual(expectedAll);
      expect(recAll.commits).toContain(c2.commit);
      expect(recAll.commits).toContain(c7.commit);
      expect(recAll.groups.find((g) => g.commit === c5.commit)!.events.map((e) => e.key)).toEqual([
        'a/x',
        'a/y',
        'a/z/deep',
        'ab/y',
        'b',
      ]);

      // A prefix that is a key: that key only, never a/xy.
      await settle(() => recExact.groups.length);
      expect(recExact.events.map((e) => [e.commit, e.kind])).toEqual([
        [c1.commit, 'added'],
        [c3.commit, 'modified'],
        [c5.commit, 'modified'],
        [c6.commit, 'deleted'],
      ]);
      expect(recExact.events.every((e) => e.key === 'a/x')).toBe(true);

      for (const watch of [w, all, exact]) watch.close();
      await Promise.all([rec.done, recAll.done, recExact.done]);
      expect([rec.error, recAll.error, recExact.error]).toEqual([null, null, null]);
      await s.close();
    });

    it('watches one branch only, and refuses a bad branch, prefix or revision', async () => {
      const s = await open();
      await s.set('k', 'main 1');
      await s.createBranch('dev');
      const onDev = new Recorder(await s.watch({ branch: 'dev' }));
      const onMain = new Recorder(await s.watch());
      const m = await s.set('k', 'main 2');
      const d = await s.set('k', 'dev 1', { branch: 'dev' });
      await until(() => onDev.groups.length >= 1 && onMain.groups.length >= 1, 'one commit on each branch');
      await settle(() => onDev.groups.length + onMain.groups.length);
      expect(onDev.commits).toEqual([d.commit]);
      expect(onMain.commits).toEqual([m.commit]);

      expect(await codeOf(s.watch({ branch: 'missing' }))).toBe('NOT_FOUND');
      expect(await codeOf(s.watch({ branch: 'bad..name' }))).toBe('INVALID_BRANCH');
      expect(await codeOf(s.watch({ prefix: 'a//b' }))).toBe('INVALID_KEY');
      expect(await codeOf(s.watch({ prefix: '../x' }))).toBe('INVALID_KEY');
      expect(await codeOf(s.watch({ since: 'main~99' }))).toBe('NOT_FOUND');
      expect(await codeOf(s.watch({ since: 'f'.repeat(40) }))).toBe('NOT_FOUND');
      await s.close();
      await Promise.all([onDev.done, onMain.done]);
      expect(onDev.ended && onMain.ended).toBe(true);
    });

    it('since: replays exactly the commits after the revision, then goes live with no gap or duplicate', async () => {
      const s = await open();
      const history: string[] = [];
      for (let i = 0; i < 40; i++) {
        if (i % 9 === 4) {
          history.push((await s.set('k/tmp', `tmp ${i}`)).commit);
          const r = await s.batch([
            { op: 'set', key: `k/${i % 7}`, value: `batch ${i}` },
            { op: 'set', key: 'other/x', value: `${i}` },
            { op: 'delete', key: 'k/tmp' },
          ]);
          history.push(r.commit);
        } else history.push((await s.set(i % 5 === 0 ? 'other/x' : `k/${i % 7}`, `v${i}`)).commit);
      }
      const since = history[14]!;

      // Writes run while watches are being opened and their replays computed, and on while slow consumers read them.
      let writing = true;
      const written: string[] = [];
      const writer = (async () => {
        for (let j = 0; j < 80; j++) {
          if (j % 10 === 3) {
            const r = await s.delete(`k/live${j % 4}`).catch(() => null);
            if (r) written.push(r.commit);
          } else written.push((await s.set(j % 6 === 5 ? 'other/y' : `k/live${j % 4}`, `live ${j}`)).commit);
          if (j % 8 === 0) await sleep(1);
        }
        writing = false;
      })();
      const slow = async () => {
        if (writing) await sleep(2);
      };
      const watchers = [{ since, rec: new Recorder(await s.watch({ prefix: 'k', since }), slow) }];
      // More watches opened mid-stream, each since a recent commit: every opening is a chance for a gap.
      while (writing && watchers.length < 25) {
        const from = written.at(-1 - (watchers.length % 3)) ?? since;
        watchers.push({ since: from, rec: new Recorder(await s.watch({ prefix: 'k', since: from }), slow) });
        await sleep(watchers.length % 4);
      }
      await writer;
      expect(watchers.length).toBeGreaterThan(5);

      for (const { since: from, rec } of watchers) {
        const expected = await expectedGroups(s, from, 'k');
        await until(() => rec.groups.length >= expected.length, `${expected.length} commits since ${from}`);
        await settle(() => rec.groups.length, 50);
        expect(rec.commits).toEqual(expected.map((g) => g.commit));
        expect(rec.groups).toEqual(expected);
      }
      expect(watchers[0]!.rec.groups.length).toBeGreaterThan(60);

      // A revision expression works too, and since = head replays nothing.
      const head = (await s.log({ limit: 1 })).commits[0]!.id;
      const fromExpr = new Recorder(await s.watch({ prefix: 'k', since: 'main~3' }));
      const fromHead = new Recorder(await s.watch({ prefix: 'k', since: head }));
      const next = await s.set('k/after', 'after');
      const tail = await expectedGroups(s, (await s.log({ rev: 'main~4', limit: 1 })).commits[0]!.id, 'k');
      await until(() => fromExpr.groups.length >= tail.length, 'the replay of main~3');
      await until(() => fromHead.groups.length >= 1, 'the commit after head');
      await settle(() => fromExpr.groups.length + fromHead.groups.length);
      expect(fromExpr.groups).toEqual(tail);
      expect(fromHead.commits).toEqual([next.commit]);
      await s.close();
    });

    it('sees commits made by another store instance on the same repository', async () => {
      const s1 = await open({ watchPollMs: 10 });
      await s1.set('x/base', 'base');
      const s2 = await factory.again(s1);
      expect(await s2.getText('x/base')).toBe('base');
      const start = (await s1.log({ limit: 1 })).commits[0]!.id;
      const rec = new Recorder(await s1.watch({ prefix: 'x' }));
      const recOther = new Recorder(await s2.watch({ prefix: 'x' }));

      const a = await s2.set('x/1', 'from s2');
      await sleep(30);
      const b = await s2.batch([
        { op: 'set', key: 'x/2', value: 'two' },
        { op: 'delete', key: 'x/base' },
        { op: 'set', key: 'y/outside', value: 'no' },
      ]);
      const c = await s1.set('x/1', 'from s1');
      // Several commits between two polls: still one group each.
      const d = await s2.set('x/3', 'three');
      const e = await s2.delete('x/1');
      const f = await s2.set('y/outside', 'still no');

      await sleep(30); // past s1's cached head (refreshMs), so its log shows s2's last commits
      const expected = await expectedGroups(s1, start, 'x');
      expect(expected.map((g) => g.commit)).toEqual([a.commit, b.commit, c.commit, d.commit, e.commit]);
      expect(expected[1]!.events).toEqual([
        { commit: b.commit, key: 'x/2', kind: 'added', oid: blobOid('two') },
        { commit: b.commit, key: 'x/base', kind: 'deleted', oid: null },
      ]);
      await until(() => rec.groups.length >= expected.length, "the other instance's commits");
      await until(() => recOther.groups.length >= expected.length, "the first instance's commits, seen by the other");
      await settle(() => rec.groups.length + recOther.groups.length);
      expect(rec.groups).toEqual(expected);
      expect(recOther.groups).toEqual(expected);
      expect(rec.commits).not.toContain(f.commit);
      await s1.close();
      await s2.close();
      await Promise.all([rec.done, recOther.done]);
    });

    it('close() ends the iteration; other watchers carry on', async () => {
      const s = await open();
      await s.set('c/0', 'zero');
      const w1 = await s.watch({ prefix: 'c' });
      const w2 = await s.watch({ prefix: 'c' });
      const r1 = new Recorder(w1);
      const r2 = new Recorder(w2);
      const a = await s.set('c/1', 'one');
      await until(() => r1.groups.length === 1 && r2.groups.length === 1, 'the first commit');
      // close() while the iteration waits for the next commit: it finishes.
      w1.close();
      await Promise.race([r1.done, sleep(2000)]);
      expect(r1.ended).toBe(true);
      expect(r1.error).toBeNull();
      const b = await s.set('c/2', 'two');
      await until(() => r2.groups.length === 2, 'the second commit on the open watcher');
      await settle(() => r1.groups.length);
      expect(r1.commits).toEqual([a.commit]);
      expect(r2.commits).toEqual([a.commit, b.commit]);

      // Closed before it is iterated, even with a replay pending: nothing.
      const w3 = await s.watch({ prefix: 'c', since: 'main~2' });
      w3.close();
      const r3 = new Recorder(w3);
      await Promise.race([r3.done, sleep(2000)]);
      expect(r3.ended).toBe(true);
      expect(r3.groups).toEqual([]);

      // Leaving a for-await loop closes the watch; the per-event iterator also ends on close().
      const w4 = await s.watch({ prefix: 'c', since: 'main~2' });
      const seen: WatchEvent[] = [];
      for await (const event of w4) {
        seen.push(event);
        break;
      }
      expect(seen.map((e) => e.key)).toEqual(['c/1']);
      const w5 = await s.watch({ prefix: 'c' });
      const events: WatchEvent[] = [];
      const iterating = (async () => {
        for await (const event of w5) events.push(event);
      })();
      const c = await s.set('c/3', 'three');
      await until(() => events.length === 1, 'an event on the per-event iterator');
      w5.close();
      await Promise.race([iterating, sleep(2000)]);
      expect(events.map((e) => e.commit)).toEqual([c.commit]);

      // Closing the store ends what is still open.
      await s.close();
      await Promise.race([r2.done, sleep(2000)]);
      expect(r2.ended).toBe(true);
      await iterating;
    });

    // Over HTTP the server polls at its default rate, so this could not fail there: it needs the setting.
    it.runIf(factory.can('settings'))("the store's own writes arrive at once, without waiting for a poll", async () => {
      const s = await open({ watchPollMs: 60_000 });
      await s.set('own/0', 'zero');
      const rec = new Recorder(await s.watch({ prefix: 'own' }));
      const t0 = Date.now();
      const a = await s.set('own/1', 'one');
      const b = await s.delete('own/0');
      await until(() => rec.groups.length >= 2, 'our own writes', 3000);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(rec.commits).toEqual([a.commit, b.commit]);
      await s.close();
      await rec.done;
    });

    it('a burst of 200 concurrent sets to one key: the last event carries the final value', async () => {
      const s = await open();
      const rec = new Recorder(await s.watch({ prefix: 'hot' }));
      const values = Array.from({ length: 200 }, (_, i) => `value ${i}`);
      const results = await Promise.all(values.map((v) => s.set('hot', v)));
      const final = await s.read('hot');
      expect(results.map((r) => r.oid)).toContain(final.oid);
      await until(() => rec.events.at(-1)?.oid === final.oid, 'the final value', 10_000).catch(() => {});
      await settle(() => rec.groups.length);
      expect(rec.events.at(-1)).toEqual({ commit: final.commit, key: 'hot', kind: 'modified', oid: final.oid });
      // Whatever was coalesced, what was reported is true: the branch's commits, in order, with their values.
      const log = await commitsAfter(s, null);
      expectInLogOrder(rec.commits, log);
      const written = new Set(values.map(blobOid));
      expect(rec.events.every((e) => e.key === 'hot' && e.oid !== null && written.has(e.oid))).toBe(true);
      expect(rec.events[0]!.kind).toBe('added');
      // Every reported commit's oid is what the key held at that commit.
      for (const e of rec.events) expect((await s.stat('hot', { at: e.commit })).oid).toBe(e.oid);
      expect(rec.events.slice(1).every((e) => e.kind === 'modified')).toBe(true);
      await s.close();
    });

    // A branch deleted and made again: the watcher must not be told its whole history again, and what it is told
    // (the step from the head it last saw to the new head, attributed to the new head) must add up to the branch.
    it('a branch deleted and re-created: what the watcher was told adds up to the branch', async () => {
      const s = await open({ watchPollMs: 5 });
      for (let i = 0; i < 3; i++) await s.set(`k${i}`, `${i}`);
      await s.delete('k0');
      await s.createBranch('dev');
      const state = new Map((await s.list('', { branch: 'dev', recursive: true })).entries.map((e) => [e.key, e.oid]));
      const rec = new Recorder(await s.watch({ branch: 'dev' }));
      await s.set('d', 'only on the old dev', { branch: 'dev' });
      await until(() => rec.groups.length === 1, 'the commit on dev');
      await s.deleteBranch('dev');
      await sleep(100); // polled while the branch is gone
      await s.createBranch('dev');
      await sleep(100);
      await settle(() => rec.groups.length);
      for (const e of rec.events) {
        if (e.oid === null) state.delete(e.key);
        else state.set(e.key, e.oid);
      }
      const now = (await s.list('', { branch: 'dev', recursive: true })).entries;
      try {
        expect(Object.fromEntries(state)).toEqual(Object.fromEntries(now.map((e) => [e.key, e.oid])));
        // One commit on the old dev, then one step to the new head: not the history from the root.
        expect(rec.commits).toEqual([rec.commits[0], await s.resolve('dev')]);
        expect(rec.groups[1]!.events.map((e) => [e.kind, e.key])).toEqual([['deleted', 'd']]);
      } finally {
        await s.close();
      }
    });

    if (factory.name === 'disk') {
      it('sees commits pushed by plain git (clone, edit, commit, push)', async () => {
        const s = await open({ watchPollMs: 10 });
        await s.batch([
          { op: 'set', key: 'cfg/a', value: 'a1' },
          { op: 'set', key: 'cfg/old', value: 'old' },
          { op: 'set', key: 'other/x', value: 'x' },
        ]);
        const rec = new Recorder(await s.watch({ prefix: 'cfg' }));
        const work = path.join(path.dirname(s.dir), 'work');
        git(['clone', '--quiet', s.dir, work]);
        fs.writeFileSync(path.join(work, 'cfg/a'), 'a2');
        fs.mkdirSync(path.join(work, 'cfg/sub'));
        fs.writeFileSync(path.join(work, 'cfg/sub/new'), 'new');
        git(['-C', work, 'rm', '--quiet', 'cfg/old']);
        fs.writeFileSync(path.join(work, 'other/x'), 'x2');
        git(['-C', work, 'add', '-A']);
        git(['-C', work, 'commit', '--quiet', '-m', 'edit by hand']);
        fs.writeFileSync(path.join(work, 'other/x'), 'x3');
        git(['-C', work, 'commit', '--quiet', '-am', 'outside the prefix']);
        fs.writeFileSync(path.join(work, 'cfg/a'), 'a3');
        git(['-C', work, 'commit', '--quiet', '-am', 'again']);
        git(['-C', work, 'push', '--quiet', 'origin', 'HEAD:main']);
        const first = git(['-C', work, 'rev-parse', 'HEAD~2']).toString().trim();
        const third = git(['-C', work, 'rev-parse', 'HEAD']).toString().trim();

        await until(() => rec.groups.length >= 2, 'the pushed commits');
        await settle(() => rec.groups.length);
        expect(rec.groups).toEqual([
          {
            commit: first,
            events: [
              { commit: first, key: 'cfg/a', kind: 'modified', oid: blobOid('a2') },
              { commit: first, key: 'cfg/old', kind: 'deleted', oid: null },
              { commit: first, key: 'cfg/sub/new', kind: 'added', oid: blobOid('new') },
            ],
          },
          { commit: third, events: [{ commit: third, key: 'cfg/a', kind: 'modified', oid: blobOid('a3') }] },
        ]);

        // The store's own writes on top of git's still arrive.
        const mine = await s.set('cfg/a', 'a4');
        await until(() => rec.groups.length >= 3, "the store's commit after git's");
        expect(rec.groups[2]).toEqual({
          commit: mine.commit,
          events: [{ commit: mine.commit, key: 'cfg/a', kind: 'modified', oid: blobOid('a4') }],
        });

        // A push big enough that git keeps it as a pack (over receive.unpackLimit objects), deltas and all.
        git(['-C', work, 'pull', '--quiet', '--ff-only']);
        fs.mkdirSync(path.join(work, 'cfg/many'));
        for (let i = 0; i < 120; i++) fs.writeFileSync(path.join(work, `cfg/many/${i}`), `value ${i}\n`.repeat(20));
        git(['-C', work, 'add', '-A']);
        git(['-C', work, 'commit', '--quiet', '-m', 'many']);
        git(['-C', work, 'push', '--quiet', 'origin', 'HEAD:main']);
        const many = git(['-C', work, 'rev-parse', 'HEAD']).toString().trim();
        expect(fs.existsSync(path.join(s.dir, 'objects', many.slice(0, 2), many.slice(2)))).toBe(false); // packed
        await until(() => rec.groups.length >= 4, 'the packed push');
        expect(rec.groups[3]!.commit).toBe(many);
        expect(rec.groups[3]!.events).toHaveLength(120);
        expect(rec.groups[3]!.events.every((e) => e.kind === 'added' && e.key.startsWith('cfg/many/'))).toBe(true);
        expect(rec.groups[3]!.events.find((e) => e.key === 'cfg/many/7')!.oid).toBe(blobOid('value 7\n'.repeat(20)));

        // A rewrite (force push of a history that does not contain the old head): one step, old head to new.
        git(['-C', work, 'reset', '--quiet', '--hard', 'HEAD~1']);
        fs.writeFileSync(path.join(work, 'cfg/a'), 'a5');
        git(['-C', work, 'commit', '--quiet', '-am', 'rewritten']);
        git(['-C', work, 'push', '--quiet', '--force', 'origin', 'HEAD:main']);
        const rewritten = git(['-C', work, 'rev-parse', 'HEAD']).toString().trim();
        await until(() => rec.groups.length >= 5, 'the force push');
        await settle(() => rec.groups.length);
        expect(rec.groups.length).toBe(5);
        const step = rec.groups[4]!;
        expect(step.commit).toBe(rewritten);
        expect(step.events.find((e) => e.key === 'cfg/a')).toEqual({
          commit: rewritten,
          key: 'cfg/a',
          kind: 'modified',
          oid: blobOid('a5'),
        });
        expect(step.events.filter((e) => e.key.startsWith('cfg/many/'))).toHaveLength(120);
        expect(step.events.every((e) => e.key === 'cfg/a' || e.kind === 'deleted')).toBe(true);
        await s.close();
        await rec.done;
      });
    }
  });
}
