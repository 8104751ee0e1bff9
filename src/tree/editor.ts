import { keyIsDirectory, keyIsValue, notFound, StoreError } from '../errors.js';
import type { ObjectBatch } from '../objects/batch.js';
import type { ObjectDb } from '../objects/db.js';
import { EMPTY_TREE } from '../objects/object.js';
import {
  isTreeMode,
  MODE_BLOB,
  MODE_TREE,
  serializeTree,
  serializeTreeChange,
  type Tree,
  type TreeEntry,
} from '../objects/tree.js';
import { TreeOverlay } from '../objects/tree-overlay.js';

/** A directory being edited: copy-on-write over a parsed tree, with the subdirectories opened so far. */
interface Dir {
  base: Tree;
  entries: Map<string, TreeEntry> | TreeOverlay | null; // null until the first change: share `base` untouched
  /** The oid `base` was read from or written as: the previous version a delta may be made against. */
  baseOid: string;
  children: Map<string, Dir>;
  dirty: boolean;
  /** Names whose oid changed (same name, same mode): enough to patch base's serialised body. */
  retargeted: Set<string>;
  /** An entry was added, removed or changed mode: the tree must be serialised afresh. */
  reshaped: boolean;
}

const openDir = (base: Tree, baseOid: string): Dir => ({
  base,
  baseOid,
  entries: null,
  children: new Map(),
  dirty: false,
  retargeted: new Set(),
  reshaped: false,
});

/** Records what kind of change setting `name` to `mode` is, before the entry is written. */
function note(d: Dir, name: string, mode: string | null): void {
  const before = current(d).get(name);
  if (before && mode !== null && before.mode === mode && d.base.get(name)?.mode === mode) d.retargeted.add(name);
  else d.reshaped = true;
}
const emptyTree: Tree = new Map();
const current = (d: Dir): Tree => d.entries ?? d.base;
const writable = (d: Dir): Map<string, TreeEntry> | TreeOverlay => {
  d.entries ??= TreeOverlay.editable(d.base);
  return d.entries;
};

/** Looks up a key's entry in a tree (null when absent, also when a value stands where a directory would). */
export async function lookup(
  db: Pick<ObjectDb, 'readTree'>,
  root: string | null,
  segments: string[],
): Promise<TreeEntry | null> {
  if (root === null) return null;
  let entry: TreeEntry = { mode: MODE_TREE, oid: root };
  for (const segment of segments) {
    if (!isTreeMode(entry.mode)) return null;
    const next = (await db.readTree(entry.oid)).get(segment);
    if (!next) return null;
    entry = next;
  }
  return entry;
}

/** One entry of a listing. */
export interface ListEntry {
  key: string;
  type: 'value' | 'dir';
  oid: string;
}

/**
 * The entries below `segments` in a tree, in key order: one level (directories as `dir`), or every value below
 * with `recursive`. Empty when the prefix is absent; KEY_IS_VALUE when it is a value.
 */
export async function listTree(
  db: Pick<ObjectDb, 'readTree'>,
  root: string | null,
  segments: string[],
  recursive: boolean,
): Promise<ListEntry[]> {
  const entry = await lookup(db, root, segments);
  const base = segments.join('/');
  // git has no empty directories: a directory exists while something is stored below it. So a missing one is
  // NOT_FOUND, as reading a missing key is (a typo must not look like an empty directory); only the root always
  // exists, empty on a branch with nothing in it.
  if (!entry) {
    if (segments.length === 0) return [];
    throw notFound('directory', base, 'nothing is stored at or below it');
  }
  if (!isTreeMode(entry.mode)) {
    throw new StoreError('KEY_IS_VALUE', `${base} is a value, not a directory; get it instead`, {
      key: base,
      value: base,
    });
  }
  const entries: ListEntry[] = [];
  const walk = async (oid: string, at: string): Promise<void> => {
    for (const [name, e] of [...(await db.readTree(oid))].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const key = at ? `${at}/${name}` : name;
      if (!isTreeMode(e.mode)) entries.push({ key, type: 'value', oid: e.oid });
      else if (recursive) await walk(e.oid, key);
      else entries.push({ key, type: 'dir', oid: e.oid });
    }
  };
  await walk(entry.oid, base);
  return entries;
}

/**
 * Edits a tree by keys and writes only what changed: the directories along each edited path are re-serialised once,
 * however many edits touched them, and every other subtree keeps its oid.
 */
export class TreeEditor {
  private readonly root: Dir;

  private constructor(
    private readonly db: ObjectDb,
    private readonly rootOid: string,
    root: Tree,
  ) {
    this.root = openDir(root, rootOid);
  }

  static async open(db: ObjectDb, root: string | null): Promise<TreeEditor> {
    return new TreeEditor(db, root ?? EMPTY_TREE, root === null ? emptyTree : await db.readTree(root));
  }

  /** The directories from the root to `segments`, opening them; null where one is missing (unless `create`). */
  private async walk(segments: string[], create: boolean, key = segments.join('/')): Promise<Dir[] | null> {
    const path = [this.root];
    let dir = this.root;
    for (let i = 0; i < segments.length; i++) {
      const name = segments[i]!;
      let child = dir.children.get(name);
      if (!child) {
        const entry = current(dir).get(name);
        if (entry && !isTreeMode(entry.mode)) {
          throw keyIsValue(key, segments.slice(0, i + 1).join('/'));
        }
        if (!entry && !create) return null;
        child = openDir(entry ? await this.db.readTree(entry.oid) : emptyTree, entry ? entry.oid : EMPTY_TREE);
        dir.children.set(name, child);
        if (!entry) {
          note(dir, name, null);
          writable(dir).set(name, { mode: MODE_TREE, oid: EMPTY_TREE });
        }
      }
      path.push(child);
      dir = child;
    }
    return path;
  }

