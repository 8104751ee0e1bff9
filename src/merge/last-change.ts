import type { ObjectDb } from '../objects/db.js';
import { diffTrees } from '../tree/diff.js';

/** A commit as the walk sees it. Virtual commits (the merged bases of a criss-cross) have the same shape. */
export interface WalkCommit {
  tree: string | null;
  parents: string[];
  /** Committer time, in seconds. */
  time: number;
}

/**
 * How many commits one walk follows at most. Past it, a key still being traced counts as changed at the next commit
 * the walk reached (where it stopped): no older than the truth (clocks permitting), and the same on every replica,
 * which walks the same commits in the same order (newest first, ties by id).
 */
export const LAST_CHANGE_WALK_LIMIT = 10_000;

/**
 * When a side last changed each of some keys, for last-writer-wins: the committer time of the commit that introduced
 * the side's current value (absent is a value too: a deletion is a change). Found as `git blame` finds a line's
 * commit: from the head, follow the first parent whose value of the key is the same (TREESAME); the first commit with
 * no such parent introduced it. A merge that took one side's value passes through to that side's commit, so the time
 * is the original write's, not the merge's.
 *
 * One walk serves all keys: each commit is diffed once against each parent it is left through (equal subtrees are
 * skipped unread), so the cost follows the history's size and its changes, not keys × commits. Diffs are cached for
 * the whole merge (both sides, and the merges of a criss-cross's bases, share the commits below them).
 */
export class LastChanges {
  private readonly diffs = new Map<string, Set<string>>();

  constructor(
    private readonly db: ObjectDb,
    private readonly read: (id: string) => Promise<WalkCommit>,
    private readonly limit = LAST_CHANGE_WALK_LIMIT,
  ) {}

  /** The time each key's value at `head` was introduced. */
  async times(head: string, keys: Iterable<string>): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    const pending = new Map<string, Set<string>>([[head, new Set(keys)]]);
    const times = new Map<string, number>();
    // Newest first (ties by id), so a commit is usually reached from all its children before it is visited; one
    // reached again later is simply visited again for the keys that arrived since.
    const queue: string[] = [];
    const queued = new Set<string>();
    const enqueue = async (id: string) => {
      if (!times.has(id)) times.set(id, (await this.read(id)).time);
      if (queued.has(id)) return;
      queued.add(id);
      const t = times.get(id)!;
      const before = (o: string) => times.get(o)! < t || (times.get(o) === t && o < id);
      let lo = 0;
      let hi = queue.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (before(queue[mid]!)) lo = mid + 1;
        else hi = mid;
      }
      queue.splice(lo, 0, id);
    };
    await enqueue(head);
    for (let visits = 0; queue.length > 0; visits++) {
      const id = queue.pop()!;
      queued.delete(id);
      let open = pending.get(id)!;
      pending.delete(id);
      const commit = await this.read(id);
      if (visits >= this.limit) {
        for (const key of open) found.set(key, commit.time);
        continue;
      }
      for (const parent of commit.parents) {
        if (open.size === 0) break;
        const changed = await this.changed((await this.read(parent)).tree, commit.tree);
        // The keys whose value this parent has too are traced on through it; the others try the next parent. A
        // commit changes a few keys: look at the smaller of the two sets, and hand the open set itself on.
        const differ = new Set<string>();
        if (changed.size < open.size) {
          for (const key of changed) if (open.has(key)) differ.add(key);
        } else {
          for (const key of open) if (changed.has(key)) differ.add(key);
        }
        if (differ.size === open.size) continue;
        for (const key of differ) open.delete(key);
        const there = pending.get(parent);
        if (there) for (const key of open) there.add(key);
        else pending.set(parent, open);
        await enqueue(parent);
        open = differ;
      }
      for (const key of open) found.set(key, commit.time);
    }
    return found;
  }

  /** The keys whose values differ between two trees (cached). */
  private async changed(a: string | null, b: string | null): Promise<Set<string>> {
    const id = `${a}:${b}`;
    let keys = this.diffs.get(id);
    if (!keys) {
      keys = new Set((await diffTrees(this.db, a, b)).map((c) => c.key));
      this.diffs.set(id, keys);
    }
    return keys;
  }
}
