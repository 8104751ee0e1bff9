import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { memfs } from 'memfs';
import { describe, expect, it } from 'vitest';
import {
  type BatchOp,
  type Conflict,
  type FsLike,
  isStoreError,
  MERGE_CONFIG_KEY,
  openStore,
  type Store,
  type StrategyName,
} from '../src/index.js';

// ---- a model of a branch's content ---------------------------------------------------------------------------

/** key → value text; a value's blob oid is computed, so model and store compare exactly. */
type State = Map<string, string>;
type Edit = { op: 'set'; key: string; value: string } | { op: 'delete'; key: string };
/** A side's history: a list of commits, each a list of edits. */
type History = Edit[][];

/** No key here is a prefix of another: merges never meet a value where a directory is (file-dir). */
const FLAT = ['a', 'b', 'c/d', 'c/e', 'f/g/h'];
/** With `c` and `f/g` too: a side may turn a directory into a value or back (the model deletes what is in the way). */
const SHAPED = [...FLAT, 'c', 'f/g'];
const VALUES = ['1', '2', 'x', 'y'];
const KINDS = ['both-modified', 'modify-delete', 'delete-modify', 'add-add', 'file-dir'];

const blobOid = (value: string) => {
  const body = Buffer.from(value, 'utf8');
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
};

/** Whether one key is a directory of the other (they cannot both be values). */
const nested = (a: string, b: string) => a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

/** The directories above a key: `f/g/h` → `f`, `f/g`. */
const parents = (key: string) =>
  key
    .split('/')
    .slice(0, -1)
    .map((_, i, segs) => segs.slice(0, i + 1).join('/'));

/**
 * Applies edits to the model and returns the batch ops that do the same to a store in ONE batch, with plain deletes
 * as a user would write them: a `set` first deletes, one by one, the values in its way (a value above it, and every
 * value below it, which leaves the directory of the same name empty, and so gone); a `delete` of an absent key is
 * dropped.
 */
function compile(state: State, edits: Edit[]): BatchOp[] {
  const ops: BatchOp[] = [];
  for (const e of edits) {
    if (e.op === 'set') {
      const above = parents(e.key);
      for (const k of [...state.keys()]) {
        if (above.includes(k) || k.startsWith(`${e.key}/`)) {
          ops.push({ op: 'delete', key: k });
          state.delete(k);
        }
      }
      ops.push({ op: 'set', key: e.key, value: e.value });
      state.set(e.key, e.value);
    } else if (state.has(e.key)) {
      ops.push({ op: 'delete', key: e.key });
      state.delete(e.key);
    }
  }
  return ops;
}

const edit = (pool: string[]): fc.Arbitrary<Edit> =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('set' as const),
        key: fc.constantFrom(...pool),
        value: fc.constantFrom(...VALUES),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...pool) }) },
  );
const initialEdits = (pool: string[]) =>
  fc.array(
    fc.record({ op: fc.constant('set' as const), key: fc.constantFrom(...pool), value: fc.constantFrom(...VALUES) }),
    { maxLength: 6 },
  );
const history = (pool: string[], minCommits = 0): fc.Arbitrary<History> =>
  fc.array(fc.array(edit(pool), { minLength: 1, maxLength: 4 }), { minLength: minCommits, maxLength: 3 });

/** Commits a history to a branch (one batch per commit; commits whose edits change nothing are skipped). */
async function play(store: Store, branch: string, state: State, commits: History, message?: string): Promise<number> {
  let made = 0;
  for (const edits of commits) {
    const ops = compile(state, edits);
    if (ops.length === 0) continue;
    // A batch that leaves the tree as it was makes no commit (changed: false).
    if ((await store.batch(ops, { branch, message: message ?? branch })).changed) made++;
  }
  return made;
}

