import type { ObjectDb } from '../objects/db.js';
import { lookup } from '../tree/editor.js';
import { type CommitInfo, commitInfo } from './commit-info.js';

export interface LogOptions {
  /** Only commits that changed this key or anything below this prefix. */
  path?: string;
  /** At most this many commits (default 100). */
  limit?: number;
  /** Continue from a page's `next`. */
  cursor?: string;
}

export interface LogPage {
  commits: CommitInfo[];
  /** Pass as `cursor` for the next page; null when history ends. */
  next: string | null;
}

/**
 * Walks the first-parent chain from `start`: on a store branch that is exactly the sequence of operations applied to
 * it. With a path, a commit counts when the entry at that path (value or subtree oid) differs from its first
 * parent's, which costs a lookup per commit, not a diff.
 */
export async function readLog(db: ObjectDb, start: string | null, options: LogOptions): Promise<LogPage> {
  const limit = Math.max(1, Math.min(options.limit ?? 100, 10_000));
  const segments = options.path ? options.path.split('/') : null;
  const commits: CommitInfo[] = [];
  let oid = start;
  while (oid && commits.length < limit) {
    const commit = await db.readCommit(oid);
    const parent = commit.parents[0] ?? null;
    let touched = true;
    if (segments) {
      const here = await lookup(db, commit.tree, segments);
      const before = parent ? await lookup(db, (await db.readCommit(parent)).tree, segments) : null;
      touched = here?.oid !== before?.oid || here?.mode !== before?.mode;
    }
    if (touched) commits.push(commitInfo(oid, commit));
    oid = parent;
  }
  return { commits, next: oid };
}
