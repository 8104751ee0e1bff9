/**
 * Replication's merges, without the network: three replicas as three branches of one repository, each written and
 * merged by its own store instance (its own caches of merge bases), gossiping through deterministic merges of each
 * other's heads — the current one or one fetched earlier — with commits in the same second and clocks going back,
 * increments made by read and If-Match that share a writer batch with a merge, and now and then a replica restarted
 * (its caches gone). Every increment of the counter also writes a key of its own, named after its step and amount,
 * so after every step the counter must equal the sum of the increments whose keys the tree holds: a wrong merge base
 * (a criss-cross resolved badly, a cached base reused wrongly) shows as a count that is off, at the step that made it.
 * Then the replicas gossip until they agree, and must agree on every increment made.
 */
import { memfs } from 'memfs';
import { describe, expect, it } from 'vitest';
import { type FsLike, isStoreError, MERGE_CONFIG_KEY, openStore, type Store } from '../src/index.js';
import { random } from './helpers.js';

const REPLICAS = ['r0', 'r1', 'r2'];
const POLICY = { default: 'conflict', prefixes: { count: 'counter' } };

/** The counter of a branch, and the sum of the increments its tree holds (`inc/<step>-<amount>`: names alone). */
async function tally(store: Store, branch: string): Promise<{ counter: number; increments: number }> {
  const counter = Number(await store.getText('count', { branch }));
  const { entries } = await store.list('inc', { branch }).catch(() => ({ entries: [] }));
  const increments = entries.reduce((sum, e) => sum + Number(e.key.split('-').at(-1)), 0);
  return { counter, increments };
}

async function gossip(seed: number, steps: number): Promise<void> {
  const int = random(seed);
  let now = 1_000_000;
  const { fs } = memfs();
  const open = () =>
    openStore({ fs: fs as unknown as FsLike, dir: '/repo.git', create: true, clock: () => new Date(now * 1000) });
  const setup = await open();
  await setup.batch([
    { op: 'set', key: MERGE_CONFIG_KEY, value: JSON.stringify(POLICY) },
    { op: 'set', key: 'count', value: '0' },
  ]);
  for (const r of REPLICAS) await setup.createBranch(r);
  const replicas = await Promise.all(REPLICAS.map(() => open()));
  const fetched: string[][] = REPLICAS.map(() => []);
  const log: string[] = [];
  let total = 0;
  const check = async (i: number, what: string) => {
    const t = await tally(replicas[i]!, REPLICAS[i]!);
    expect(t.counter, `seed ${seed}, ${REPLICAS[i]} after ${what}; the last steps:\n${log.slice(-12).join('\n')}`).toBe(
      t.increments,
    );
  };

  for (let step = 0; step < steps; step++) {
    now += int(3) - 1 + (seed % 2); // same-second commits always; clocks going back on even seeds
    const i = int(3);
    const branch = REPLICAS[i]!;
    /** A replication round: a deterministic merge of a head of another replica, maybe after a restart. */
    const pull = async (restart: boolean): Promise<string> => {
      const j = (i + 1 + int(2)) % 3;
      const head = await replicas[i]!.resolve(REPLICAS[j]!);
      fetched[j]!.push(head);
      // A replica merges what it fetched, which may be older than the peer's head by the time it merges.
      const from = int(10) < 3 ? fetched[j]![int(fetched[j]!.length)]! : head;
      if (restart && int(20) === 0) replicas[i] = await open(); // caches of merge bases gone
      const r = await replicas[i]!.merge(from, { into: branch, deterministic: true });
      return `${branch} <- ${REPLICAS[j]} ${from.slice(0, 7)}: ${r.outcome} ${r.commit.slice(0, 7)}`;
    };
    if (int(10) >= 4) {
      log.push(await pull(true));
      await check(i, 'a merge');
      continue;
    }
    // An increment as a replica's client makes it: read, then write with If-Match. Now and then a replication merge
    // lands in the same writer batch, before it (the increment is refused, and not counted) or after it.
    const store = replicas[i]!;
    const delta = 1 + int(3);
    const { value, oid } = await store.read('count', { branch });
    const increment = store
      .batch(
        [
          { op: 'set', key: 'count', value: String(Number(Buffer.from(value).toString()) + delta), ifMatch: oid },
          { op: 'set', key: `inc/${step}-${delta}`, value: '' },
        ],
        { branch },
      )
      .then(
        () => {
          total += delta;
          return `${branch} +${delta}`;
        },
        (e: unknown) => {
          if (!isStoreError(e) || e.code !== 'PRECONDITION_FAILED') throw e;
          return `${branch} +${delta} refused: a merge moved the count first`;
        },
      );
    const racing = int(3) === 0 ? pull(false) : null;
    log.push(await increment);
    if (racing) log.push(await racing);
    await check(i, racing ? 'an increment and a merge in one batch' : 'an increment');
  }

  // Every replica pulls from both others, as replication's mesh does, until they have one head: a merge made of
  // heads that hold everything is taken by the others as a fast-forward.
  for (let round = 0; round < 5; round++) {
    const heads = await Promise.all(REPLICAS.map((r) => setup.resolve(r)));
    if (new Set(heads).size === 1) break;
    for (let i = 0; i < 3; i++) {
      for (const j of [(i + 1) % 3, (i + 2) % 3]) {
        await replicas[i]!.merge(await setup.resolve(REPLICAS[j]!), { into: REPLICAS[i], deterministic: true });
      }
    }
  }
  const heads = await Promise.all(REPLICAS.map((r) => setup.resolve(r)));
  expect(new Set(heads).size, `seed ${seed}: replicas still differ`).toBe(1);
  expect(await tally(setup, 'r0'), `seed ${seed}`).toEqual({ counter: total, increments: total });
}

const CLAIM = 'after every step the counter is the sum of the increments the tree holds, and the replicas agree on all';

describe('three replicas gossiping through deterministic merges (seeded, memory)', () => {
  it(`20 histories of 120 steps: ${CLAIM}`, { timeout: 300_000 }, async () => {
    for (let seed = 1; seed <= 20; seed++) await gossip(seed, 120);
  });

  it(`100 more histories of 150 steps: ${CLAIM}`, { tags: ['slow'], timeout: 900_000 }, async () => {
    for (let seed = 21; seed <= 120; seed++) await gossip(seed, 150);
  });
});