/** A memory store whose main holds `initial`, with `dev` forked from it. */
async function forked(initial: Edit[], options: { clock?: () => Date } = {}) {
  const store = await openStore({ memory: true, ...options });
  const base: State = new Map();
  const ops = compile(base, initial);
  if (ops.length > 0) await store.batch(ops);
  else {
    // An empty base: a commit with the empty tree.
    await store.set('tmp', 'x');
    await store.delete('tmp');
  }
  await store.createBranch('dev');
  const fork = await store.resolve('main');
  return { store, base, fork, ours: new Map(base), theirs: new Map(base) };
}

/** A branch's content as key → blob oid, straight from the store. */
async function content(store: Store, branch: string): Promise<Record<string, string>> {
  const { entries } = await store.list('', { recursive: true, branch });
  for (const e of entries) expect(e.type).toBe('value');
  return Object.fromEntries(entries.map((e) => [e.key, e.oid]));
}

const modelContent = (state: State): Record<string, string> =>
  Object.fromEntries([...state].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, blobOid(v)]));

const keysOf = (...states: State[]) => [...new Set(states.flatMap((s) => [...s.keys()]))].sort();

/**
 * The per-key three-way merge as specified: equal sides stay, a key one side changed takes that side, and a key both
 * changed differently goes to the strategy (ours, theirs) or is a conflict of the kind the base and sides give.
 * Exact on the FLAT pool, where keys never stand in each other's way.
 */
function threeWay(base: State, ours: State, theirs: State, strategy: 'conflict' | 'ours' | 'theirs') {
  const result: State = new Map();
  const conflicts: Conflict[] = [];
  const oid = (v: string | undefined) => (v === undefined ? null : blobOid(v));
  for (const k of keysOf(base, ours, theirs)) {
    const [b, o, t] = [base.get(k), ours.get(k), theirs.get(k)];
    let v: string | undefined;
    if (o === t) v = o;
    else if (o === b) v = t;
    else if (t === b) v = o;
    else if (strategy === 'ours') v = o;
    else if (strategy === 'theirs') v = t;
    else {
      const kind =
        b === undefined
          ? 'add-add'
          : o === undefined
            ? 'delete-modify'
            : t === undefined
              ? 'modify-delete'
              : 'both-modified';
      conflicts.push({ key: k, kind, base: oid(b), ours: oid(o), theirs: oid(t) });
      v = o;
    }
    if (v !== undefined) result.set(k, v);
  }
  return { result, conflicts };
}

/** Keys both sides changed, to different values. */
const bothChanged = (base: State, ours: State, theirs: State) =>
  keysOf(base, ours, theirs).filter(
    (k) => ours.get(k) !== base.get(k) && theirs.get(k) !== base.get(k) && ours.get(k) !== theirs.get(k),
  );

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

const RUNS = { numRuns: 100 };

// ---- properties ----------------------------------------------------------------------------------------------

