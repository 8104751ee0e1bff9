import type { ObjectBatch } from '../objects/batch.js';
import type { ObjectDb } from '../objects/db.js';
import { isTreeMode, type TreeEntry } from '../objects/tree.js';
import { lookup, type TreeEditor } from '../tree/editor.js';
import { type Perm, parseStoredPerms, ROOT_PERMS, serializePerms } from './permissions.js';
import { XsError } from './wire.js';

/**
 * Xenstore nodes as files plain git shows: a node with a value and nothing else is a file at its path. A node that
 * also has children, or permissions of its own, is a directory; its value is then in the entry `.value` (absent when
 * empty) and its permissions in `.perms` — names no Xenstore path can contain (only letters, digits and `-/_@`), so
 * they never collide with a real child. A node without `.perms` has its parent's permissions, as Xenstore copies
 * them at creation; when a parent's change, its children that had them are given the old ones explicitly first.
 */

export const VALUE = '.value';
export const PERMS = '.perms';
const RESERVED = new Set([VALUE, PERMS]);

/** Where nodes are read from: a tree as committed, or one being edited. */
export interface NodeSource {
  entry(segments: string[]): Promise<TreeEntry | null>;
  /** The names in a directory; null when there is none. */
  names(segments: string[]): Promise<string[] | null>;
  blob(oid: string): Promise<Uint8Array>;
}

/** A committed tree as a node source. */
export function treeSource(db: ObjectDb, tree: string | null): NodeSource {
  return {
    entry: (segments) => lookup(db, tree, segments),
    names: async (segments) => {
      if (segments.length === 0) return tree ? [...(await db.readTree(tree)).keys()] : [];
      const e = await lookup(db, tree, segments);
      return e && isTreeMode(e.mode) ? [...(await db.readTree(e.oid)).keys()] : null;
    },
    blob: (oid) => db.readBlob(oid),
  };
}

/** A tree being edited (inside a write) as a node source; blobs just added are read from the batch. */
export function editorSource(db: ObjectDb, editor: TreeEditor, batch: ObjectBatch): NodeSource {
  return {
    entry: (segments) => editor.get(segments),
    names: (segments) => editor.names(segments),
    blob: async (oid) => batch.get(oid)?.body ?? db.readBlob(oid),
  };
}

/** A node as stored: its value's blob (null: empty), its own permissions' blob (null: inherited), its children. */
export interface StoredNode {
  value: string | null;
  perms: string | null;
  children: string[];
  form: 'file' | 'dir';
}

const EMPTY_BLOB = 'e69de29bb2d1d6434b8b29ae775ad8c2d48c5391';

/** The node at `segments`, or null when there is none (the root always exists). */
export async function readNode(src: NodeSource, segments: string[]): Promise<StoredNode | null> {
  if (segments.length > 0) {
    const e = await src.entry(segments);
    if (!e) return null;
    if (!isTreeMode(e.mode))
      return { value: e.oid === EMPTY_BLOB ? null : e.oid, perms: null, children: [], form: 'file' };
  }
  const names = (await src.names(segments)) ?? [];
  const own = async (name: string) =>
    names.includes(name) ? ((await src.entry([...segments, name]))?.oid ?? null) : null;
  return {
    value: await own(VALUE),
    perms: await own(PERMS),
    children: names.filter((n) => !RESERVED.has(n) && !n.startsWith('.')),
    form: 'dir',
  };
}

/** A node or ENOENT. */
export async function mustRead(src: NodeSource, segments: string[]): Promise<StoredNode> {
  const node = await readNode(src, segments);
  if (!node) throw new XsError('ENOENT');
  return node;
}

export async function nodeValue(src: NodeSource, node: StoredNode): Promise<Uint8Array> {
  return node.value ? src.blob(node.value) : new Uint8Array(0);
}

/** The node's permissions: its own, else the nearest ancestor's, else the root's default. */
export async function permsOf(src: NodeSource, segments: string[]): Promise<Perm[]> {
  for (let n = segments.length; n >= 0; n--) {
    const node = await readNode(src, segments.slice(0, n));
    if (node?.perms) return parseStoredPerms(new TextDecoder().decode(await src.blob(node.perms)));
  }
  return ROOT_PERMS;
}

/** What a write needs: the editor, the batch new blobs go to, and reads of what is there. */
export interface NodeEdit {
  editor: TreeEditor;
  batch: ObjectBatch;
  src: NodeSource;
}

/** Turns a file node into a directory node (its value moving to `.value`), so it can hold children or perms. */
async function toDir(e: NodeEdit, segments: string[]): Promise<void> {
  const entry = await e.editor.get(segments);
  if (!entry || isTreeMode(entry.mode)) return;
  await e.editor.delete(segments, false);
  if (entry.oid !== EMPTY_BLOB) await e.editor.set([...segments, VALUE], entry.oid);
}

