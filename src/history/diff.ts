import type { ObjectDb } from '../objects/db.js';
import { diffTrees } from '../tree/diff.js';

/** One key's change between two revisions. */
export interface Change {
  key: string;
  kind: 'added' | 'modified' | 'deleted';
  /** Blob oid before (null when added) and after (null when deleted). */
  before: string | null;
  after: string | null;
}

/** Per-key changes between two commits (null: the empty history of an unborn branch). */
export async function diffRevisions(
  db: ObjectDb,
  from: string | null,
  to: string | null,
  prefix = '',
): Promise<Change[]> {
  const tree = async (c: string | null) => (c ? (await db.readCommit(c)).tree : null);
  const changes = await diffTrees(db, await tree(from), await tree(to), prefix);
  return changes.map((c) => ({
    key: c.key,
    kind: c.before === null ? 'added' : c.after === null ? 'deleted' : 'modified',
    before: c.before?.oid ?? null,
    after: c.after?.oid ?? null,
  }));
}
