/**
 * Compaction (issue 7) through the library, on synthetic histories written with a test clock: what a compaction
 * keeps (computed here from the policy, independently of src/history/retention.ts), what old ids and times resolve
 * to afterwards, compacting twice, pruning, writes and transactions racing a compaction (in this process and from a
 * writer process), bad input, and the same on memfs. Needs `npm run build` first (test/fixtures/writer.mjs runs the
 * compiled code).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CommitInfo, type CompactResult, type OpenOptions, openStore, type Store } from '../src/index.js';
import { expectFsckClean, gitValues } from './git-packs.js';
import { codeOf, git, sleep, tempDir, until } from './helpers.js';
import { startWriter, stopChildren } from './writers.js';

const WRITER = fileURLToPath(new URL('./fixtures/writer.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));

const children: ChildProcess[] = [];
afterEach(async () => {
  await stopChildren(children);
});

beforeAll(() => {
  if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first`);
});

// ---- the policy and what it keeps, computed here -------------------------------------------------------------

const POLICY = [
  { within: '1h', keep: 'all' },
  { within: '1d', every: '1h' },
  { within: '30d', every: '1d' },
  { within: '1y', every: '1w' },
];
const HOUR = 3600;
const DAY = 86_400;
const WEEK = 7 * DAY;
const YEAR = 365 * DAY;
const MINUTE_MS = 60_000;
const DAY_MS = DAY * 1000;

/** A commit of the history as written, before any compaction. */
interface Raw {
  id: string;
  tree: string;
  /** Commit time, seconds. */
  time: number;
  message: string;
  author: string;
}

interface Expected {
  /** Newest first: the recent commits, then one snapshot per interval. */
  kept: Raw[];
  recent: Raw[];
  snapshots: Raw[];
  hours: number;
  days: number;
  weeks: number;
  /** Commits older than the last tier. */
  beyond: number;
}

/**
 * What POLICY keeps of a history (oldest first) at `now` (seconds): every commit at most an hour old; of older
 * ones, the newest of each epoch-aligned hour (up to a day old), day (up to 30 days) and week (up to a year); the
 * head always.
 */
function expectedKept(raw: Raw[], now: number): Expected {
  const recent: Raw[] = [];
  let i = raw.length - 1;
  for (; i >= 0 && now - raw[i]!.time <= HOUR; i--) recent.push(raw[i]!);
  const newest = new Map<string, Raw>();
  const hours = new Set<number>();
  const days = new Set<number>();
  const weeks = new Set<number>();
  let beyond = 0;
  for (; i >= 0; i--) {
    const c = raw[i]!;
    const age = now - c.time;
    let bucket: string;
    if (age <= DAY) {
      hours.add(Math.floor(c.time / HOUR));
      bucket = `hour ${Math.floor(c.time / HOUR)}`;
    } else if (age <= 30 * DAY) {
      days.add(Math.floor(c.time / DAY));
      bucket = `day ${Math.floor(c.time / DAY)}`;
    } else if (age <= YEAR) {
      weeks.add(Math.floor(c.time / WEEK));
      bucket = `week ${Math.floor(c.time / WEEK)}`;
    } else {
      beyond++;
      continue;
    }
    if (!newest.has(bucket)) newest.set(bucket, c);
  }
  const snapshots = [...newest.values()];
  const head = raw.at(-1);
  if (head && !recent.includes(head) && !snapshots.includes(head)) snapshots.unshift(head);
  return {
    kept: [...recent, ...snapshots],
    recent,
    snapshots,
    hours: hours.size,
    days: days.size,
    weeks: weeks.size,
    beyond,
  };
}

// ---- synthetic histories -------------------------------------------------------------------------------------

/** The store's clock: each reading returns `t` (ms) and advances it by `step`, so each write gets its own time. */
class TestClock {
  step = 0;
  /** Real time instead (for a test with another process writing at real time). */
  real = false;
  constructor(public t: number) {}
  now = (): Date => {
    if (this.real) return new Date();
    const d = new Date(this.t);
    this.t += this.step;
    return d;
  };
}

/** A Monday 03:17:23 UTC: neither hours, days nor weeks start at it. */
const T0 = Date.parse('2025-01-06T03:17:23Z');

async function diskStore(clock: TestClock, options: Partial<OpenOptions> = {}): Promise<Store> {
  const dir = path.join(tempDir('gitstore-compact-'), 'store.git');
  return openStore({ fs, dir, create: true, clock: clock.now, pruneGraceMs: 0, ...options });
}

/** Write number `i`: sets of several keys, a batch now and then, a key set and deleted again. */
function write(store: Store, i: number, branch?: string): Promise<unknown> {
  if (i % 10 === 8 && i >= 10) return store.delete('tmp/flag', { branch });
  if (i % 10 === 3) return store.set('tmp/flag', `f${i}`, { branch });
  if (i % 25 === 11) {
    return store.batch(
      [
        { op: 'set', key: 'cfg/a', value: `a${i}` },
        { op: 'set', key: `vm/${i % 5}/cpus`, value: String(i % 16) },
      ],
      { branch },
    );
  }
  return store.set(`vm/${i % 7}/state`, `s${i}`, { branch });
}

interface Phase {
  count: number;
  stepMs: number;
}

/**
 * Writes the phases' commits, each phase's `stepMs` apart, in bursts of 100 concurrent writes (one commit each, in
 * the order asked, each with its own time). Returns the number of the next write.
 */
async function writeHistory(store: Store, clock: TestClock, phases: Phase[], from = 0): Promise<number> {
  let i = from;
  for (const { count, stepMs } of phases) {
    clock.step = stepMs;
    for (let done = 0; done < count; ) {
      const n = Math.min(100, count - done);
      await Promise.all(Array.from({ length: n }, () => write(store, i++)));
      done += n;
    }
  }
  clock.step = 0;
  return i;
}

/** A branch's first-parent chain through the store, newest first. */
async function chainOf(store: Store, branch?: string): Promise<CommitInfo[]> {
  const page = await store.log({ branch, limit: 10_000 });
  expect(page.next).toBeNull();
  return page.commits;
}