describe('merge laws (property, memory stores)', () => {
  it('merging a branch that did not change since the fork is a no-op (up-to-date, head unchanged)', async () => {
    await fc.assert(
      fc.asyncProperty(initialEdits(SHAPED), history(SHAPED), async (initial, mainEdits) => {
        const { store, ours } = await forked(initial);
        await play(store, 'main', ours, mainEdits);
        const before = await store.resolve('main');
        const result = await store.merge('dev');
        expect(result).toEqual({ commit: before, outcome: 'up-to-date' });
        expect(await store.resolve('main')).toBe(before);
        expect(await content(store, 'main')).toEqual(modelContent(ours));
      }),
      RUNS,
    );
  });

  it('merging into a branch that did not change gives the other side', async () => {
    await fc.assert(
      fc.asyncProperty(initialEdits(SHAPED), history(SHAPED, 1), async (initial, devEdits) => {
        const { store, fork, theirs } = await forked(initial);
        const made = await play(store, 'dev', theirs, devEdits);
        const result = await store.merge('dev');
        expect(result.outcome).toBe(made > 0 ? 'merged' : 'up-to-date');
        if (made === 0) expect(result.commit).toBe(fork);
        else expect((await store.commit(result.commit)).parents).toEqual([fork, await store.resolve('dev')]);
        expect(await content(store, 'main')).toEqual(await content(store, 'dev'));
        expect(await content(store, 'main')).toEqual(modelContent(theirs));
      }),
      RUNS,
    );
  });

  it('two sides that made the same changes do not conflict; the result is either side', async () => {
    await fc.assert(
      fc.asyncProperty(initialEdits(SHAPED), history(SHAPED, 1), async (initial, edits) => {
        const { store, ours, theirs } = await forked(initial);
        // Main commits the edits one batch per commit; dev makes the same change in a single batch, so the commits
        // differ (no accidental fast-forward) while the trees agree.
        await play(store, 'main', ours, edits);
        const all = compile(theirs, edits.flat());
        if (all.length > 0) await store.batch(all, { branch: 'dev', message: 'all at once' });
        expect(modelContent(ours)).toEqual(modelContent(theirs));
        await store.merge('dev');
        expect(await content(store, 'main')).toEqual(modelContent(ours));
        expect(await content(store, 'main')).toEqual(await content(store, 'dev'));
      }),
      RUNS,
    );
  });

  for (const strategy of ['ours', 'theirs'] as const) {
    it(`strategy '${strategy}' never conflicts and follows the three-way rule (flat keys, exact)`, async () => {
      await fc.assert(
        fc.asyncProperty(initialEdits(FLAT), history(FLAT), history(FLAT), async (initial, mainEdits, devEdits) => {
          const { store, base, ours, theirs } = await forked(initial);
          await play(store, 'main', ours, mainEdits);
          await play(store, 'dev', theirs, devEdits);
          await store.merge('dev', { strategy });
          expect(await content(store, 'main')).toEqual(modelContent(threeWay(base, ours, theirs, strategy).result));
        }),
        RUNS,
      );
    });

    it(`strategy '${strategy}' never conflicts, and keys both sides changed take ${strategy}' value (values may stand where directories were)`, async () => {
      await fc.assert(
        fc.asyncProperty(
          initialEdits(SHAPED),
          history(SHAPED),
          history(SHAPED),
          async (initial, mainEdits, devEdits) => {
            const { store, base, ours, theirs } = await forked(initial);
            await play(store, 'main', ours, mainEdits);
            await play(store, 'dev', theirs, devEdits);
            const error = await caught(store.merge('dev', { strategy }));
            expect(error).toBeUndefined();
            const merged = await content(store, 'main');
            const winner = strategy === 'ours' ? ours : theirs;
            for (const k of bothChanged(base, ours, theirs)) {
              const v = winner.get(k);
              expect(merged[k], `key ${k}`).toBe(v === undefined ? undefined : blobOid(v));
            }
            // Keys only one side changed, and that nothing else stands in the way of, take that side's value.
            const expected = threeWay(base, ours, theirs, strategy).result;
            const exp = modelContent(expected);
            for (const k of keysOf(base, ours, theirs)) {
              const inTheWay = keysOf(expected).some((o) => nested(o, k));
              if (!inTheWay) expect(merged[k], `key ${k}`).toBe(exp[k]);
            }
          },
        ),
        RUNS,
      );
    });
  }

  it('disjoint edits never conflict and the result holds both sides’ edits', async () => {
    const groups = ['a', 'b', 'c', 'f'];
    await fc.assert(
      fc.asyncProperty(
        initialEdits(SHAPED),
        history(SHAPED),
        fc.subarray(groups),
        async (initial, edits, mainGroups) => {
          // Split by first segment, so that neither side's keys are in the way of the other's.
          const mine = (e: Edit) => mainGroups.includes(e.key.split('/')[0]!);
          const mainEdits = edits.map((c) => c.filter(mine)).filter((c) => c.length > 0);
          const devEdits = edits.map((c) => c.filter((e) => !mine(e))).filter((c) => c.length > 0);
          const { store, ours, theirs } = await forked(initial);
          await play(store, 'main', ours, mainEdits);
          await play(store, 'dev', theirs, devEdits);
          await store.merge('dev');
          const expected: State = new Map();
          for (const [k, v] of ours) if (mainGroups.includes(k.split('/')[0]!)) expected.set(k, v);
          for (const [k, v] of theirs) if (!mainGroups.includes(k.split('/')[0]!)) expected.set(k, v);
          expect(await content(store, 'main')).toEqual(modelContent(expected));
        },
      ),
      RUNS,
    );
  });

  it('conflicts exactly where both sides changed a key differently, with the right kind and oids; a conflicting merge writes nothing (flat keys)', async () => {
    await fc.assert(
      fc.asyncProperty(initialEdits(FLAT), history(FLAT), history(FLAT), async (initial, mainEdits, devEdits) => {
        const { store, base, ours, theirs } = await forked(initial);
        await play(store, 'main', ours, mainEdits);
        await play(store, 'dev', theirs, devEdits);
        const [mainBefore, devBefore] = [await store.resolve('main'), await store.resolve('dev')];
        const expected = threeWay(base, ours, theirs, 'conflict');
        const error = await caught(store.merge('dev'));
        if (expected.conflicts.length === 0) {
          expect(error).toBeUndefined();
          expect(await content(store, 'main')).toEqual(modelContent(expected.result));
          return;
        }
        expect(isStoreError(error) && error.code).toBe('CONFLICT');
        const conflicts = (error as { data: { conflicts: Conflict[] } }).data.conflicts;
        const byKey = (a: Conflict, b: Conflict) => (a.key < b.key ? -1 : 1);
        expect([...conflicts].sort(byKey)).toEqual(expected.conflicts.sort(byKey));
        expect(await store.resolve('main')).toBe(mainBefore);
        expect(await store.resolve('dev')).toBe(devBefore);
        expect(await content(store, 'main')).toEqual(modelContent(ours));
      }),
      RUNS,
    );
  });

  it('a conflicting merge writes nothing and lists every key both sides changed differently, each with a known kind (values may stand where directories were)', async () => {
    await fc.assert(
      fc.asyncProperty(initialEdits(SHAPED), history(SHAPED), history(SHAPED), async (initial, mainEdits, devEdits) => {
        const { store, base, ours, theirs } = await forked(initial);
        await play(store, 'main', ours, mainEdits);
        await play(store, 'dev', theirs, devEdits);
        const [mainBefore, devBefore] = [await store.resolve('main'), await store.resolve('dev')];
        const both = bothChanged(base, ours, theirs);
        const expected = threeWay(base, ours, theirs, 'conflict').result;
        // Where no key was changed differently by both sides and the per-key result is a possible tree (no value
        // where a directory is), the merge must succeed with that result.
        const possible = !keysOf(expected).some((k) => keysOf(expected).some((o) => nested(o, k)));
        const error = await caught(store.merge('dev'));
        if (error === undefined) {
          expect(both).toEqual([]);
          expect(await content(store, 'main')).toEqual(modelContent(expected));
          return;
        }
        expect(both.length > 0 || !possible, `unexpected conflict ${JSON.stringify(error)}`).toBe(true);
        expect(isStoreError(error) && error.code).toBe('CONFLICT');
        const conflicts = (error as { data: { conflicts: Conflict[] } }).data.conflicts;
        expect(conflicts.length).toBeGreaterThan(0);
        for (const c of conflicts) {
          expect(KINDS).toContain(c.kind);
          expect(SHAPED).toContain(c.key);
          // A file-dir conflict is a change of theirs that the shape of ours' tree cannot take.
          if (c.kind === 'file-dir') expect(theirs.get(c.key)).not.toBe(base.get(c.key));
        }
        expect(conflicts.map((c) => c.key)).toEqual(expect.arrayContaining(both));
        expect(await store.resolve('main')).toBe(mainBefore);
        expect(await store.resolve('dev')).toBe(devBefore);
        expect(await content(store, 'main')).toEqual(modelContent(ours));
      }),
      RUNS,
    );
  });

  it('criss-cross histories (each side merging the other) merge again without crashing', async () => {
    await fc.assert(
      fc.asyncProperty(
        initialEdits(FLAT),
        fc.array(fc.tuple(history(FLAT), history(FLAT)), { minLength: 2, maxLength: 3 }),
        async (initial, rounds) => {
          const { store, ours, theirs } = await forked(initial);
          for (const [mainEdits, devEdits] of rounds) {
            await play(store, 'main', ours, mainEdits);
            await play(store, 'dev', theirs, devEdits);
            const mainHead = await store.resolve('main');
            // Both merge the other's head as it was before either merge: a criss-cross from the second round on.
            const a = await caught(store.merge('dev', { strategy: 'theirs' }));
            const b = await caught(store.merge(mainHead, { into: 'dev', strategy: 'theirs' }));
            expect(a).toBeUndefined();
            expect(b).toBeUndefined();
            // Re-read both sides into the model.
            ours.clear();
            theirs.clear();
            for (const branch of ['main', 'dev'] as const) {
              const target = branch === 'main' ? ours : theirs;
              for (const e of (await store.list('', { recursive: true, branch })).entries) {
                target.set(e.key, await store.getText(e.key, { branch }));
              }
            }
          }
          const error = await caught(store.merge('dev'));
          if (error !== undefined) expect(isStoreError(error) && error.code).toBe('CONFLICT');
        },
      ),
      { numRuns: 30 },
    );
  });
});

