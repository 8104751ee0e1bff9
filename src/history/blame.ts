import type { StoreError } from '../errors.js';
import type { ObjectDb } from '../objects/db.js';
import { diffTrees } from '../tree/diff.js';
import { listTree } from '../tree/editor.js';
import { type CommitInfo, commitInfo } from './commit-info.js';

/** For one key: the last commit on the first-parent chain that changed it. */
export interface BlameLine {
  key: string;
  commit: CommitInfo;
}

/**
 * For every key at or below `segments` in `head`, the last commit that changed it. Walks the first-parent chain
 * once for all keys, diffing each commit against its parent under the prefix only (a subtree whose oid did not
 * change is skipped unread), and stops as soon as every key is accounted for.
 */
export async function blame(db: ObjectDb, head: string, segments: string[]): Promise<BlameLine[]> {
  const headTree = (await db.readCommit(head)).tree;
  const prefix = segments.join('/');
  let keys: string[];
  try {
    keys = (await listTree(db, headTree, segments, true)).map((e) => e.key);
  } catch (e) {
    if ((e as StoreError).code !== 'KEY_IS_VALUE') throw e;
    // The prefix names a value: blame that one key (a diff under a key's name compares that key alone).
    keys = [prefix];
  }
  const open = new Set(keys);
  const found = new Map<string, CommitInfo>();
  let oid: string | undefined = head;
  while (oid && open.size > 0) {
    const commit = await db.readCommit(oid);
    const parent = commit.parents[0];
    const before = parent ? (await db.readCommit(parent)).tree : null;
    let info: CommitInfo | null = null;
    for (const change of await diffTrees(db, before, commit.tree, prefix)) {
      if (!open.has(change.key)) continue;
      info ??= commitInfo(oid, commit);
      found.set(change.key, info);
      open.delete(change.key);
    }
    oid = parent;
  }
  return [...found].map(([key, commit]) => ({ key, commit })).sort((a, b) => (a.key < b.key ? -1 : 1));
}