  /** The entry at a key as edited so far (a directory's entry has a stale oid until `write`). */
  async get(segments: string[]): Promise<TreeEntry | null> {
    let path: Dir[] | null;
    try {
      path = await this.walk(segments.slice(0, -1), false);
    } catch {
      return null;
    }
    return path ? (current(path.at(-1)!).get(segments.at(-1)!) ?? null) : null;
  }

  /** The names in the directory at `segments` as edited so far; null when it is not a directory. */
  async names(segments: string[]): Promise<string[] | null> {
    let path: Dir[] | null;
    try {
      path = await this.walk(segments, false);
    } catch {
      return null;
    }
    return path ? [...current(path.at(-1)!).keys()] : null;
  }

  /** Sets a key to a blob; KEY_IS_DIRECTORY / KEY_IS_VALUE where the tree's shape forbids it. */
  async set(segments: string[], oid: string, mode = MODE_BLOB): Promise<void> {
    const name = segments.at(-1)!;
    const path = (await this.walk(segments.slice(0, -1), true, segments.join('/')))!;
    const dir = path.at(-1)!;
    const existing = current(dir).get(name);
    if (existing && isTreeMode(existing.mode)) throw keyIsDirectory(segments.join('/'));
    note(dir, name, mode);
    writable(dir).set(name, { mode, oid });
    for (const d of path) d.dirty = true;
  }

  /** Puts a whole subtree (or value) at a key, replacing what was there; used by merges. */
  async place(segments: string[], entry: TreeEntry | null): Promise<void> {
    if (segments.length === 0) throw new Error('cannot replace the root');
    const name = segments.at(-1)!;
    const path = entry ? await this.walk(segments.slice(0, -1), true) : await this.walk(segments.slice(0, -1), false);
    if (!path) return;
    const dir = path.at(-1)!;
    dir.children.delete(name);
    note(dir, name, null);
    if (entry) writable(dir).set(name, entry);
    else if (current(dir).has(name)) writable(dir).delete(name);
    for (const d of path) d.dirty = true;
  }

  /** Deletes a key; a directory only when `recursive`. NOT_FOUND when absent. */
  async delete(segments: string[], recursive: boolean): Promise<TreeEntry> {
    const key = segments.join('/');
    const name = segments.at(-1)!;
    let path: Dir[] | null;
    try {
      path = await this.walk(segments.slice(0, -1), false);
    } catch {
      path = null;
    }
    const dir = path?.at(-1);
    const existing = dir && current(dir).get(name);
    if (!path || !dir || !existing) throw notFound('key', key);
    if (isTreeMode(existing.mode) && !recursive) throw keyIsDirectory(key);
    dir.children.delete(name);
    note(dir, name, null);
    writable(dir).delete(name);
    for (const d of path) d.dirty = true;
    // Git cannot hold an empty directory: prune the ones this emptied now, not at write time, so that a later edit
    // in the same commit may put a value where the directory was.
    for (let i = path.length - 1; i > 0 && current(path[i]!).size === 0; i--) {
      path[i - 1]!.children.delete(segments[i - 1]!);
      note(path[i - 1]!, segments[i - 1]!, null);
      writable(path[i - 1]!).delete(segments[i - 1]!);
    }
    return existing;
  }

  /**
   * Serialises every changed directory into `batch` and returns the new root tree oid. Directories left empty
   * disappear, as git cannot hold them; an empty root is git's empty tree.
   */
  write(batch: ObjectBatch, parsed: Map<string, Tree>): string {
    const finish = (dir: Dir): string | null => {
      if (!dir.dirty) return null;
      for (const [name, child] of dir.children) {
        if (!child.dirty) continue;
        const oid = finish(child);
        if (oid === null || current(child).size === 0) {
          note(dir, name, null);
          writable(dir).delete(name);
        } else {
          note(dir, name, MODE_TREE);
          writable(dir).set(name, { mode: MODE_TREE, oid });
        }
      }
      const tree = current(dir);
      let oid: string;
      if (dir.reshaped || dir.entries === null) oid = batch.add('tree', serializeTree(tree), dir.baseOid);
      else {
        // A branch writer's batch (one with a prior) owns the chain of versions: wide bodies are patched in place.
        const patch = serializeTreeChange(dir.base, tree, dir.retargeted, batch.prior !== null);
        oid = patch.inPlace ? batch.addPatch(patch, dir.baseOid) : batch.add('tree', patch.body, dir.baseOid);
      }
      parsed.set(oid, tree);
      // Written: later edits start from this version.
      dir.base = tree;
      dir.baseOid = oid;
      dir.entries = null;
      dir.retargeted = new Set();
      dir.reshaped = false;
      dir.dirty = false;
      return tree.size === 0 && dir !== this.root ? null : oid;
    };
    const oid = finish(this.root) ?? this.rootOid;
    // Git knows the empty tree's id but fsck wants the object itself; it costs one tiny entry.
    if (oid === EMPTY_TREE) batch.add('tree', new Uint8Array(0));
    return oid;
  }
}
