import type { ObjectDb } from '../objects/db.js';
import { isTreeMode, type Tree, type TreeEntry } from '../objects/tree.js';
import { candidateNames } from '../objects/tree-overlay.js';

/** A key whose value differs between two trees (null: absent on that side). */
export interface KeyChange {
  key: string;
  before: TreeEntry | null;
  after: TreeEntry | null;
}

const empty: Tree = new Map();

/**
 * The per-key differences between two trees, in key order. Subtrees with equal oids are skipped without being
 * read, so the cost follows the size of the change, not of the tree. A value replaced by a directory (or the
 * reverse) shows as the value's deletion plus each key of the directory.
 */
export async function diffTrees(
  db: Pick<ObjectDb, 'readTree'>,
  a: string | null,
  b: string | null,
  prefix = '',
): Promise<KeyChange[]> {
  const out: KeyChange[] = [];
  const read = (oid: string | null) => (oid === null ? Promise.resolve(empty) : db.readTree(oid));
  const walk = async (ta: Tree, tb: Tree, base: string): Promise<void> => {
    // Only the names whose entries differ are sorted and visited: at Xenstore width a directory has thousands of
    // entries and a commit changes one.
    const names: string[] = [];
    const candidates = candidateNames(ta, tb);
    if (candidates) {
      for (const name of candidates) {
        const ea = ta.get(name);
        const eb = tb.get(name);
        if (ea?.oid !== eb?.oid || ea?.mode !== eb?.mode) names.push(name);
      }
    } else {
      for (const [name, ea] of ta) {
        const eb = tb.get(name);
        if (!eb || eb.oid !== ea.oid || eb.mode !== ea.mode) names.push(name);
      }
      for (const name of tb.keys()) if (!ta.has(name)) names.push(name);
    }
    names.sort();
    for (const name of names) {
      const ea = ta.get(name) ?? null;
      const eb = tb.get(name) ?? null;
      const key = base ? `${base}/${name}` : name;
      const aDir = ea !== null && isTreeMode(ea.mode);
      const bDir = eb !== null && isTreeMode(eb.mode);
      const aValue = ea !== null && !aDir ? ea : null;
      const bValue = eb !== null && !bDir ? eb : null;
      // Order: a value's removal before the keys of the directory replacing it, and the reverse.
      if (aValue) out.push({ key, before: aValue, after: bValue });
      if (aDir || bDir) await walk(aDir ? await read(ea.oid) : empty, bDir ? await read(eb!.oid) : empty, key);
      if (bValue && !aValue) out.push({ key, before: null, after: bValue });
    }
  };
  if (prefix === '') {
    await walk(await read(a), await read(b), '');
    return out;
  }
  // A prefix may name a directory or a single value: compare just the entry it names, as the only entry of its
  // parent directory, so a value's change is reported like any other (and a value turned directory as well).
  const segments = prefix.split('/');
  const name = segments.pop()!;
  const only = async (oid: string | null): Promise<Tree> => {
    let tree = await read(oid);
    for (const segment of segments) {
      const entry = tree.get(segment);
      if (!entry || !isTreeMode(entry.mode)) return empty;
      tree = await read(entry.oid);
    }
    const entry = tree.get(name);
    return entry ? new Map([[name, entry]]) : empty;
  };
  await walk(await only(a), await only(b), segments.join('/'));
  return out;
}
