import { Lru } from '../objects/lru.js';
import { isTreeMode } from '../objects/tree.js';
import type { ObjectReader } from '../store/ports.js';
import { PERMS, VALUE } from './nodes.js';
import { parseStoredPerms } from './permissions.js';

/**
 * Nodes per owning domain, for the entries quota (oxenstored: 1,000 per domain). Counted over the committed tree,
 * remembering each directory's counts by its oid and the owner it inherits: trees are content-addressed, so after a
 * change only the directories along the changed paths are counted again.
 */
export class EntryCounter {
  private readonly memo = new Lru<string, Map<number, number>>(100_000, (m) => m.size + 1);

  constructor(private readonly db: ObjectReader) {}

  /** Nodes in `tree` owned by `domid` (the root is dom0's). */
  async count(tree: string | null, domid: number): Promise<number> {
    if (!tree) return 0;
    return (await this.directory(tree, 0)).get(domid) ?? 0;
  }

  /** The counts of a directory node (itself included) whose parent's owner is `inherited`. */
  private async directory(oid: string, inherited: number): Promise<Map<number, number>> {
    const key = `${oid}:${inherited}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    const tree = await this.db.readTree(oid);
    const perms = tree.get(PERMS);
    const owner = perms
      ? parseStoredPerms(new TextDecoder().decode(await this.db.readBlob(perms.oid)))[0]!.domid
      : inherited;
    const counts = new Map<number, number>([[owner, 1]]);
    const add = (d: number, n: number) => counts.set(d, (counts.get(d) ?? 0) + n);
    for (const [name, entry] of tree) {
      if (name === PERMS || name === VALUE || name.startsWith('.')) continue;
      if (!isTreeMode(entry.mode)) add(owner, 1);
      else for (const [d, n] of await this.directory(entry.oid, owner)) add(d, n);
    }
    this.memo.set(key, counts);
    return counts;
  }
}

/** Limits per connection and per node, oxenstored's defaults. */
export interface Quotas {
  /** Largest value (E2BIG past it). */
  maxValueBytes: number;
  /** Watches per connection (E2BIG past it). */
  maxWatches: number;
  /** Open transactions per connection (ENOSPC past it). */
  maxTransactions: number;
  /** Permission entries a non-dom0 domain may give a node (ENOSPC past it). */
  maxPermEntries: number;
  /** Nodes a domain other than dom0 may own (ENOSPC past it). */
  maxEntriesPerDomain: number;
}

export const DEFAULT_QUOTAS: Quotas = {
  maxValueBytes: 2048,
  maxWatches: 100,
  maxTransactions: 10,
  maxPermEntries: 5,
  maxEntriesPerDomain: 1000,
};
