import { isStoreError, type Violation } from '../errors.js';
import { identityOf, loadSchemas, type SchemaFiles } from './load.js';
import type { SchemaSet } from './schema-set.js';

/**
 * Trees as the schema checks read them. The store reads its object database; a push's check reads git's quarantine
 * through git plumbing (src/remote/quarantine.ts). A tree is named by any id its reader takes (a tree or a commit).
 */
export interface SchemaTrees {
  /** The schema files of a tree; null when it has no `.store/schema.json`. */
  schemaFiles(tree: string): Promise<SchemaFiles | null>;
  /** Every value of a tree: key and blob. */
  values(tree: string): Promise<[key: string, oid: string][]>;
  /** The values `after` adds or changes against `before`: key and blob in `after`. */
  changed(before: string | null, after: string): Promise<[key: string, oid: string][]>;
  blobs(oids: string[]): Promise<Map<string, Uint8Array>>;
}

/**
 * The violations a schema check refused with — a schema file that cannot be used is its one violation — for the
 * callers that report them rather than throw (previews, validation, the push check); any other error is thrown again.
 */
export function refusedViolations(e: unknown): Violation[] {
  if (isStoreError(e) && e.code === 'INVALID_VALUE') return (e.data as { violations: Violation[] }).violations;
  throw e;
}

/** The blobs read at once while checking: bounds memory on a large tree. */
const CHUNK = 512;

/** Every violation among `entries` (keys with their blobs) of the schemas in `set`. */
export async function violationsOf(
  set: SchemaSet,
  entries: Iterable<[string, string]>,
  blobs: SchemaTrees['blobs'],
): Promise<{ checked: number; violations: Violation[] }> {
  const covered = [...entries].filter(([key]) => set.covers(key));
  const violations: Violation[] = [];
  for (let i = 0; i < covered.length; i += CHUNK) {
    const chunk = covered.slice(i, i + CHUNK);
    const values = await blobs([...new Set(chunk.map(([, oid]) => oid))]);
    for (const [key, oid] of chunk) violations.push(...set.check(key, values.get(oid) ?? new Uint8Array()));
  }
  return { checked: covered.length, violations };
}

/** The compiled schemas a tree declares (null: none); INVALID_VALUE when its schema files cannot be used. */
export async function schemasOf(trees: SchemaTrees, tree: string | null): Promise<SchemaSet | null> {
  const files = tree === null ? null : await trees.schemaFiles(tree);
  return files ? loadSchemas(files, (oids) => trees.blobs(oids)) : null;
}

/**
 * What moving a branch from tree `before` to tree `after` breaks of the schemas `after` declares
 * (docs/ARCHITECTURE.md, "Schemas"). Only the values the move adds or changes are read — unless the move changes
 * the schemas themselves: then every value of `after` must satisfy the new ones, except with `force`, which lets an
 * admin adopt schemas that today's values do not yet meet (the values the move writes are still checked).
 */
export async function checkMove(
  trees: SchemaTrees,
  before: string | null,
  after: string | null,
  force = false,
): Promise<Violation[]> {
  if (before === after || after === null) return [];
  const files = await trees.schemaFiles(after);
  if (!files) return [];
  const set = await loadSchemas(files, (oids) => trees.blobs(oids));
  const previous = before === null ? null : await trees.schemaFiles(before);
  const schemasChanged = previous === null || identityOf(previous) !== set.identity;
  const entries = schemasChanged && !force ? await trees.values(after) : await trees.changed(before, after);
  return (await violationsOf(set, entries, trees.blobs)).violations;
}

/** checkMove, with a schema file that cannot be used answered as its violation instead of thrown. */
export const violationsOfMove = (trees: SchemaTrees, before: string | null, after: string | null, force = false) =>
  checkMove(trees, before, after, force).catch(refusedViolations);
