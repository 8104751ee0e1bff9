import { asBuffer } from './object.js';

/**
 * Which object each version of a directory is stored as a delta of. A plain chain (each version against the one
 * before) is smallest but makes reading the newest version replay every delta; one base for all makes each delta
 * carry every change since. Between the two, as Subversion's skip-deltas do: versions run in blocks of BLOCK,
 * each against the previous one, and a block's first version is a delta of an earlier block start chosen like a
 * binary counter (block q against block q with its lowest set bit cleared). A read then replays at most
 * BLOCK - 1 + log2(blocks) deltas — 28 for 100,000 versions, within git's default depth of 50 — while almost every
 * delta spans one change.
 */

const BLOCK = 16;

/** Records in `bases` the delta base of every version in `chain` (oldest first) but the first, which stays whole. */
export function planChain(chain: readonly string[], bases: Map<string, string>): void {
  for (let n = 1; n < chain.length; n++) {
    if (n % BLOCK !== 0) bases.set(chain[n]!, chain[n - 1]!);
    else {
      const q = n / BLOCK;
      bases.set(chain[n]!, chain[(q & (q - 1)) * BLOCK]!);
    }
  }
}

/**
 * Groups versions into chains by a key (the directory's identity as far as it is known), keeping their order, and
 * plans each chain.
 */
export function planByKey(versions: Iterable<{ oid: string; key: string }>): Map<string, string> {
  const chains = new Map<string, string[]>();
  for (const { oid, key } of versions) {
    const chain = chains.get(key);
    if (chain) chain.push(oid);
    else chains.set(key, [oid]);
  }
  const bases = new Map<string, string>();
  for (const chain of chains.values()) planChain(chain, bases);
  return bases;
}

/**
 * A guess at a tree's directory from its body alone, for packs whose history is not at hand: the names of its first
 * two entries. Versions of a directory keep those while a few entries change; two different wide directories rarely
 * share them, and when they do the delta comes out large and the object is stored whole.
 */
export function treeKey(body: Uint8Array): string {
  const b = asBuffer(body);
  const first = b.indexOf(0);
  if (first < 0) return '';
  const second = b.indexOf(0, first + 21);
  // Each entry is "mode name\0" and a 20-byte oid; the oids are left out, they are what changes.
  return `${b.toString('latin1', 0, first)}/${second < 0 ? '' : b.toString('latin1', first + 21, second)}`;
}
