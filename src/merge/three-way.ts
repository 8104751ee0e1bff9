import type { Conflict } from '../errors.js';
import type { ObjectBatch } from '../objects/batch.js';
import type { ObjectDb } from '../objects/db.js';
import { isTreeMode, type TreeEntry } from '../objects/tree.js';
import { diffTrees, type KeyChange } from '../tree/diff.js';
import { lookup, TreeEditor } from '../tree/editor.js';
import { type MergePolicy, strategyFor } from './config.js';
import { STRATEGIES } from './strategies.js';

/** The two sides of a merge: root trees and head times (for last-writer-wins). */
export interface MergeSides {
  base: string | null;
  ours: string | null;
  theirs: string | null;
  oursTime: number;
  theirsTime: number;
}

/** The outcome: an editor holding ours with theirs' changes applied, and the keys that could not be merged. */
export interface TreeMerge {
  editor: TreeEditor;
  conflicts: Conflict[];
}

/**
 * `resolveToBase` resolves every conflict by keeping the base's version instead of reporting it: that is how the
 * virtual ancestor of a criss-cross merge is built, so that the real merge then sees both sides' changes as changes.
 */
export interface MergeOptions {
  policy: MergePolicy;
  resolveToBase?: boolean;
  /** Where new blobs (strategy results) go. */
  batch: ObjectBatch;
}

const sameEntry = (a: TreeEntry | null, b: TreeEntry | null) =>
  a === b || (a !== null && b !== null && a.oid === b.oid && a.mode === b.mode);

function kindOf(base: TreeEntry | null, ours: TreeEntry | null, theirs: TreeEntry | null): Conflict['kind'] {
  if (base === null) return 'add-add';
  if (ours === null) return 'delete-modify';
  if (theirs === null) return 'modify-delete';
  return 'both-modified';
}

const segments = (key: string) => key.split('/');

/** Applies one side's change to the editor; false when the tree's shape (a value where a directory is) forbids it. */
async function apply(editor: TreeEditor, key: string, entry: TreeEntry | null): Promise<boolean> {
  try {
    if (entry) {
      await editor.set(segments(key), entry.oid, entry.mode);
      return true;
    }
    // Deleting a value: where ours has no value there (nothing, or a directory of its own), there is nothing to do.
    const existing = await editor.get(segments(key));
    if (existing && !isTreeMode(existing.mode)) await editor.delete(segments(key), false);
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'KEY_IS_DIRECTORY' || code === 'KEY_IS_VALUE') return false;
    throw e;
  }
}

/**
 * Three-way merge of trees, per key: keys only theirs changed are taken, keys both changed the same way stay, and
 * keys both changed differently go to the strategy the policy names for them. Equal subtrees are never read.
 */
export async function mergeTrees(db: ObjectDb, sides: MergeSides, options: MergeOptions): Promise<TreeMerge> {
  const theirsChanges = await diffTrees(db, sides.base, sides.theirs);
  // Ours is looked at only where theirs changed something: a transaction merged into a busy branch changed a few
  // keys, while the branch may have changed thousands since it began (diffing all of ours made 1,000 concurrent
  // Xenstore transactions quadratic). A key whose value ours changed (a directory there counts as no value) is ours.
  const ours = {
    get: async (t: KeyChange): Promise<KeyChange | undefined> => {
      const found = await lookup(db, sides.ours, t.key.split('/'));
      const after = found && !isTreeMode(found.mode) ? found : null;
      return sameEntry(after, t.before) ? undefined : { key: t.key, before: t.before, after };
    },
  };
  const editor = await TreeEditor.open(db, sides.ours);
  const conflicts: Conflict[] = [];
  const read = (e: TreeEntry | null) => (e === null ? Promise.resolve(null) : db.readBlob(e.oid));

  for (const t of theirsChanges) {
    const o = await ours.get(t);
    if (!o) {
      if (await apply(editor, t.key, t.after)) continue;
      // Theirs wrote a value where ours now has a directory, or below a value ours wrote.
      const strategy = strategyFor(options.policy, t.key);
      if (options.resolveToBase || strategy === 'ours') continue;
      if (strategy === 'theirs') {
        await forcePlace(editor, t.key, t.after);
        continue;
      }
      conflicts.push({
        key: t.key,
        kind: 'file-dir',
        base: t.before?.oid ?? null,
        ours: null,
        theirs: t.after?.oid ?? null,
      });
      continue;
    }
    if (sameEntry(o.after, t.after)) continue;
    if (options.resolveToBase) {
      await forcePlace(editor, t.key, t.before);
      continue;
    }
    const name = strategyFor(options.policy, t.key);
    const resolution = STRATEGIES[name]({
      key: t.key,
      base: await read(t.before),
      ours: await read(o.after),
      theirs: await read(t.after),
      oursTime: sides.oursTime,
      theirsTime: sides.theirsTime,
    });
    if (resolution === undefined) {
      conflicts.push({
        key: t.key,
        kind: kindOf(t.before, o.after, t.after),
        base: t.before?.oid ?? null,
        ours: o.after?.oid ?? null,
        theirs: t.after?.oid ?? null,
      });
      continue;
    }
    const value = resolution.value;
    const entry =
      value === null
        ? null
        : { mode: o.after?.mode ?? t.after?.mode ?? '100644', oid: options.batch.add('blob', value) };
    if (!(await apply(editor, t.key, entry))) await forcePlace(editor, t.key, entry);
  }
  return { editor, conflicts };
}

/** Puts `entry` at `key`, removing whatever value or directory is in the way. */
async function forcePlace(editor: TreeEditor, key: string, entry: TreeEntry | null): Promise<void> {
  const parts = segments(key);
  for (let i = 1; i < parts.length; i++) {
    const above = await editor.get(parts.slice(0, i));
    if (above && above.mode !== '40000') await editor.place(parts.slice(0, i), null);
  }
  await editor.place(parts, entry);
}
