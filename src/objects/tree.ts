import { fromUtf8 } from './object.js';

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

// Below U+D800, JavaScript's string order (UTF-16 code units) is UTF-8 byte order, which is git's; names with
// other characters are compared as bytes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the class is every code unit below U+D800, NUL included
const simple = /^[\u0000-\ud7ff]*$/;

function compareNames(a: string, b: string): number {
  if (simple.test(a) && simple.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Serialises a tree in git's canonical entry order: by name bytes, a directory compared as if it ended in '/'. */
export function serializeTree(entries: Tree): Uint8Array {
  const sorted = [...entries]
    .map(([name, entry]) => ({ name, entry, key: isTreeMode(entry.mode) ? `${name}/` : name }))
    .sort((x, y) => compareNames(x.key, y.key));
  let size = 0;
  for (const { name, entry } of sorted) size += entry.mode.length + Buffer.byteLength(name) + 22;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (const { name, entry } of sorted) {
    o += out.write(entry.mode, o, 'latin1');
    out[o++] = 0x20;
    o += out.write(name, o, 'utf8');
    out[o++] = 0;
    o += out.write(entry.oid, o, 'hex');
  }
  return out;
}