/**
 * Puts a node back in its simplest form once it has neither children nor perms of its own: a file. Git keeps no
 * empty directories, so a node whose last child went may have vanished altogether: it comes back as an empty file.
 */
async function settle(e: NodeEdit, segments: string[]): Promise<void> {
  if (segments.length === 0) return;
  const node = await readNode(e.src, segments);
  if (!node) {
    await e.editor.set(segments, e.batch.add('blob', new Uint8Array(0)));
    return;
  }
  if (node.form === 'file' || node.children.length > 0 || node.perms) return;
  await e.editor.delete(segments, true);
  await e.editor.set(segments, node.value ?? e.batch.add('blob', new Uint8Array(0)));
}

/** How many of the nodes along `segments` do not exist yet (what a WRITE there would create). */
export async function missingNodes(src: NodeSource, segments: string[]): Promise<number> {
  let n = segments.length;
  while (n > 0 && !(await readNode(src, segments.slice(0, n)))) n--;
  return segments.length - n;
}

/**
 * WRITE: sets a node's value, creating it and any missing ancestors (empty, with their parent's perms). Nodes a
 * domain other than dom0 creates are owned by it, as in Xen: the first one created gets the parent's perms with the
 * owner replaced, and those below inherit them.
 */
export async function writeNode(
  e: NodeEdit,
  segments: string[],
  value: Uint8Array,
  creator = 0,
): Promise<{ created: boolean }> {
  if (segments.length === 0) {
    await setValue(e, [], value);
    return { created: false };
  }
  const missing = await missingNodes(e.src, segments);
  const top = segments.slice(0, segments.length - missing + 1);
  const inherited = missing > 0 && creator !== 0 ? await permsOf(e.src, top.slice(0, -1)) : null;
  for (let i = 1; i < segments.length; i++) await toDir(e, segments.slice(0, i));
  const existing = await e.editor.get(segments);
  if (existing && isTreeMode(existing.mode)) {
    await setValue(e, segments, value);
    return { created: false };
  }
  await e.editor.set(segments, e.batch.add('blob', value));
  if (inherited && inherited[0]!.domid !== creator) {
    await writePerms(e, top, serializePerms([{ access: inherited[0]!.access, domid: creator }, ...inherited.slice(1)]));
  }
  return { created: existing === null };
}

/** A directory node's value: `.value`, absent when empty. */
async function setValue(e: NodeEdit, segments: string[], value: Uint8Array): Promise<void> {
  const at = [...segments, VALUE];
  if (value.length > 0) await e.editor.set(at, e.batch.add('blob', value));
  else if (await e.editor.get(at)) {
    await e.editor.delete(at, false);
    await settle(e, segments);
  }
}

/** MKDIR: creates an empty node; false (and nothing changes) when it exists. */
export async function mkdirNode(e: NodeEdit, segments: string[], creator = 0): Promise<boolean> {
  if (await readNode(e.src, segments)) return false;
  await writeNode(e, segments, new Uint8Array(0), creator);
  return true;
}

/** RM: removes a node and everything below it. A missing node is fine when its parent exists; ENOENT otherwise. */
export async function removeNode(e: NodeEdit, segments: string[]): Promise<boolean> {
  if (segments.length === 0) throw new XsError('EINVAL', 'the root cannot be removed');
  if (!(await e.editor.get(segments))) {
    if (await readNode(e.src, segments.slice(0, -1))) return false;
    throw new XsError('ENOENT');
  }
  await e.editor.delete(segments, true);
  await settle(e, segments.slice(0, -1));
  return true;
}

/** SET_PERMS: gives a node its own permissions (children that inherited the old ones keep them). */
export async function setPermsNode(e: NodeEdit, segments: string[], perms: readonly Perm[]): Promise<void> {
  const node = await mustRead(e.src, segments);
  const before = serializePerms(await permsOf(e.src, segments));
  const after = serializePerms(perms);
  if (before !== after) {
    for (const child of node.children) {
      const c = await readNode(e.src, [...segments, child]);
      if (c && !c.perms) await writePerms(e, [...segments, child], before);
    }
  }
  await writePerms(e, segments, after);
}

async function writePerms(e: NodeEdit, segments: string[], text: string): Promise<void> {
  if (segments.length > 0) await toDir(e, segments);
  await e.editor.set([...segments, PERMS], e.batch.add('blob', new TextEncoder().encode(text)));
}

/** The node path a changed key belongs to (`a/b/.value` → `/a/b`); null for keys outside Xenstore (`.store/…`). */
export function pathOfKey(key: string): string | null {
  const parts = key.split('/');
  const last = parts.at(-1)!;
  if (RESERVED.has(last)) parts.pop();
  if (parts.some((p) => p.startsWith('.'))) return null;
  return `/${parts.join('/')}`;
}
