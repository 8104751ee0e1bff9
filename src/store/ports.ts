import type { ObjectBatch } from '../objects/batch.js';
import type { ObjectDb } from '../objects/db.js';
import type { TreeEditor } from '../tree/editor.js';

/**
 * The narrow view of the store's object database that layers built on the store (the Xenstore daemon) get: reading
 * committed objects by id. They never write objects or packs themselves.
 */
export type ObjectReader = Pick<ObjectDb, 'readTree' | 'readBlob' | 'readCommit'>;

/** A change being made inside a write: the tree being edited, and the blobs of the values it sets. */
export interface TreeEdit {
  readonly editor: TreeEditor;
  /** Stores bytes as a blob of this write; returns its id, to be set in the editor. */
  addBlob(bytes: Uint8Array): string;
  /** A blob by id, one added in this write included. */
  readBlob(oid: string): Promise<Uint8Array>;
}

/** The edit of a write that stages its objects in `batch`. */
export function treeEdit(db: ObjectDb, editor: TreeEditor, batch: ObjectBatch): TreeEdit {
  return {
    editor,
    addBlob: (bytes) => batch.add('blob', bytes),
    readBlob: async (oid) => batch.get(oid)?.body ?? db.readBlob(oid),
  };
}