// ---- built-in strategies, by example -------------------------------------------------------------------------

const POLICY = {
  default: 'conflict',
  prefixes: { counters: 'counter', cfg: 'json', tags: 'set', last: 'lww' } satisfies Record<string, StrategyName>,
};

/** A store whose main holds the policy and `base`, with dev forked from it. */
async function withPolicy(base: Record<string, string>, clock?: () => Date) {
  const store = await openStore({ memory: true, ...(clock ? { clock } : {}) });
  await store.batch([
    { op: 'set', key: MERGE_CONFIG_KEY, value: JSON.stringify(POLICY) },
    ...Object.entries(base).map(([key, value]) => ({ op: 'set' as const, key, value })),
  ]);
  await store.createBranch('dev');
  return store;
}

const conflictsOf = (e: unknown) => (e as { data: { conflicts: Conflict[] } }).data.conflicts;

describe('built-in strategies via .store/merge.json, and special histories (examples)', () => {
  it('counter adds both deltas: base 10, ours 15, theirs 12 → 17', async () => {
    const store = await withPolicy({ 'counters/hits': '10' });
    await store.set('counters/hits', '15');
    await store.set('counters/hits', '12', { branch: 'dev' });
    expect((await store.merge('dev')).outcome).toBe('merged');
    expect(await store.getText('counters/hits')).toBe('17');
  });

  it('counter: a deletion on one side conflicts', async () => {
    const store = await withPolicy({ 'counters/hits': '10' });
    await store.delete('counters/hits');
    await store.set('counters/hits', '12', { branch: 'dev' });
    const e = await caught(store.merge('dev'));
    expect(isStoreError(e) && e.code).toBe('CONFLICT');
    expect(conflictsOf(e).map((c) => [c.key, c.kind])).toEqual([['counters/hits', 'delete-modify']]);
  });

  it('json merges disjoint fields, and conflicts when both set one field differently', async () => {
    const store = await withPolicy({ 'cfg/vm': JSON.stringify({ cpu: 1, mem: 512, net: { ip: 'a' } }) });
    await store.set('cfg/vm', JSON.stringify({ cpu: 2, mem: 512, net: { ip: 'a' } }));
    await store.set('cfg/vm', JSON.stringify({ cpu: 1, mem: 1024, net: { ip: 'a', gw: 'g' } }), { branch: 'dev' });
    await store.merge('dev');
    expect(JSON.parse(await store.getText('cfg/vm'))).toEqual({ cpu: 2, mem: 1024, net: { ip: 'a', gw: 'g' } });

    const clash = await withPolicy({ 'cfg/vm': JSON.stringify({ cpu: 1, mem: 512 }) });
    await clash.set('cfg/vm', JSON.stringify({ cpu: 2, mem: 512 }));
    await clash.set('cfg/vm', JSON.stringify({ cpu: 4, mem: 512 }), { branch: 'dev' });
    const before = await clash.resolve('main');
    const e = await caught(clash.merge('dev'));
    expect(isStoreError(e) && e.code).toBe('CONFLICT');
    expect(conflictsOf(e).map((c) => [c.key, c.kind])).toEqual([['cfg/vm', 'both-modified']]);
    expect(await clash.resolve('main')).toBe(before);
  });

  it('set keeps lines added on either side and drops a line removed on one side', async () => {
    const store = await withPolicy({ 'tags/web': 'a\nb\nc\n' });
    await store.set('tags/web', 'a\nc\nd\n'); // ours: removes b, adds d
    await store.set('tags/web', 'a\nb\nc\ne\n', { branch: 'dev' }); // theirs: adds e
    await store.merge('dev');
    const lines = (await store.getText('tags/web')).split('\n').filter((l) => l !== '');
    expect(new Set(lines)).toEqual(new Set(['a', 'c', 'd', 'e']));
    expect(lines).toHaveLength(4);
  });

  it('lww: the side that last changed the key wins, either way round (a tie: the greater value)', async () => {
    for (const [oursAt, theirsAt, winner] of [
      [2000, 3000, 'theirs'],
      [3000, 2000, 'ours'],
      [2000, 2000, 'theirs'], // a tie goes to the greater value ('theirs' > 'ours'), whichever side it is on
    ] as const) {
      let now = 1000;
      const store = await withPolicy({ 'last/seen': 'base' }, () => new Date(now * 1000));
      now = oursAt;
      await store.set('last/seen', 'ours');
      now = theirsAt;
      await store.set('last/seen', 'theirs', { branch: 'dev' });
      now = 4000;
      await store.merge('dev');
      expect(await store.getText('last/seen')).toBe(winner);
    }
  });

  it('keys outside every prefix fall back to the default (conflict)', async () => {
    const store = await withPolicy({ plain: '1', 'counters/n': '1' });
    await store.batch([
      { op: 'set', key: 'plain', value: '2' },
      { op: 'set', key: 'counters/n', value: '2' },
    ]);
    await store.batch(
      [
        { op: 'set', key: 'plain', value: '3' },
        { op: 'set', key: 'counters/n', value: '3' },
      ],
      { branch: 'dev' },
    );
    const e = await caught(store.merge('dev'));
    expect(conflictsOf(e).map((c) => c.key)).toEqual(['plain']);
  });

  it('a criss-cross history (two branches merging each other twice) merges again with the expected content', async () => {
    const store = await openStore({ memory: true });
    await store.batch([
      { op: 'set', key: 'a', value: '1' },
      { op: 'set', key: 'b', value: '1' },
    ]);
    await store.createBranch('dev');
    for (let round = 1; round <= 2; round++) {
      await store.set(`main${round}`, 'm');
      await store.set(`dev${round}`, 'd', { branch: 'dev' });
      if (round === 1) {
        await store.set('a', '2');
        await store.set('b', '2', { branch: 'dev' });
      }
      const mainHead = await store.resolve('main');
      expect((await store.merge('dev')).outcome).toBe('merged');
      expect((await store.merge(mainHead, { into: 'dev' })).outcome).toBe('merged');
    }
    // Now both heads are merges of each other's previous heads: two merge bases.
    await store.set('c', 'main');
    await store.set('d', 'dev', { branch: 'dev' });
    await store.set('a', '3', { branch: 'dev' });
    expect((await store.merge('dev')).outcome).toBe('merged');
    const text = Object.fromEntries(
      await Promise.all(
        (await store.list('', { recursive: true })).entries.map(async (e) => [e.key, await store.getText(e.key)]),
      ),
    );
    expect(text).toEqual({ a: '3', b: '2', c: 'main', d: 'dev', main1: 'm', main2: 'm', dev1: 'd', dev2: 'd' });

    // And a criss-cross where both then change the same key differently: CONFLICT, not a crash.
    await store.set('b', 'x');
    await store.set('b', 'y', { branch: 'dev' });
    const e = await caught(store.merge('dev'));
    expect(isStoreError(e) && e.code).toBe('CONFLICT');
    expect(conflictsOf(e).map((c) => [c.key, c.kind])).toEqual([['b', 'both-modified']]);
  });

  it('unrelated histories merge against the empty tree', async () => {
    // A second root: point HEAD at an unborn branch and reopen, so the default branch's first write has no parent.
    const { fs } = memfs();
    const first = await openStore({ fs: fs as unknown as FsLike, dir: '/s.git', create: true });
    await first.batch([
      { op: 'set', key: 'a', value: '1' },
      { op: 'set', key: 'b', value: '1' },
    ]);
    fs.writeFileSync('/s.git/HEAD', 'ref: refs/heads/other\n');
    const store = await openStore({ fs: fs as unknown as FsLike, dir: '/s.git' });
    expect(store.defaultBranch).toBe('other');
    await store.batch([
      { op: 'set', key: 'b', value: '2' },
      { op: 'set', key: 'c', value: '3' },
    ]);
    expect((await store.commit('other')).parents).toEqual([]);

    const e = await caught(store.merge('main'));
    expect(isStoreError(e) && e.code).toBe('CONFLICT');
    expect(conflictsOf(e)).toEqual([
      { key: 'b', kind: 'add-add', base: null, ours: blobOid('2'), theirs: blobOid('1') },
    ]);

    expect((await store.merge('main', { strategy: 'theirs' })).outcome).toBe('merged');
    expect(await content(store, 'other')).toEqual(
      modelContent(
        new Map([
          ['a', '1'],
          ['b', '1'],
          ['c', '3'],
        ]),
      ),
    );
  });
});

