import { fromUtf8, utf8 } from './object.js';

/** Entry modes as git writes them in trees. */
export const MODE_BLOB = '100644';
export const MODE_EXEC = '100755';
export const MODE_LINK = '120000';
export const MODE_TREE = '40000';
export const MODE_GITLINK = '160000';

/** One tree entry. */
export interface TreeEntry {
  mode: string;
  oid: string;
}

/** A parsed tree: entry name → entry. Treated as immutable once built (it is shared through the cache). */
export type Tree = ReadonlyMap<string, TreeEntry>;

export const isTreeMode = (mode: string) => mode === MODE_TREE;

/** Parses a tree object body. */
export function parseTree(body: Uint8Array): Map<string, TreeEntry> {
  const entries = new Map<string, TreeEntry>();
  let i = 0;
  while (i < body.length) {
    const space = body.indexOf(0x20, i);
    const nul = body.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > body.length) throw new Error('malformed tree object');
    const mode = fromUtf8.decode(body.subarray(i, space));
    const name = fromUtf8.decode(body.subarray(space + 1, nul));
    const oid = Buffer.from(body.buffer, body.byteOffset + nul + 1, 20).toString('hex');
    // Git historically wrote directory modes as 040000; normalise so comparisons by mode are exact.
    entries.set(name, { mode: mode === '040000' ? MODE_TREE : mode, oid });
    i = nul + 21;
  }
  return entries;
}

// Git sorts tree entries by name bytes, comparing a directory as if its name ended in '/'.
function sortKey(name: string, mode: string): string {
  return isTreeMode(mode) ? `${name}/` : name;
}

const compareBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Serialises a tree in git's canonical entry order. */
export function serializeTree(entries: Tree): Uint8Array {
  const sorted = [...entries].sort(([an, ae], [bn, be]) => compareBytes(sortKey(an, ae.mode), sortKey(bn, be.mode)));
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const [name, entry] of sorted) {
    const head = utf8.encode(`${entry.mode} ${name}\0`);
    const oid = Buffer.from(entry.oid, 'hex');
    parts.push(head, oid);
    size += head.length + 20;
  }
  return Buffer.concat(parts, size);
}
