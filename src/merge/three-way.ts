import type { Conflict } from '../errors.js';
import type { ObjectBatch } from '../objects/batch.js';
import type { ObjectDb } from '../objects/db.js';
import { isTreeMode, type TreeEntry } from '../objects/tree.js';
import { diffTrees, type KeyChange } from '../tree/diff.js';
import { lookup, TreeEditor } from '../tree/editor.js';
import { type MergePolicy, strategyFor } from './config.js';
import { compareValues, STRATEGIES } from './strategies.js';

/** When each side last changed each of some keys (seconds), for last-writer-wins. */
export type LastChangeTimes = (keys: string[]) => Promise<Map<string, { ours: number; theirs: number }>>;

/**
 * The two sides of a merge: root trees, and when each side changed a key (for last-writer-wins). Merges of commits
 * give `lastChanges`, asked once per merge for exactly the keys that `lww` must decide; merges with no history of their
 * own (a transaction into its branch) give fixed times per side instead (default 0).
 */
export interface MergeSides {
  base: string | null;
  ours: string | null;
  theirs: string | null;
  lastChanges?: LastChangeTimes;
  oursTime?: number;
  theirsTime?: number;
}

/** The outcome: an editor holding ours with theirs' changes applied, and the keys that could not be merged. */
export interface TreeMerge {
  editor: TreeEditor;
  conflicts: Conflict[];
}

/**
 * `resolveToBase` resolves each conflict (a key the strategy cannot merge, or a file-dir clash) by keeping the base's
 * version (ours' shape for file-dir) instead of reporting it: that is how the virtual ancestor of a criss-cross merge
 * is built, as git's recursive strategy does, so that the real merge then sees both sides' changes as changes.
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
 * Three-way merge of trees, per key: keys only theirs changed are taken, keys both changed the same way stay (but
 * counters add both increments), and keys both changed differently go to the strategy the policy names for them.
 * Equal subtrees are never read.
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
  const read = (e: TreeEntry | null) => (e === null ? Promise.resolve(null) : db.readBlob(e.oid));
  // First the pairing of each of theirs' changes with ours' side of that key, so that last-writer-wins can ask its
  // times once, for just the keys it must decide (walking history is the expensive part).
  const pairs: [KeyChange, KeyChange | undefined][] = [];
  for (const t of theirsChanges) pairs.push([t, await ours.get(t)]);
  const lwwKeys = pairs
    .filter(([t, o]) => o && !sameEntry(o.after, t.after) && strategyFor(options.policy, t.key) === 'lww')
    .map(([t]) => t.key);
  const times = lwwKeys.length > 0 && sides.lastChanges ? await sides.lastChanges(lwwKeys) : new Map<string, never>();

  const editor = await TreeEditor.open(db, sides.ours);
  const conflicts: Conflict[] = [];
  for (const [t, o] of pairs) {
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
    const name = strategyFor(options.policy, t.key);
    // Both sides made the same change: that is one change, except for counters, where two equal increments made
    // apart are two increments (base 0, both +2 → 4). A same change a counter cannot add up stays as it is.
    const same = sameEntry(o.after, t.after);
    if (same && name !== 'counter') continue;
    const changedAt = name === 'lww' ? times.get(t.key) : undefined;
    const [base, oursValue, theirsValue] = [await read(t.before), await read(o.after), await read(t.after)];
    const resolution = STRATEGIES[name]({
      key: t.key,
      base,
      ours: oursValue,
      theirs: theirsValue,
      oursChangedAt: changedAt?.ours ?? sides.oursTime ?? 0,
      theirsChangedAt: changedAt?.theirs ?? sides.theirsTime ?? 0,
    });
    if (resolution === undefined) {
      if (same) continue;
      if (options.resolveToBase) {
        await forcePlace(editor, t.key, t.before);
        continue;
      }
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
        : { mode: modeOf(value, o.after, oursValue, t.after, theirsValue), oid: options.batch.add('blob', value) };
    if (!(await apply(editor, t.key, entry))) await forcePlace(editor, t.key, entry);
  }
  return { editor, conflicts };
}

/**
 * The mode of a merged value, the same whichever side is ours: the mode of the side whose value it is, else (both or
 * neither) the greater of the two modes.
 */
function modeOf(
  value: Uint8Array,
  ours: TreeEntry | null,
  oursValue: Uint8Array | null,
  theirs: TreeEntry | null,
  theirsValue: Uint8Array | null,
): string {
  const fromOurs = ours !== null && compareValues(value, oursValue) === 0;
  const fromTheirs = theirs !== null && compareValues(value, theirsValue) === 0;
  if (fromOurs !== fromTheirs) return (fromOurs ? ours : theirs)!.mode;
  const modes = [ours?.mode, theirs?.mode].filter((m): m is string => m !== undefined).sort();
  return modes.at(-1) ?? '100644';
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
