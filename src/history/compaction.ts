import type { ObjectBatch } from '../objects/batch.js';
import { type Commit, serializeCommit } from '../objects/commit.js';
import type { ObjectDb } from '../objects/db.js';
import { type Dated, type Selection, selectRetained, type Tier } from './retention.js';

/**
 * Compaction (issue 7): a branch's first-parent history rewritten to what a retention policy keeps. Kept commits
 * keep their trees, authors, committers and times; each snapshot absorbs the dropped commits before it, and says so
 * in trailers (`Compacted-Commits`, `Compacted-Since`) that later compactions add up and that time lookups read to
 * tell an exact state from a gap. A rewritten commit keeps only its first parent — a transaction merge's second parent
 * leads back into the whole old history, and keeping it would prune nothing — except a kept merge's parents that
 * another branch still has (`mergedFrom`): later merges of that branch find their merge base through them.
 */

/** A commit of the old history with what compaction needs of it. */
interface Old extends Dated {
  commit: Commit;
}

/** What became of one old commit: renamed (`kept`, same tree) or absorbed into a snapshot (`dropped`). */
export interface Rewrite {
  to: string;
  kind: 'kept' | 'dropped';
  /** The old commit's time (seconds). */
  time: number;
}

/** A rewritten history, built in memory: the new head and what became of each old commit. */
export interface RewrittenHistory {
  head: string;
  tree: string;
  rewrites: Map<string, Rewrite>;
  kept: number;
  dropped: number;
  selection: Selection;
}

const SINCE = /^Compacted-Since: (\d+)$/m;
const COUNT = /^Compacted-Commits: (\d+)$/m;

/** The time of the oldest commit a snapshot absorbed (null for a commit that absorbed none). */
export const compactedSince = (c: Commit): number | null => {
  const m = SINCE.exec(c.message);
  return m ? Number(m[1]) : null;
};

/** How many original commits a commit stands for (1 unless it is a snapshot). */
const standsFor = (c: Commit): number => {
  const m = COUNT.exec(c.message);
  return m ? Number(m[1]) : 1;
};

/** The first-parent history from `head` (newest first) down to, not including, `stop`; null if `stop` is not met. */
export async function firstParentHistory(
  db: ObjectDb,
  head: string,
  stop: string | null = null,
  progress?: (read: number) => void,
): Promise<Old[] | null> {
  const out: Old[] = [];
  for (let id: string | undefined = head; id !== undefined; ) {
    if (id === stop) return out;
    const commit = await db.readCommit(id);
    out.push({ id, time: commit.committer.timestamp, commit });
    if (progress && out.length % 10_000 === 0) progress(out.length);
    id = commit.parents[0];
  }
  return stop === null ? out : null;
}

/**
 * Rewrites the history `history` (newest first, as `firstParentHistory` gives it) to what `tiers` keep at `now`
 * (seconds). New commits go into `batch`; nothing is written when nothing would be dropped or re-parented (the
 * result's head is then the old one).
 */
export function rewriteHistory(
  history: Old[],
  tiers: readonly Tier[],
  now: number,
  batch: ObjectBatch,
  parsed: Map<string, Commit>,
  mergedFrom: ReadonlySet<string> = new Set(),
): RewrittenHistory {
  const selection = selectRetained(history, tiers, now);
  // The head is always kept, even when the whole history is older than the last tier: it is the branch's state.
  if (selection.dropped[0]?.id === history[0]?.id) selection.snapshots.unshift(selection.dropped.shift()!);
  const keep = new Set([...selection.recent, ...selection.snapshots].map((c) => c.id));
  const rewrites = new Map<string, Rewrite>();
  let parent: string | null = null;
  let absorbed: Old[] = [];
  let head = history[0]!;
  let headId = head.id;
  // Oldest first: each kept commit is re-made on top of the one before; dropped ones wait for the next kept one.
  for (let i = history.length - 1; i >= 0; i--) {
    const old = history[i]!;
    if (!keep.has(old.id)) {
      absorbed.push(old);
      continue;
    }
    const c = old.commit;
    const others = absorbed.length === 0 ? c.parents.slice(1).filter((p) => mergedFrom.has(p)) : [];
    const parents = [...(parent ? [parent] : []), ...others];
    const unchanged = absorbed.length === 0 && parents.join() === c.parents.join();
    let id = old.id;
    if (!unchanged) {
      const made: Commit = {
        tree: c.tree,
        parents,
        author: c.author,
        committer: c.committer,
        message: absorbed.length === 0 ? c.message : snapshotMessage(old, absorbed),
      };
      id = batch.add('commit', serializeCommit(made));
      parsed.set(id, made);
      rewrites.set(old.id, { to: id, kind: 'kept', time: old.time });
    }
    for (const d of absorbed) rewrites.set(d.id, { to: id, kind: 'dropped', time: d.time });
    absorbed = [];
    parent = id;
    head = old;
    headId = id;
  }
  return {
    head: headId,
    tree: head.commit.tree,
    rewrites,
    kept: keep.size,
    dropped: selection.dropped.length,
    selection,
  };
}

