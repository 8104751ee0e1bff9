import { StoreError } from '../errors.js';
import { ObjectBatch } from './batch.js';
import { parseCommit } from './commit.js';
import type { GitObject } from './object.js';
import type { ObjectSource } from './reachable.js';
import { MODE_GITLINK, parseTree } from './tree.js';

/**
 * Objects a peer sent (src/objects/outgoing.ts, the other side), as a batch to write — once they are known to be
 * whole: each commit and tree parses, and everything a commit or tree names (tree, parents, entries) is among them
 * or in this repository already, and so is `head`. A ref may then point at `head` without a missing object behind
 * it, as git's connectivity check after a fetch ensures. REMOTE when they are not.
 */
export async function incoming(db: ObjectSource, objects: readonly GitObject[], head: string): Promise<ObjectBatch> {
  const batch = new ObjectBatch();
  for (const o of objects) batch.add(o.type, o.body);
  const bad = (why: string) =>
    new StoreError('REMOTE', `the peer sent an incomplete or damaged history (${why}); nothing was stored`, { head });
  const present = async (oid: string) => batch.has(oid) || (await db.typeOf(oid)) !== null;
  const named: string[] = [head];
  for (const [oid, o] of batch.objects) {
    try {
      if (o.type === 'commit') {
        const c = parseCommit(o.body);
        named.push(c.tree, ...c.parents);
      } else if (o.type === 'tree') {
        for (const e of parseTree(o.body).values()) if (e.mode !== MODE_GITLINK) named.push(e.oid);
      }
    } catch (e) {
      throw bad(`${o.type} ${oid} is malformed: ${(e as Error).message}`);
    }
  }
  for (const oid of new Set(named)) if (!(await present(oid))) throw bad(`object ${oid} is missing`);
  const top = batch.get(head)?.type ?? (await db.typeOf(head));
  if (top !== 'commit') throw bad(`${head} is not a commit`);
  return batch;
}
