import type { Commit } from '../objects/commit.js';
import { DateQueue } from '../objects/date-queue.js';

type ReadCommit = (oid: string) => Promise<Commit>;

const FROM_A = 1;
const FROM_B = 2;
const STALE = 4;

/**
 * The best common ancestors of two commits, as git finds them: walk both histories newest-first, painting each
 * commit with the side(s) that reach it; a commit reached from both is a candidate and paints its ancestors stale.
 * Candidates that are ancestors of other candidates are dropped, so a criss-cross history yields several bases.
 */
export async function mergeBases(read: ReadCommit, a: string, b: string): Promise<string[]> {
  if (a === b) return [a];
  const candidates = await paint(read, a, [b]);
  if (candidates.length <= 1) return candidates;
  // Drop candidates that another candidate descends from.
  const kept: string[] = [];
  for (const c of candidates) {
    const others = candidates.filter((o) => o !== c);
    let redundant = false;
    for (const o of others) if (await isAncestor(read, c, o)) redundant = true;
    if (!redundant) kept.push(c);
  }
  return kept;
}

/** Whether `ancestor` is reachable from `descendant` (a commit is its own ancestor). */
export async function isAncestor(read: ReadCommit, ancestor: string, descendant: string): Promise<boolean> {
  if (ancestor === descendant) return true;
  return (await paint(read, ancestor, [descendant])).includes(ancestor);
}

async function paint(read: ReadCommit, a: string, bs: string[]): Promise<string[]> {
  const flags = new Map<string, number>();
  const queue = new DateQueue(read);
  const results: string[] = [];
  const push = async (oid: string, flag: number) => {
    const had = flags.get(oid) ?? 0;
    if ((had & flag) === flag) return;
    flags.set(oid, had | flag);
    await queue.push(oid);
  };
  await push(a, FROM_A);
  for (const b of bs) await push(b, FROM_B);
  const stillInteresting = () => queue.items.some((o) => !((flags.get(o) ?? 0) & STALE));
  while (queue.items.length > 0 && stillInteresting()) {
    const oid = queue.pop()!;
    let f = (flags.get(oid) ?? 0) & (FROM_A | FROM_B | STALE);
    if (f === (FROM_A | FROM_B)) {
      if (!results.includes(oid)) results.push(oid);
      f |= STALE; // its ancestors are common too, but never better bases
    }
    for (const parent of (await read(oid)).parents) await push(parent, f);
  }
  // A candidate later reached through another candidate is that one's ancestor: not a best base.
  return results.filter((r) => !((flags.get(r) ?? 0) & STALE));
}
