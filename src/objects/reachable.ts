import type { StoreError } from '../errors.js';
import type { Commit } from './commit.js';
import type { GitObject, ObjectType } from './object.js';
import { isTreeMode, MODE_GITLINK, type Tree } from './tree.js';

/** The reads a walk needs (the object database's, through its caches and what it holds in memory). */
export interface ObjectSource {
  typeOf(oid: string): Promise<ObjectType | null>;
  read(oid: string): Promise<GitObject>;
  readCommit(oid: string): Promise<Commit>;
  readTree(oid: string): Promise<Tree>;
}

const TAG_OBJECT = /^object ([0-9a-f]{40})$/m;

/**
 * Every object reachable from `roots` (refs: commits with their whole history, trees, blobs, tags), plus what
 * `shallow` roots hold without their history — objects of writes in flight and of open transactions, whose parent
 * commits are either on a branch already or about to be replaced (a write that lost a race is applied again).
 * Objects that are missing are skipped: nothing can be reached through them. With `onMissing` (a connectivity
 * check: `store fsck`), each is reported, blobs included, which then costs one lookup per blob.
 */
export async function reachable(
  db: ObjectSource,
  roots: Iterable<string>,
  shallow: Iterable<string> = [],
  onMissing?: (oid: string, what: 'commit' | 'tree' | 'blob') => void,
): Promise<Set<string>> {
  const seen = new Set<string>();
  const stack: { oid: string; history: boolean }[] = [];
  for (const oid of roots) stack.push({ oid, history: true });
  for (const oid of shallow) stack.push({ oid, history: false });
  // Commits reached shallowly may be reached again through a ref, with their history.
  const shallowCommits = new Set<string>();
  while (stack.length > 0) {
    const { oid, history } = stack.pop()!;
    if (seen.has(oid) && (history ? !shallowCommits.has(oid) : true)) continue;
    const type = await db.typeOf(oid).catch(missing);
    if (type === null) {
      onMissing?.(oid, 'commit');
      continue;
    }
    seen.add(oid);
    if (type === 'commit') {
      const c = await db.readCommit(oid);
      if (!seen.has(c.tree)) await walkTree(db, c.tree, seen, onMissing);
      if (history) {
        shallowCommits.delete(oid);
        for (const p of c.parents) stack.push({ oid: p, history: true });
      } else shallowCommits.add(oid);
    } else if (type === 'tree') {
      await walkTree(db, oid, seen, onMissing);
    } else if (type === 'tag') {
      const m = TAG_OBJECT.exec(new TextDecoder().decode((await db.read(oid)).body));
      if (m) stack.push({ oid: m[1]!, history });
    }
  }
  return seen;
}

/** A missing or unreadable object reaches nothing; other failures (the disk) stop the walk. */
const missing = (e: StoreError): null => {
  if (e.code === 'CORRUPT' || e.code === 'NOT_FOUND') return null;
  throw e;
};

/** Marks a tree and everything below it; subtrees already seen are not read again. */
async function walkTree(
  db: ObjectSource,
  root: string,
  seen: Set<string>,
  onMissing?: (oid: string, what: 'tree' | 'blob') => void,
): Promise<void> {
  const trees = [root];
  seen.add(root);
  while (trees.length > 0) {
    const oid = trees.pop()!;
    const tree = await db.readTree(oid).catch(missing);
    if (!tree) {
      onMissing?.(oid, 'tree');
      continue;
    }
    for (const entry of tree.values()) {
      if (entry.mode === MODE_GITLINK || seen.has(entry.oid)) continue;
      seen.add(entry.oid);
      if (isTreeMode(entry.mode)) trees.push(entry.oid);
      else if (onMissing && (await db.typeOf(entry.oid).catch(missing)) === null) onMissing(entry.oid, 'blob');
    }
  }
}