const seconds = (iso: string) => Date.parse(iso) / 1000;
const iso = (time: number) => new Date(time * 1000).toISOString();
const authorOf = (c: CommitInfo) => `${c.author.name} <${c.author.email}> ${c.author.time} ${c.author.timezoneOffset}`;

/** A branch's history as written, oldest first. */
async function rawHistory(store: Store, branch?: string): Promise<Raw[]> {
  return (await chainOf(store, branch))
    .map((c) => ({ id: c.id, tree: c.tree, time: seconds(c.committer.time), message: c.message, author: authorOf(c) }))
    .reverse();
}

/** Every value of a revision (default: the branch's head). */
async function stateAt(store: Store, at?: string, branch?: string): Promise<Record<string, string>> {
  const { entries } = await store.snapshot('', { ...(at === undefined ? {} : { at }), ...(branch ? { branch } : {}) });
  return Object.fromEntries(entries.map((e) => [e.key, Buffer.from(e.value).toString()]));
}

/** The StoreError a promise rejects with (fails the test when it resolves). */
async function rejection(
  p: Promise<unknown>,
): Promise<{ code: string; message: string; data: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; data: Record<string, unknown> };
  }
  throw new Error('expected a rejection, it resolved');
}

/**
 * Checks a compaction of `raw` (every commit ever written on the branch, oldest first) at `now` against POLICY,
 * through the store: the chain is exactly the expected kept commits (same trees, times, authors), each with one
 * parent (the root none), times never increasing going back, recent ones as they were, snapshots saying what they
 * absorbed. `inputIds`: for a time, the ids the compacted history had (to check `Compacted-Last`).
 */
async function expectCompacted(
  store: Store,
  raw: Raw[],
  r: CompactResult,
  now: number,
  inputIds: (time: number) => string[] = (time) => raw.filter((c) => c.time === time).map((c) => c.id),
): Promise<{ chain: CommitInfo[]; expected: Expected; newIdOf: Map<string, string> }> {
  const expected = expectedKept(raw, now);
  const chain = await chainOf(store, r.branch);
  expect(r.kept).toBe(expected.kept.length);
  expect(r.recent).toBe(expected.recent.length);
  expect(r.snapshots.map((s) => s.time)).toEqual(expected.snapshots.map((c) => iso(c.time)));
  expect(chain.map((c) => seconds(c.committer.time))).toEqual(expected.kept.map((c) => c.time));
  expect(r.head).toBe(chain[0]!.id);

  const index = new Map(raw.map((c, i) => [c.id, i]));
  const newIdOf = new Map<string, string>();
  let standsFor = 0;
  for (let k = 0; k < chain.length; k++) {
    const c = chain[k]!;
    const orig = expected.kept[k]!;
    newIdOf.set(orig.id, c.id);
    expect(c.tree, `tree of the commit kept for ${orig.id}`).toBe(orig.tree);
    expect(authorOf(c)).toBe(orig.author);
    expect(c.parents).toEqual(k + 1 < chain.length ? [chain[k + 1]!.id] : []);
    if (k + 1 < chain.length) {
      expect(seconds(chain[k + 1]!.committer.time)).toBeLessThanOrEqual(seconds(c.committer.time));
    }
    // What it stands for: the commits since the kept one before it.
    const j = index.get(orig.id)!;
    const previous = k + 1 < chain.length ? index.get(expected.kept[k + 1]!.id)! : -1;
    const count = j - previous;
    standsFor += count;
    if (count === 1) {
      expect(c.message).toBe(orig.message);
      continue;
    }
    expect(c.subject).toBe(`snapshot at ${iso(orig.time)}: ${count} commits compacted into one`);
    expect(c.message).toMatch(new RegExp(`^Compacted-Commits: ${count}$`, 'm'));
    expect(c.message).toMatch(new RegExp(`^Compacted-Since: ${raw[previous + 1]!.time}$`, 'm'));
    const last = /^Compacted-Last: ([0-9a-f]{40})$/m.exec(c.message)?.[1];
    expect(inputIds(orig.time), `${c.id} ${c.message}`).toContain(last);
  }
  expect(standsFor).toBe(raw.length);
  for (const c of expected.recent) expect(chain.find((n) => n.id === newIdOf.get(c.id))!.message).toBe(c.message);
  return { chain, expected, newIdOf };
}

// ---- git's view ----------------------------------------------------------------------------------------------

