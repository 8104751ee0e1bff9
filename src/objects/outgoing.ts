import { DateQueue } from './date-queue.js';
import type { ObjectSource } from './reachable.js';
import { isTreeMode, MODE_GITLINK } from './tree.js';

const WANT = 1;
const HAVE = 2;

/**
 * What a repository that has `haves` (and everything they reach) lacks of `want`'s history, as oids: oldest commit
 * first, each after the trees and blobs it brings. Used by replication to send a peer the few
 * commits it has not seen without starting git (docs/ARCHITECTURE.md, "Replication").
 *
 * The commits are those reachable from `want` and not from a have, found as git's rev-list finds them: both sides
 * walked newest first until everything left to walk is reachable from a have. Haves this repository does not know
 * are ignored. A clock skew can only make the walk send a commit the receiver has, never miss one.
 *
 * For each such commit only what its tree has that none of its parents' trees has at the same path is sent: an
 * object a parent has at its path is reached through that parent, which the receiver has or is sent. A root commit
 * sends its whole tree. So the answer is complete, and about as small as the changes it carries.
 *
 * Returns null when the answer would pass `limit` objects: a big transfer (a first sync, a history rewritten by
 * compaction) is git's job, whose packs are deltified and streamed.
 */
export async function outgoing(
  db: ObjectSource,
  want: string,
  haves: readonly string[],
  limit: number,
): Promise<string[] | null> {
  if (haves.includes(want)) return [];
  const known: string[] = [];
  for (const h of haves) if ((await db.typeOf(h)) === 'commit') known.push(h);
  const commits = await newCommits(db, want, known);
  const sent = new Set<string>();
  const order: string[] = [];
  const send = (oid: string) => {
    sent.add(oid);
    order.push(oid);
    return order.length <= limit;
  };
  for (const oid of commits.reverse()) {
    const commit = await db.readCommit(oid);
    const parents = await Promise.all(commit.parents.map(async (p) => (await db.readCommit(p)).tree));
    if (!(await treeChanges(db, commit.tree, parents, sent, send))) return null;
    if (!send(oid)) return null;
  }
  return order;
}

/** Commits reachable from `want` and from no have, newest first. */
async function newCommits(db: ObjectSource, want: string, haves: string[]): Promise<string[]> {
  const flags = new Map<string, number>();
  const queue = new DateQueue((oid) => db.readCommit(oid));
  const queued = new Set<string>();
  const out: string[] = [];
  let interesting = 0; // entries in the queue not reached from a have
  const push = async (oid: string, flag: number) => {
    const had = flags.get(oid) ?? 0;
    if ((had & flag) === flag) return;
    flags.set(oid, had | flag);
    if (queued.has(oid)) {
      if (!(had & HAVE) && flag & HAVE) interesting--;
      return;
    }
    if (!((had | flag) & HAVE)) interesting++;
    queued.add(oid);
    await queue.push(oid);
  };
  await push(want, WANT);
  for (const h of haves) await push(h, HAVE);
  while (interesting > 0) {
    // Within one second, what the haves reach is marked before anything is taken as new: times only grow along a
    // history (a replica's merge takes its later parent's), so that makes the walk exact unless clocks disagree.
    const oid = queue.popPreferring((o) => (flags.get(o)! & HAVE) !== 0)!;
    queued.delete(oid);
    const f = flags.get(oid)!;
    if (!(f & HAVE)) {
      interesting--;
      out.push(oid);
    }
    const flag = f & HAVE ? HAVE : WANT;
    for (const parent of (await db.readCommit(oid)).parents) await push(parent, flag);
  }
  // A commit output before a have reached it (clock skew) is merely sent twice over; drop what is known now.
  return out.filter((oid) => !(flags.get(oid)! & HAVE));
}

type Send = (oid: string) => boolean;

/** Sends a tree and everything below it not sent yet; false once past the limit. */
async function wholeTree(db: ObjectSource, root: string, sent: Set<string>, send: Send): Promise<boolean> {
  if (sent.has(root)) return true;
  const tree = await db.readTree(root);
  for (const entry of tree.values()) {
    if (entry.mode === MODE_GITLINK || sent.has(entry.oid)) continue;
    if (isTreeMode(entry.mode) ? !(await wholeTree(db, entry.oid, sent, send)) : !send(entry.oid)) return false;
  }
  return send(root);
}

/**
 * Sends what tree `ours` has that none of `theirs` (its parents' trees at the same path) has at the same path:
 * false once past the limit. An object any parent has there is reached through that parent.
 */
async function treeChanges(
  db: ObjectSource,
  ours: string,
  theirs: readonly string[],
  sent: Set<string>,
  send: Send,
): Promise<boolean> {
  if (theirs.includes(ours) || sent.has(ours)) return true;
  if (theirs.length === 0) return wholeTree(db, ours, sent, send);
  const tree = await db.readTree(ours);
  const others = await Promise.all(theirs.map((t) => db.readTree(t)));
  for (const [name, entry] of tree) {
    if (entry.mode === MODE_GITLINK || sent.has(entry.oid)) continue;
    const there = others.map((t) => t.get(name)).filter((e) => e !== undefined);
    if (there.some((e) => e.oid === entry.oid)) continue;
    const ok = isTreeMode(entry.mode)
      ? await treeChanges(
          db,
          entry.oid,
          there.filter((e) => isTreeMode(e.mode)).map((e) => e.oid),
          sent,
          send,
        )
      : send(entry.oid);
    if (!ok) return false;
  }
  return send(ours);
}
