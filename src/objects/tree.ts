import { fromUtf8 } from './object.js';

/** Entry modes as git writes them in trees. */
export const MODE_BLOB = '100644';
export const MODE_TREE = '40000';

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

/** A serialised tree and where each entry's oid sits in it, so a later version that only changes oids is a patch. */
interface Layout {
  body: Buffer;
  oidAt: ReadonlyMap<string, number>;
}

// Keyed by the (immutable) parsed trees; a tree forgotten by the caches takes its layout with it.
const layouts = new WeakMap<Tree, Layout>();

function layOut(entries: Tree): Layout {
  const known = layouts.get(entries);
  if (known) return known;
  const sorted = [...entries]
    .map(([name, entry]) => ({ name, entry, key: isTreeMode(entry.mode) ? `${name}/` : name }))
    .sort((x, y) => compareNames(x.key, y.key));
  let size = 0;
  for (const { name, entry } of sorted) size += entry.mode.length + Buffer.byteLength(name) + 22;
  const body = Buffer.allocUnsafe(size);
  const oidAt = new Map<string, number>();
  let o = 0;
  for (const { name, entry } of sorted) {
    o += body.write(entry.mode, o, 'latin1');
    body[o++] = 0x20;
    o += body.write(name, o, 'utf8');
    body[o++] = 0;
    oidAt.set(name, o);
    o += body.write(entry.oid, o, 'hex');
  }
  const layout = { body, oidAt };
  layouts.set(entries, layout);
  return layout;
}

/** Serialises a tree in git's canonical entry order: by name bytes, a directory compared as if it ended in '/'. */
export function serializeTree(entries: Tree): Uint8Array {
  return layOut(entries).body;
}

/**
 * Serialises `next`, a version of `base` whose entries differ only in the oids of `changed` (same names, same modes):
 * a copy of base's body with 20 bytes patched per change, instead of sorting and writing thousands of entries —
 * the common case at Xenstore width, where a commit changes one VM's subtree under a directory of 10,000.
 */
export function serializeTreeChange(base: Tree, next: Tree, changed: Iterable<string>): Uint8Array {
  const from = layOut(base);
  // A plain memcpy: Buffer.from(uint8Array) copies element by element (1.6 ms for a 320 KB tree, profiled).
  const body = Buffer.allocUnsafe(from.body.length);
  from.body.copy(body);
  for (const name of changed) body.write(next.get(name)!.oid, from.oidAt.get(name)!, 'hex');
  layouts.set(next, { body, oidAt: from.oidAt });
  return body;
}