/** `git show refs/store/compacted/<branch>:map`, as entry lines (the comment left out). */
function mapLines(dir: string, branch = 'main'): string[] {
  return git(['--git-dir', dir, 'show', `refs/store/compacted/${branch}:map`])
    .toString()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Objects in packs, as `git count-objects -v` counts them. */
function inPack(dir: string): number {
  return Number(/^in-pack: (\d+)$/m.exec(git(['--git-dir', dir, 'count-objects', '-v']).toString())![1]);
}

/** The pack directory: names, sizes and times of every file. */
function packDir(dir: string): string[] {
  const d = path.join(dir, 'objects/pack');
  return fs
    .readdirSync(d)
    .sort()
    .map((f) => {
      const s = fs.statSync(path.join(d, f));
      return `${f} ${s.size} ${s.mtimeMs}`;
    });
}

const refsOf = (dir: string) => git(['--git-dir', dir, 'for-each-ref', '--format=%(refname) %(objectname)']).toString();

// ---- the core scenario -----------------------------------------------------------------------------------------

/**
 * 200 commits 2.5 days apart (500 days: a third of them older than a year), then 1,800 commits 10 minutes apart
 * (12.5 days); compaction 25 minutes after the last one.
 */
const CORE: Phase[] = [
  { count: 200, stepMs: 2.5 * DAY_MS },
  { count: 1800, stepMs: 10 * MINUTE_MS },
];
/** The same, smaller. */
const SMALL: Phase[] = [
  { count: 60, stepMs: 3 * DAY_MS },
  { count: 540, stepMs: 10 * MINUTE_MS },
];

async function coreHistory(store: Store, clock: TestClock, phases: Phase[]): Promise<{ raw: Raw[]; now: number }> {
  await writeHistory(store, clock, phases);
  const raw = await rawHistory(store);
  const now = raw.at(-1)!.time + 25 * 60;
  clock.t = now * 1000;
  return { raw, now };
}

// ---- tests -----------------------------------------------------------------------------------------------------

describe('compaction', () => {
  it('keeps what the policy says of 2,000 commits: recent ones as they were, one snapshot per interval', async () => {
    const clock = new TestClock(T0);
    const store = await diskStore(clock);
    const dir = store.dir;
    const { raw, now } = await coreHistory(store, clock, CORE);
    expect(raw).toHaveLength(2000);
    // The history as plain git reads it: what everything below is compared with.
    expect(git(['--git-dir', dir, 'log', '--format=%H %T %ct', 'main']).toString().trim().split('\n')).toEqual(
      raw.map((c) => `${c.id} ${c.tree} ${c.time}`).reverse(),
    );
    const headTree = git(['--git-dir', dir, 'rev-parse', 'main^{tree}']).toString().trim();
    const headState = await stateAt(store);

    const r = await store.compact({ policy: POLICY });
    expect(r).toMatchObject({ branch: 'main', dryRun: false, before: raw.at(-1)!.id, commits: 2000 });
    const { chain, expected } = await expectCompacted(store, raw, r, now);
    expect(r.dropped).toBe(2000 - expected.kept.length);
    expect(r.kept).toBe(r.recent + r.snapshots.length);

    // The scenario reaches every tier (counts from its layout), so each bucket rule is exercised.
    expect(expected.recent).toHaveLength(4); // 25, 35, 45 and 55 minutes old
    expect(expected.hours).toBeGreaterThanOrEqual(24);
    expect(expected.days).toBeGreaterThanOrEqual(18);
    expect(expected.weeks).toBeGreaterThanOrEqual(45);
    expect(expected.beyond).toBeGreaterThan(50);
    expect(expected.kept.length).toBe(
      expected.recent.length + expected.hours + expected.days + expected.weeks, // the head is recent here
    );
    expect(chain).toHaveLength(expected.kept.length);

    // The head's state did not change.
    expect(git(['--git-dir', dir, 'rev-parse', 'main^{tree}']).toString().trim()).toBe(headTree);
    expect(await stateAt(store)).toEqual(headState);
    expect(await stateAt(await openStore({ fs, dir }))).toEqual(headState);

    // Plain git reads the new history: the same chain, one parent per commit, fsck clean.
    const log = git(['--git-dir', dir, 'log', '--format=%H|%P|%ct|%T', 'main']).toString().trim().split('\n');
    expect(log).toEqual(chain.map((c) => `${c.id}|${c.parents.join(' ')}|${seconds(c.committer.time)}|${c.tree}`));
    for (const line of git(['--git-dir', dir, 'rev-list', '--parents', 'main']).toString().trim().split('\n')) {
      expect(line.split(' ').length).toBeLessThanOrEqual(2);
    }
    const patch = git(['--git-dir', dir, 'log', '-p', '--stat', 'main']).toString();
    expect(patch).toContain('commits compacted into one');
    expectFsckClean(dir);
  });

  it('old ids and times: dropped ones answer COMPACTED naming their snapshot, kept ones their new commit', async () => {
    const clock = new TestClock(T0);
    const store = await diskStore(clock);
    const dir = store.dir;
    const { raw, now } = await coreHistory(store, clock, CORE);
    const expected = expectedKept(raw, now);
    const keptIds = new Set(expected.kept.map((c) => c.id));
    const states = new Map<string, Record<string, string>>();
    for (const c of expected.kept) states.set(c.id, await stateAt(store, c.id));
    const dropped = raw.filter((c) => !keptIds.has(c.id));

    const r = await store.compact({ policy: POLICY });
    const { chain, newIdOf } = await expectCompacted(store, raw, r, now);
    const onChain = new Map(chain.map((c) => [c.id, c]));
    /** The kept commit that absorbed raw[i]: the first kept one after it. */
    const absorber = (i: number) => newIdOf.get(raw.slice(i + 1).find((c) => keptIds.has(c.id))!.id)!;

    // Every dropped id (and every fourth abbreviated to 8 digits): COMPACTED, naming the snapshot that absorbed it.
    for (const [n, c] of dropped.entries()) {
      const i = raw.indexOf(c);
      for (const id of n % 4 === 0 ? [c.id, c.id.slice(0, 8)] : [c.id]) {
        const e = await rejection(store.resolve(id));
        expect(e.code, id).toBe('COMPACTED');
        expect(e.data.snapshot).toBe(absorber(i));
        const snapshot = onChain.get(e.data.snapshot as string)!;
        expect(seconds(snapshot.committer.time)).toBeGreaterThanOrEqual(c.time);
      }
    }
    expect(await codeOf(store.get('vm/1/state', { at: dropped[500]!.id }))).toBe('COMPACTED');
    expect(await codeOf(store.getText('vm/1/state', { at: dropped.at(-1)!.id.slice(0, 8) }))).toBe('COMPACTED');

    // Every kept id (recent and snapshot): its new commit, the state it had.
    for (const c of expected.kept) {
      expect(await store.resolve(c.id)).toBe(newIdOf.get(c.id));
      expect(await store.resolve(c.id.slice(0, 10))).toBe(newIdOf.get(c.id));
    }
    for (const c of expected.recent) {
      expect(await stateAt(store, c.id)).toEqual(states.get(c.id));
      const key = Object.keys(states.get(c.id)!).find((k) => k.startsWith('vm/'))!;
      expect(Buffer.from(await store.get(key, { at: c.id })).toString()).toBe(states.get(c.id)![key]);
    }

    // By time: a kept commit's own time (and a second later: nothing happened then) gives its state; a time among
    // the commits a snapshot absorbed is COMPACTED, naming it; before the first commit, NOT_FOUND.
    for (const c of expected.kept) {
      expect(await stateAt(store, iso(c.time)), iso(c.time)).toEqual(states.get(c.id));
    }
    for (const c of expected.snapshots.slice(0, 30)) {
      expect(await stateAt(store, `main@{${iso(c.time + 1)}}`)).toEqual(states.get(c.id));
    }
    for (const c of dropped.filter((_, n) => n % 37 === 0)) {
      const e = await rejection(store.get('vm/1/state', { at: iso(c.time) }));
      expect(e.code, iso(c.time)).toBe('COMPACTED');
      expect(e.data.snapshot).toBe(absorber(raw.indexOf(c)));
    }
    const e = await rejection(store.resolve(iso(raw[0]!.time + 30)));
    expect(e.code).toBe('COMPACTED'); // older than a year: absorbed by the oldest snapshot
    expect(e.data.snapshot).toBe(chain.at(-1)!.id);
    expect(await codeOf(store.resolve(iso(raw[0]!.time - 30)))).toBe('NOT_FOUND');

    // The map, through plain git: every rewritten old id, 16 digits, with what became of it.
    const lines = new Set(mapLines(dir));
    for (const c of dropped) {
      expect(lines.has(`${c.id.slice(0, 16)} ${absorber(raw.indexOf(c))} dropped ${c.time}`), c.id).toBe(true);
    }
    for (const c of expected.kept) {
      expect(lines.has(`${c.id.slice(0, 16)} ${newIdOf.get(c.id)} kept ${c.time}`), c.id).toBe(true);
    }
    expect(lines.size).toBe(raw.length);
  });

  it('compacting twice composes: ids of the first run still resolve; the map stays bounded', async () => {
    const twice = async (options: Partial<OpenOptions>) => {
      const clock = new TestClock(T0);
      const store = await diskStore(clock, options);
      // The policy from the branch's own .store/retention.json this time.
      await store.set('.store/retention.json', JSON.stringify(POLICY));
      const next = await writeHistory(store, clock, CORE);
      const raw1 = await rawHistory(store);
      const now1 = raw1.at(-1)!.time + 25 * 60;
      clock.t = now1 * 1000;
      const r1 = await store.compact();
      const first = await expectCompacted(store, raw1, r1, now1);
      // Three days later, two more days of writes, then again.
      clock.t = (now1 + 3 * DAY) * 1000;
      await writeHistory(store, clock, [{ count: 288, stepMs: 10 * MINUTE_MS }], next);
      const raw2 = [...raw1, ...(await rawHistory(store)).slice(first.chain.length)];
      expect(raw2).toHaveLength(raw1.length + 288);
      const now2 = raw2.at(-1)!.time + 25 * 60;
      clock.t = now2 * 1000;
      const inputIds = new Map<number, string[]>();
      for (const c of await chainOf(store)) inputIds.set(seconds(c.committer.time), [c.id]);
      const r2 = await store.compact();
      // Compacting twice keeps exactly what one compaction of everything would keep now.
      // A snapshot's Compacted-Last names the commit as this run read it, or (kept as it was) as the first run did.
      const second = await expectCompacted(store, raw2, r2, now2, (t) => [
        ...(inputIds.get(t) ?? []),
        ...raw2.filter((c) => c.time === t).map((c) => c.id),
      ]);
      return { store, raw1, raw2, first, second };
    };

    const { store, raw1, raw2, first, second } = await twice({});
    const keptNow = new Set(second.expected.kept.map((c) => c.id));
    const onChain = new Set(second.chain.map((c) => c.id));
    const absorber = (i: number) => second.newIdOf.get(raw2.slice(i + 1).find((c) => keptNow.has(c.id))!.id)!;
    // Every id ever written, and every id the first run made: its commit now, or COMPACTED naming a snapshot on the
    // branch now (for a dropped one, the one that absorbed it), never a dangling id.
    let composed = 0;
    for (const [i, c] of raw2.entries()) {
      if (keptNow.has(c.id)) {
        expect(await store.resolve(c.id)).toBe(second.newIdOf.get(c.id));
        continue;
      }
      const e = await rejection(store.resolve(c.id));
      expect(e.code, c.id).toBe('COMPACTED');
      expect(e.data.snapshot).toBe(absorber(i));
      expect(onChain.has(e.data.snapshot as string)).toBe(true);
      if (i < raw1.length && first.newIdOf.has(c.id)) composed++; // kept by the first run, dropped by the second
    }
    expect(composed).toBeGreaterThan(10);
    for (const [old, made] of first.newIdOf) {
      const i = raw2.findIndex((c) => c.id === old);
      if (keptNow.has(old)) expect(await store.resolve(made)).toBe(second.newIdOf.get(old));
      else expect((await rejection(store.resolve(made))).data.snapshot).toBe(absorber(i));
    }
    // One entry per old id either run rewrote (nothing is over the default limit).
    const rewritten = new Set([
      ...raw1.filter((c) => !first.chain.some((n) => n.id === c.id)).map((c) => c.id),
      ...[...first.chain.map((c) => c.id), ...raw2.slice(raw1.length).map((c) => c.id)].filter(
        (id) => !onChain.has(id),
      ),
    ]);
    expect(new Set(mapLines(store.dir).map((l) => l.slice(0, 16)))).toEqual(
      new Set([...rewritten].map((id) => id.slice(0, 16))),
    );
    expectFsckClean(store.dir);

    // With compactionMapLimit 50: 50 entries, the most recent old commits; an id older than those is NOT_FOUND.
    const limited = await twice({ compactionMapLimit: 50 });
    const lines = mapLines(limited.store.dir);
    expect(lines).toHaveLength(50);
    const times = lines.map((l) => Number(l.split(' ')[3]));
    const oldest = Math.min(...times);
    const droppedNow = limited.raw2.filter((c) => !limited.second.expected.kept.some((k) => k.id === c.id));
    const recentDrops = droppedNow.filter((c) => c.time > oldest);
    expect(recentDrops.length).toBeGreaterThan(0);
    for (const c of recentDrops) expect(lines.some((l) => l.startsWith(`${c.id.slice(0, 16)} `))).toBe(true);
    expect((await rejection(limited.store.resolve(droppedNow.at(-1)!.id))).code).toBe('COMPACTED');
    expect(await codeOf(limited.store.resolve(limited.raw2[5]!.id))).toBe('NOT_FOUND');
    expectFsckClean(limited.store.dir);
  });

  it('prunes what nothing reaches any more and keeps other branches whole; a dry run only counts', async () => {
    const clock = new TestClock(T0);
    const store = await diskStore(clock);
    const dir = store.dir;
    const { raw } = await coreHistory(store, clock, CORE);
    // A branch from an old commit (one this compaction drops from main), with writes of its own.
    const fork = raw[150]!;
    await store.createBranch('side', { from: fork.id });
    for (let i = 0; i < 5; i++) await store.set(`side/k${i}`, `side ${i}`, { branch: 'side' });
    const sideObjects = git(['--git-dir', dir, 'rev-list', '--objects', 'side'])
      .toString()
      .trim()
      .split('\n')
      .map((l) => l.slice(0, 40));
    const sideLog = git(['--git-dir', dir, 'log', '--format=%H %P %T %s', 'side']).toString();
    const sideState = await stateAt(store, undefined, 'side');
    expect(sideObjects.length).toBeGreaterThan(600);
    await store.db.idle();
    const objectsBefore = inPack(dir);
    const distinct = () =>
      git(['--git-dir', dir, 'cat-file', '--batch-all-objects', '--batch-check'], { maxBuffer: 64 << 20 })
        .toString()
        .trim()
        .split('\n').length;
    const distinctBefore = distinct();
    const packs = packDir(dir);
    const refs = refsOf(dir);

    // A dry run: what a compaction would keep and prune, and nothing written.
    const dry = await store.compact({ policy: POLICY, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, before: raw.at(-1)!.id, head: raw.at(-1)!.id });
    expect(dry.pruned.objects).toBeGreaterThan(0);
    expect(packDir(dir)).toEqual(packs);
    expect(refsOf(dir)).toBe(refs);
    expect(await chainOf(store)).toHaveLength(2000);
    expect(await codeOf(store.resolve(raw[1000]!.id))).toBe('no error');

    const r = await store.compact({ policy: POLICY });
    expect({ kept: r.kept, recent: r.recent, snapshots: r.snapshots, dropped: r.dropped }).toEqual({
      kept: dry.kept,
      recent: dry.recent,
      snapshots: dry.snapshots,
      dropped: dry.dropped,
    });
    expect(Math.abs(dry.pruned.objects - r.pruned.objects)).toBeLessThanOrEqual(0.1 * r.pruned.objects);
    // Gone from disk: what was pruned, and only that (the new objects: a commit per kept one, the map's three).
    expect(distinct()).toBe(distinctBefore - r.pruned.objects + r.kept + 3);
    expect(inPack(dir)).toBeLessThan(objectsBefore / 2);
    expect(r.bytesAfter).toBeLessThan(r.bytesBefore);

    // The other branch is whole: every object it reaches, its history, its values (for git and a fresh store).
    const check = git(['--git-dir', dir, 'cat-file', '--batch-check'], {
      input: `${sideObjects.join('\n')}\n`,
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    }).toString();
    expect(check).not.toMatch(/missing/);
    expect(check.trim().split('\n')).toHaveLength(sideObjects.length);
    expect(git(['--git-dir', dir, 'log', '--format=%H %P %T %s', 'side']).toString()).toBe(sideLog);
    expect(await stateAt(store, undefined, 'side')).toEqual(sideState);
    expect(await stateAt(await openStore({ fs, dir }), undefined, 'side')).toEqual(sideState);
    expect(await store.getText('vm/3/state', { branch: 'side', at: 'side~5' })).toBe(
      gitValues(dir, ['vm/3/state'], fork.id).get('vm/3/state')!.toString(),
    );
    expectFsckClean(dir);
  });

  it('200 writes racing a compaction in this process all land, replayed on top in order', async () => {
    const clock = new TestClock(T0);
    const store = await diskStore(clock);
    const dir = store.dir;
    const { raw, now } = await coreHistory(store, clock, CORE);
    clock.step = 1000; // the racing writes: a second apart, after `now`
    const steps: string[] = [];
    const moving: Promise<{ commit: string; key: string }>[] = [];
    const late: Promise<{ commit: string; key: string }>[] = [];
    const compaction = store.compact({
      policy: POLICY,
      onProgress: (step) => {
        steps.push(step);
        // Queued just before the compaction's own write: applied first, so replayed on the rewritten history.
        if (step === 'moving the branch') for (let i = 0; i < 50; i++) moving.push(store.set(`race/m/${i}`, `m${i}`));
        // While pruning: on the new head, their objects not yet on any ref.
        if (step === 'pruning') for (let i = 0; i < 50; i++) late.push(store.set(`race/l/${i}`, `l${i}`));
      },
    });
    const early = Array.from({ length: 200 }, (_, i) => store.set(`race/e/${i}`, `e${i}`));
    const r = await compaction;
    const results = await Promise.all([...early, ...moving, ...late]);
    expect(steps).toEqual(['moving the branch', 'recording old commit ids', 'pruning']);
    expect(results).toHaveLength(300);
    expect(r.dropped).toBeGreaterThan(1500);

    const values = new Map<string, string>();
    for (let i = 0; i < 200; i++) values.set(`race/e/${i}`, `e${i}`);
    for (let i = 0; i < 50; i++) values.set(`race/m/${i}`, `m${i}`);
    for (let i = 0; i < 50; i++) values.set(`race/l/${i}`, `l${i}`);
    const fresh = await openStore({ fs, dir });
    const inGit = gitValues(dir, [...values.keys()]);
    for (const [key, value] of values) {
      expect(await store.getText(key), key).toBe(value);
      expect(await fresh.getText(key), key).toBe(value);
      expect(inGit.get(key)?.toString(), key).toBe(value);
    }

    // The chain: the compacted history, then each racing write once, in the order asked; one parent each.
    const chain = await chainOf(store);
    const old = chain.filter((c) => seconds(c.committer.time) <= raw.at(-1)!.time);
    expect(old.map((c) => seconds(c.committer.time))).toEqual(expectedKept(raw, now).kept.map((c) => c.time));
    expect(
      chain
        .slice(0, chain.length - old.length)
        .map((c) => c.subject)
        .reverse(),
    ).toEqual([...values.keys()].map((k) => `set ${k}`));
    for (const [k, c] of chain.entries()) {
      expect(c.parents).toEqual(k + 1 < chain.length ? [chain[k + 1]!.id] : []);
      if (k + 1 < chain.length) {
        expect(seconds(chain[k + 1]!.committer.time)).toBeLessThanOrEqual(seconds(c.committer.time));
      }
    }
    // The writes replayed have new ids; the ids they were answered with still read what they wrote.
    const onChain = new Set(chain.map((c) => c.id));
    const movingResults = results.slice(200, 250);
    for (const m of movingResults) expect(onChain.has(m.commit)).toBe(false);
    for (const l of results.slice(250)) expect(onChain.has(l.commit)).toBe(true);
    for (const x of results) {
      expect(onChain.has(await store.resolve(x.commit))).toBe(true);
      expect(await store.getText(x.key, { at: x.commit })).toBe(values.get(x.key));
    }
    expectFsckClean(dir);
  });

  it('a writer process writing during a compaction loses nothing', async () => {
    // A synthetic history up to three hours ago, compacted at real time while the writer process writes (its
    // commits, at real time, are recent: kept, re-parented or replayed). Packs a second old may be pruned.
    const phases: Phase[] = [
      { count: 100, stepMs: 2 * DAY_MS },
      { count: 900, stepMs: 10 * MINUTE_MS },
    ];
    const clock = new TestClock(Date.now() - 3 * HOUR * 1000 - 100 * 2 * DAY_MS - 900 * 10 * MINUTE_MS);
    const store = await diskStore(clock, { pruneGraceMs: 1000 });
    const dir = store.dir;
    await writeHistory(store, clock, phases);
    const raw = await rawHistory(store);
    clock.real = true;
    const writer = startWriter(WRITER, [dir, '1', '120']);
    children.push(writer.child);
    await writer.acked(20);
    const ackedBefore = writer.acks.size;
    const r = await store.compact({ policy: POLICY });
    const ackedDuring = writer.acks.size - ackedBefore;
    const exit = await writer.exited;
    expect(exit, writer.stderr()).toEqual({ code: 0, signal: null });
    expect(writer.acks.size).toBe(120);
    expect(ackedDuring).toBeGreaterThan(0);
    expect(r.dropped).toBeGreaterThan(800);
    expect(r.recent).toBeGreaterThanOrEqual(ackedBefore);

    // `done`: the compaction just run (the real clock moved on: a commit may have aged into a coarser tier since).
    const expectAllThere = async (done: CompactResult) => {
      const fresh = await openStore({ fs, dir });
      const inGit = gitValues(dir, [...writer.acks.keys()]);
      for (const key of writer.acks.keys()) {
        const value = `v1-${key.slice('p1/k'.length)}`;
        expect(await store.getText(key), key).toBe(value);
        expect(await fresh.getText(key), key).toBe(value);
        expect(inGit.get(key)?.toString(), key).toBe(value);
      }
      // Every acknowledged commit, rewritten or not, still reads what it wrote.
      const chain = await chainOf(fresh);
      const onChain = new Set(chain.map((c) => c.id));
      let rewritten = 0;
      for (const [key, commit] of writer.acks) {
        if (!onChain.has(commit)) rewritten++;
        expect(onChain.has(await fresh.resolve(commit))).toBe(true);
        expect(await fresh.getText(key, { at: commit })).toBe(`v1-${key.slice('p1/k'.length)}`);
      }
      // The synthetic part compacted, the writer's 120 commits all there once, one parent each.
      expect(chain.filter((c) => c.subject.startsWith('set p1/'))).toHaveLength(120);
      expect(chain.filter((c) => seconds(c.committer.time) <= raw.at(-1)!.time)).toHaveLength(done.kept - done.recent);
      for (const [k, c] of chain.entries()) expect(c.parents).toEqual(k + 1 < chain.length ? [chain[k + 1]!.id] : []);
      expectFsckClean(dir);
      return rewritten;
    };
    // The writer's commits from before the compaction (at least) got new ids.
    expect(await expectAllThere(r)).toBeGreaterThanOrEqual(ackedBefore);
    // The writer's background consolidation may have merged the old packs into a young one: once the grace is
    // over, compacting again prunes what the first run left, and still loses nothing.
    await sleep(1100);
    const again = await store.compact({ policy: POLICY });
    expect(again.pruned.objects + r.pruned.objects).toBeGreaterThan(1000);
    await expectAllThere(again);
  });

  it('a transaction begun before a compaction commits after it with one parent; one begun after merges as usual', async () => {
    const clock = new TestClock(T0);
    const store = await diskStore(clock);
    const dir = store.dir;
    const { raw } = await coreHistory(store, clock, SMALL);
    clock.step = 1000;
    const head = await stateAt(store);
    const tx = await store.begin();
    expect(await tx.getText('vm/1/state')).toBe(head['vm/1/state']);
    await tx.set('tx/before', 'began before the compaction');
    await tx.set('vm/1/state', 'from the transaction');
    // Another process's transaction (a second store on the repository), older than its ref delay: on disk.
    const other = await openStore({ fs, dir, clock: clock.now, pruneGraceMs: 0 });
    const otx = await other.begin();
    await otx.set('tx/other', 'another process');
    // Each mirrors itself to its ref in the background, after its ref delay: wait for both (not a fixed time).
    await until(() => refsOf(dir).match(/refs\/store\/tx\//g)?.length === 2, 'both transactions on disk');

    const r = await store.compact({ policy: POLICY });
    expect(r.dropped).toBeGreaterThan(400);
    const compacted = (await chainOf(store)).length;
    // Writes on the branch after the compaction, before the transactions commit.
    await store.set('vm/2/state', 'after the compaction');

    const done = await tx.commit();
    expect(done.outcome).toBe('merged');
    let chain = await chainOf(store);
    expect(chain[0]!.id).toBe(done.commit);
    expect(chain[0]!.parents).toEqual([chain[1]!.id]); // one parent: the transaction's commits are not kept
    expect(chain[0]!.subject).toBe(`commit transaction ${tx.id}`);
    expect(await store.getText('tx/before')).toBe('began before the compaction');
    expect(await store.getText('vm/1/state')).toBe('from the transaction');
    expect(await store.getText('vm/2/state')).toBe('after the compaction');

    const otherDone = await otx.commit();
    expect(otherDone.outcome).toBe('merged');
    // `store` sees another instance's commit once its cached head is re-checked (refreshMs, 10 ms).
    await sleep(30);
    chain = await chainOf(store);
    expect(chain[0]!.id).toBe(otherDone.commit);
    expect(chain[0]!.parents).toEqual([done.commit]);
    expect(await store.getText('tx/other')).toBe('another process');
    expect(chain).toHaveLength(compacted + 3);
    for (const c of chain) expect(c.parents.length).toBeLessThanOrEqual(1);
    expect(refsOf(dir)).not.toMatch(/refs\/store\/tx\//);
    expectFsckClean(dir);
    expect(gitValues(dir, ['tx/before', 'tx/other', 'vm/1/state'])).toEqual(
      new Map([
        ['tx/before', Buffer.from('began before the compaction')],
        ['tx/other', Buffer.from('another process')],
        ['vm/1/state', Buffer.from('from the transaction')],
      ]),
    );
    // The other process's transaction kept the old history alive until it ended: compacting again prunes it.
    const again = await store.compact({ policy: POLICY });
    expect(again.dropped).toBe(0);
    expect(again.head).toBe(again.before); // nothing to drop or re-parent: the branch is left as it is
    expect(again.pruned.objects).toBeGreaterThan(raw.length / 2);
    expectFsckClean(dir);

    // Begun after the compaction: an ordinary merge, two parents when the branch moved meanwhile.
    const after = await store.begin();
    await after.set('tx/after', 'began after');
    const moved = await store.set('vm/3/state', 'moved meanwhile');
    const merged = await after.commit();
    expect(merged.outcome).toBe('merged');
    const mergeCommit = await store.commit(merged.commit!);
    expect(mergeCommit.parents).toHaveLength(2);
    expect(mergeCommit.parents[0]).toBe(moved.commit);
    expect((await store.commit(mergeCommit.parents[1]!)).subject).toBe('set tx/after');
    expect(await store.getText('tx/after')).toBe('began after');
    expect(await store.getText('vm/3/state')).toBe('moved meanwhile');
    expectFsckClean(dir);
  });

  it('refuses bad policies writing nothing; a history all older than the last tier keeps its head alone', async () => {
    const clock = new TestClock(T0);
    const store = await diskStore(clock);
    const dir = store.dir;
    await writeHistory(store, clock, [{ count: 300, stepMs: 10 * MINUTE_MS }]);
    const refuse = async (options: Parameters<Store['compact']>[0], message: RegExp) => {
      await store.db.idle();
      const refs = refsOf(dir);
      const packs = packDir(dir);
      for (const dryRun of [false, true]) {
        const e = await rejection(store.compact({ ...options, dryRun }));
        expect(e.code, e.message).toBe('INVALID_ARGUMENT');
        expect(e.message).toMatch(message);
      }
      expect(refsOf(dir)).toBe(refs);
      expect(packDir(dir)).toEqual(packs);
    };
    await refuse({}, /no retention policy: add \.store\/retention\.json/);
    await refuse({ policy: { within: '1h', keep: 'all' } }, /non-empty array of tiers/);
    await refuse({ policy: [] }, /non-empty array of tiers/);
    await refuse({ policy: '[{"within":"1h",' }, /not valid JSON/);
    await refuse({ policy: [{ within: '1h', keep: 'all', every: '1m' }] }, /tier 1 needs exactly one of "every"/);
    await refuse({ policy: [{ within: '1h', keep: 'all', extra: true }] }, /tier 1: unknown field extra/);
    await refuse(
      {
        policy: [
          { within: '1h', keep: 'all' },
          { within: '1d', every: '2d' },
        ],
      },
      /tier 2: "every" is longer than "within"/,
    );
    await refuse({ policy: [{ within: '1 day', every: '1h' }] }, /"1 day" is not a duration/);
    await refuse(
      {
        policy: [
          { within: '1d', every: '1h' },
          { within: '1h', every: '1m' },
        ],
      },
      /longer than the tier before/,
    );
    // The branch's own file: not JSON, then JSON that is not a policy.
    await store.set('.store/retention.json', '[{"within": "1h", ');
    await refuse({}, /\.store\/retention\.json is not valid JSON/);
    await store.set('.store/retention.json', JSON.stringify({ within: '1h', keep: 'all' }));
    await refuse({}, /non-empty array of tiers/);
    expect(await codeOf(store.compact({ branch: 'no-such-branch', policy: POLICY }))).toBe('NOT_FOUND');
    expect(await codeOf(store.compact({ branch: '../bad', policy: POLICY }))).toBe('INVALID_BRANCH');

    // Ten days after the last of 302 commits, a policy reaching back a day: only the head is kept, as a snapshot.
    clock.t += 10 * DAY_MS;
    const raw = await rawHistory(store);
    const now = Math.floor(clock.t / 1000);
    const r = await store.compact({
      policy: [
        { within: '1h', keep: 'all' },
        { within: '1d', every: '1h' },
      ],
    });
    expect(r).toMatchObject({ commits: 302, kept: 1, recent: 0, dropped: 301 });
    expect(r.snapshots).toEqual([{ commit: raw.at(-1)!.id, time: iso(raw.at(-1)!.time) }]);
    const chain = await chainOf(store);
    expect(chain).toHaveLength(1);
    expect(git(['--git-dir', dir, 'rev-list', '--count', 'main']).toString().trim()).toBe('1');
    const [only] = chain;
    expect(only!.parents).toEqual([]);
    expect(only!.tree).toBe(raw.at(-1)!.tree);
    expect(only!.subject).toBe(`snapshot at ${iso(raw.at(-1)!.time)}: 302 commits compacted into one`);
    expect(only!.message).toMatch(new RegExp(`^Compacted-Since: ${raw[0]!.time}$`, 'm'));
    expect(now - raw.at(-1)!.time).toBeGreaterThan(DAY);
    const e = await rejection(store.resolve(raw[100]!.id));
    expect(e).toMatchObject({ code: 'COMPACTED', data: { snapshot: only!.id } });
    expect(await stateAt(store)).toEqual(await stateAt(store, only!.id));
    expectFsckClean(dir);
  });

  it('on memfs: the same compaction as on disk, commit for commit', async () => {
    const run = async (store: Store, clock: TestClock) => {
      const { raw, now } = await coreHistory(store, clock, SMALL);
      const headState = await stateAt(store);
      const r = await store.compact({ policy: POLICY });
      const { chain, expected } = await expectCompacted(store, raw, r, now);
      expect(await stateAt(store)).toEqual(headState);
      expect(r.pruned.objects).toBeGreaterThan(raw.length);
      const keptIds = new Set(expected.kept.map((c) => c.id));
      const dropped = raw.filter((c) => !keptIds.has(c.id));
      for (const c of dropped.filter((_, i) => i % 10 === 0)) {
        const e = await rejection(store.resolve(c.id.slice(0, 8)));
        expect(e.code).toBe('COMPACTED');
        expect(chain.some((n) => n.id === e.data.snapshot && seconds(n.committer.time) >= c.time)).toBe(true);
      }
      for (const c of expected.recent) expect(await store.resolve(c.id)).not.toBe(c.id);
      return {
        result: {
          kept: r.kept,
          recent: r.recent,
          dropped: r.dropped,
          snapshots: r.snapshots,
          pruned: r.pruned.objects,
        },
        chain: chain.map((c) => `${c.id} ${c.tree} ${c.parents.join(',')}`),
        state: headState,
      };
    };
    const diskClock = new TestClock(T0);
    const onDisk = await run(await diskStore(diskClock), diskClock);
    const memClock = new TestClock(T0);
    const inMemory = await run(await openStore({ memory: true, clock: memClock.now, pruneGraceMs: 0 }), memClock);
    expect(inMemory.result.kept).toBeGreaterThan(40);
    expect(inMemory).toEqual(onDisk);
  });

  // A transaction of the compacting process mirrors its commits to refs/store/tx/<id>; their parents lead into the
  // history before the compaction, which must survive until the transaction ends (found by this test: pruning took
  // it, and `git fsck` reported a broken link from the transaction's ref).
  it('stays fsck-clean while a transaction begun before the compaction is still open', async () => {
    const clock = new TestClock(T0);
    const store = await diskStore(clock);
    const dir = store.dir;
    await coreHistory(store, clock, SMALL);
    const tx = await store.begin();
    await tx.set('tx/open', 'still open');
    await until(() => refsOf(dir).includes(`refs/store/tx/${tx.id}`), 'the transaction on disk');
    expect((await store.compact({ policy: POLICY })).dropped).toBeGreaterThan(400);
    try {
      expectFsckClean(dir);
      git(['--git-dir', dir, 'log', '--format=%H', `refs/store/tx/${tx.id}`]);
    } finally {
      await tx.commit();
    }
  });

  it('merging a branch merged before a compaction still finds its base: no false conflicts', async () => {
    const clock = new TestClock(T0);
    clock.step = 10 * MINUTE_MS;
    const store = await diskStore(clock);
    const dir = store.dir;
    for (let i = 0; i < 100; i++) await store.set(`k/${i % 10}`, `main ${i}`);
    await store.createBranch('dev');
    await store.set('dev/a', 'dev 1', { branch: 'dev' });
    await store.set('k/1', 'dev 1', { branch: 'dev' });
    await store.set('main/x', 'main x');
    expect((await store.merge('dev')).outcome).toBe('merged');
    await store.set('k/1', 'dev 2', { branch: 'dev' });
    await store.set('dev/a', 'dev 2', { branch: 'dev' });
    // The first tier keeps the last 5 hours: the merge commit is kept, with dev's parent.
    const policy = [
      { within: '5h', keep: 'all' },
      { within: '1y', every: '1d' },
    ];
    expect((await store.compact({ policy })).dropped).toBeGreaterThan(50);
    expectFsckClean(dir);
    const merges = git(['--git-dir', dir, 'log', '--merges', '--format=%P', 'main']).toString().trim().split('\n');
    expect(merges).toHaveLength(1);
    expect(merges[0]!.split(' ')[1]).toBe(git(['--git-dir', dir, 'rev-parse', 'dev~2']).toString().trim());
    expect((await store.merge('dev')).outcome).toBe('merged');
    expect(await store.getText('k/1')).toBe('dev 2');
    expect(await store.getText('dev/a')).toBe('dev 2');
    expectFsckClean(dir);
    await store.close();
  });

  it('merging a branch forked from a commit compaction rewrote finds the fork in the compaction map', async () => {
    const clock = new TestClock(T0);
    clock.step = 10 * MINUTE_MS;
    const store = await diskStore(clock);
    for (let i = 0; i < 100; i++) await store.set(`k/${i % 10}`, `main ${i}`);
    await store.createBranch('late');
    await store.set('late/b', 'late', { branch: 'late' });
    await store.set('k/2', 'late', { branch: 'late' });
    await store.set('k/3', 'main after');
    const policy = [
      { within: '2h', keep: 'all' },
      { within: '1y', every: '1d' },
    ];
    expect((await store.compact({ policy })).dropped).toBeGreaterThan(50);
    // No common commit is left: without the map the merge would see unrelated histories and conflict on k/2.
    expect((await store.merge('late')).outcome).toBe('merged');
    expect(await store.getText('k/2')).toBe('late');
    expect(await store.getText('k/3')).toBe('main after');
    expect(await store.getText('late/b')).toBe('late');
    expectFsckClean(store.dir);
    await store.close();
  });
});