/** A snapshot's message: what it stands for, with trailers a later compaction or a time lookup reads back. */
function snapshotMessage(last: Old, absorbed: Old[]): string {
  const all = [...absorbed, last];
  const count = all.reduce((n, o) => n + standsFor(o.commit), 0);
  const since = Math.min(...all.map((o) => compactedSince(o.commit) ?? o.time));
  const subject = last.commit.message.split('\n', 1)[0];
  return (
    `snapshot at ${new Date(last.time * 1000).toISOString()}: ${count} commits compacted into one\n\n` +
    `The state after "${subject}" (${last.id}); the commits since the snapshot before were dropped by the\n` +
    `retention policy.\n\n` +
    `Compacted-Commits: ${count}\nCompacted-Since: ${since}\nCompacted-Last: ${last.id}\n`
  );
}

/**
 * The merged-in parents (second and later) of the commits in `history` that another branch still has: kept by the
 * rewrite. `otherHeads` are the other branches' and tags' heads.
 */
export async function parentsOnOtherBranches(db: ObjectDb, history: Old[], otherHeads: string[]): Promise<Set<string>> {
  const wanted = new Map<string, number>();
  for (const { commit } of history) for (const p of commit.parents.slice(1)) wanted.set(p, 0);
  if (wanted.size === 0 || otherHeads.length === 0) return new Set();
  for (const p of wanted.keys()) wanted.set(p, (await db.readCommit(p).catch(() => null))?.committer.timestamp ?? 0);
  // One walk of the other branches, back to the oldest wanted parent's time (a minute of clock skew allowed).
  const floor = Math.min(...wanted.values()) - 60;
  const found = new Set<string>();
  for await (const id of ancestorsSince(db, otherHeads, floor)) if (wanted.has(id)) found.add(id);
  return found;
}

/**
 * Every commit reachable from `heads` (all parents), heads first, not going below commits older than `since`
 * (seconds). A commit is yielded before it is read, so a caller that stops early reads no further.
 */
export async function* ancestorsSince(db: ObjectDb, heads: string[], since: number): AsyncGenerator<string> {
  const seen = new Set<string>();
  const stack = [...heads];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    yield id;
    const c = await db.readCommit(id).catch(() => null);
    if (c && c.committer.timestamp >= since) stack.push(...c.parents);
  }
}

/**
 * Puts commits made on the old history while it was being rewritten (`newer`, newest first, as
 * `firstParentHistory` gives them) on top of the rewritten head, each with its tree, message and times.
 */
export function replay(
  newer: Old[],
  onto: string,
  batch: ObjectBatch,
  parsed: Map<string, Commit>,
  rewrites: Map<string, Rewrite>,
  mergedFrom: ReadonlySet<string> = new Set(),
): string {
  let parent = onto;
  for (let i = newer.length - 1; i >= 0; i--) {
    const { id: old, commit: c, time } = newer[i]!;
    const made: Commit = { ...c, parents: [parent, ...c.parents.slice(1).filter((p) => mergedFrom.has(p))] };
    parent = batch.add('commit', serializeCommit(made));
    parsed.set(parent, made);
    rewrites.set(old, { to: parent, kind: 'kept', time });
  }
  return parent;
}
