import type { Tree, TreeEntry } from './tree.js';

/** Below this many entries a directory is copied whole per version: cheaper than the overlay's indirection. */
const OVERLAY_MIN_ENTRIES = 256;

/**
 * A version of a wide directory held as its changes over a flat Map shared with its neighbours. At Xenstore width a
 * directory has 10,000 entries and a commit changes one; copying the Map per version would dominate the commit path
 * (and the caches, which keep many versions). The changes are folded into a fresh flat Map once they outnumber
 * about √(2n): that balances the copy of the changes made per version against the occasional full copy.
 * Editable until handed to the caches (the editor stops touching a version once it is written).
 */
export class TreeOverlay implements ReadonlyMap<string, TreeEntry> {
  private count: number;

  private constructor(
    readonly flat: ReadonlyMap<string, TreeEntry>,
    /** Entries that differ from `flat`; null: deleted. */
    readonly changes: Map<string, TreeEntry | null>,
    count: number,
  ) {
    this.count = count;
  }

  /** An editable copy of `tree`: an overlay when it is wide, else a plain Map. */
  static editable(tree: Tree): Map<string, TreeEntry> | TreeOverlay {
    if (tree instanceof TreeOverlay) {
      if (tree.changes.size <= Math.sqrt(2 * tree.flat.size) + 32) {
        return new TreeOverlay(tree.flat, new Map(tree.changes), tree.count);
      }
      return new TreeOverlay(new Map(tree), new Map(), tree.count);
    }
    if (tree.size < OVERLAY_MIN_ENTRIES) return new Map(tree);
    return new TreeOverlay(tree, new Map(), tree.size);
  }

  get size(): number {
    return this.count;
  }

  /** What the caches should count for this version: its own entries, not the shared base's. */
  get weight(): number {
    return this.changes.size + 1;
  }

  get(name: string): TreeEntry | undefined {
    const changed = this.changes.get(name);
    if (changed !== undefined) return changed ?? undefined;
    return this.flat.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, entry: TreeEntry): this {
    if (!this.has(name)) this.count++;
    this.changes.set(name, entry);
    return this;
  }

  delete(name: string): boolean {
    if (!this.has(name)) return false;
    this.count--;
    if (this.flat.has(name)) this.changes.set(name, null);
    else this.changes.delete(name);
    return true;
  }

  *entries(): MapIterator<[string, TreeEntry]> {
    for (const [name, entry] of this.flat) if (!this.changes.has(name)) yield [name, entry];
    for (const [name, entry] of this.changes) if (entry) yield [name, entry];
  }

  *keys(): MapIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): MapIterator<TreeEntry> {
    for (const [, entry] of this.entries()) yield entry;
  }

  [Symbol.iterator](): MapIterator<[string, TreeEntry]> {
    return this.entries();
  }

  forEach(fn: (entry: TreeEntry, name: string, map: ReadonlyMap<string, TreeEntry>) => void): void {
    for (const [name, entry] of this.entries()) fn(entry, name, this);
  }
}

/**
 * Names whose entries may differ between two versions of a directory that share a base: their changes (a superset:
 * a name changed and changed back is included). Null when they share none and every name must be compared.
 */
export function candidateNames(a: Tree, b: Tree): Iterable<string> | null {
  if (a instanceof TreeOverlay && b instanceof TreeOverlay && a.flat === b.flat) {
    return new Set([...a.changes.keys(), ...b.changes.keys()]);
  }
  if (a instanceof TreeOverlay && a.flat === b) return a.changes.keys();
  if (b instanceof TreeOverlay && b.flat === a) return b.changes.keys();
  return null;
}

/** The weight a cache should give a parsed tree. */
export const treeWeight = (t: Tree): number => (t instanceof TreeOverlay ? t.weight : t.size + 1);
