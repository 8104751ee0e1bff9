import { invalidValue, type Violation } from '../errors.js';
import type { ObjectDb } from '../objects/db.js';
import { isTreeMode, type Tree } from '../objects/tree.js';
import {
  checkMove,
  refusedViolations,
  type SchemaTrees,
  schemasOf,
  violationsOf,
  violationsOfMove,
} from '../schema/check.js';
import { SCHEMAS_DIR, type SchemaFiles } from '../schema/load.js';
import type { SchemaSet } from '../schema/schema-set.js';
import { diffTrees } from '../tree/diff.js';
import { listTree, lookup } from '../tree/editor.js';
import type { ValidationReport } from './types.js';

/**
 * A branch's schemas over the store's object database (docs/ARCHITECTURE.md, "Schemas"): the check every write runs
 * in its branch's writer before its commit can be published, and whole-tree validation for `store validate` and
 * `store bisect --invalid`. Trees being written are readable here: the writer holds their objects until the pack is
 * written.
 */
export class StoreSchemas {
  /** Trees as the object database has them. */
  readonly trees: SchemaTrees;

  constructor(private readonly db: ObjectDb) {
    this.trees = this.treesOver(db);
  }

  /**
   * Trees read through `reader`: a write passes the trees it has just built (parsed, and for wide directories
   * overlays whose changed names are known), so checking it neither parses them again nor compares unchanged names.
   */
  private treesOver(reader: Pick<ObjectDb, 'readTree'>): SchemaTrees {
    const { db } = this;
    return {
      schemaFiles: async (tree) => {
        const config = await lookup(reader, tree, ['.store']);
        if (!config || !isTreeMode(config.mode)) return null;
        const dir = await reader.readTree(config.oid);
        const schema = dir.get('schema.json');
        if (!schema || isTreeMode(schema.mode)) return null;
        const files: SchemaFiles = { schema: schema.oid, refs: new Map() };
        const refs = dir.get('schemas');
        if (refs && isTreeMode(refs.mode)) {
          const base = SCHEMAS_DIR.slice(0, -1).split('/');
          for (const e of await listTree(reader, tree, base, true)) files.refs.set(e.key, e.oid);
        }
        return files;
      },
      values: async (tree) => (await listTree(reader, tree, [], true)).map((e) => [e.key, e.oid]),
      changed: async (before, after) =>
        (await diffTrees(reader, before, after)).flatMap((c) =>
          c.after && !isTreeMode(c.after.mode) ? [[c.key, c.after.oid] as [string, string]] : [],
        ),
      blobs: async (oids) => new Map(await Promise.all(oids.map(async (o) => [o, await db.readBlob(o)] as const))),
    };
  }

  /** Refuses (INVALID_VALUE, listing the violations) a branch's move from tree `before` to `after`; see checkMove. */
  async checkMove(
    before: string | null,
    after: string | null,
    force = false,
    built?: ReadonlyMap<string, Tree>,
  ): Promise<void> {
    const trees = built
      ? this.treesOver({
          readTree: (oid) => (built.has(oid) ? Promise.resolve(built.get(oid)!) : this.db.readTree(oid)),
        })
      : this.trees;
    const violations = await checkMove(trees, before, after, force);
    if (violations.length > 0) throw invalidValue(violations);
  }

  /** What checkMove would refuse, as data (a broken schema file is its one violation): for previews. */
  violationsOfMove(before: string | null, after: string | null, force = false): Promise<Violation[]> {
    return violationsOfMove(this.trees, before, after, force);
  }

  /** The schemas a tree declares (null: none); INVALID_VALUE when its schema files are broken. */
  schemasOf(tree: string | null): Promise<SchemaSet | null> {
    return schemasOf(this.trees, tree);
  }

  /**
   * Every violation in a tree of the schemas `set` (default: the tree's own). A schema file that cannot be used is
   * reported as its violation, not thrown: validating is how one finds out what is wrong.
   */
  async validate(commit: string | null, tree: string | null, set?: SchemaSet | null): Promise<ValidationReport> {
    let schemas: SchemaSet | null;
    try {
      schemas = set === undefined ? await this.schemasOf(tree) : set;
    } catch (e) {
      return { commit, patterns: [], checked: 0, valid: false, violations: refusedViolations(e) };
    }
    const patterns = schemas?.schemas.map((s) => s.pattern.source) ?? [];
    if (!schemas || tree === null) return { commit, patterns, checked: 0, valid: true, violations: [] };
    const { checked, violations } = await violationsOf(schemas, await this.trees.values(tree), this.trees.blobs);
    return { commit, patterns, checked, valid: violations.length === 0, violations };
  }
}