// ---- directories emptied or replaced, by example --------------------------------------------------------------
// The smallest histories of the kinds the properties above meet on SHAPED keys.

describe('directories emptied by deletes, and values a directory replaced (examples)', () => {
  it('a batch may delete the last value of a directory and then set a value of the same name', async () => {
    // The delete prunes the directory it empties at once, so the set later in the same batch finds nothing in its
    // way (no KEY_IS_DIRECTORY).
    const store = await openStore({ memory: true });
    await store.set('c/d', '1');
    await store.batch([
      { op: 'delete', key: 'c/d' },
      { op: 'set', key: 'c', value: '1' },
    ]);
    expect(await content(store, 'main')).toEqual(modelContent(new Map([['c', '1']])));
  });

  it('merging into an unchanged branch takes the other side even where it turned a directory into a value', async () => {
    // Applying theirs' deletion of c/d removes the emptied directory `c` from the merge's tree, so theirs' value `c`
    // takes its place: no file-dir conflict, as main did not change at all.
    const store = await openStore({ memory: true });
    await store.set('c/d', '1');
    await store.createBranch('dev');
    await store.delete('c/d', { branch: 'dev' });
    await store.set('c', '1', { branch: 'dev' });
    expect((await store.merge('dev')).outcome).toBe('merged');
    expect(await content(store, 'main')).toEqual(await content(store, 'dev'));
  });

  it("strategy 'ours' keeps ours' directory where ours replaced a value that theirs modified", async () => {
    // The strategy resolves `c` to ours' side, the deletion of the value `c`; ours has a directory there, which that
    // deletion leaves alone, so ours' own c/e stays.
    const store = await openStore({ memory: true });
    await store.set('c', '1');
    await store.createBranch('dev');
    await store.batch([
      { op: 'delete', key: 'c' },
      { op: 'set', key: 'c/e', value: '1' },
    ]);
    await store.set('c', '2', { branch: 'dev' });
    const ours = await content(store, 'main');
    await store.merge('dev', { strategy: 'ours' });
    expect(await content(store, 'main')).toEqual(ours);
  });
});
