import { StoreError, type Violation } from '../errors.js';
import { keyPattern } from './patterns.js';
import { type CompiledSchema, SchemaSet } from './schema-set.js';

/** Where a branch declares its schemas, and where the files they `$ref` live (docs/ARCHITECTURE.md, "Schemas"). */
export const SCHEMA_KEY = '.store/schema.json';
export const SCHEMAS_DIR = '.store/schemas/';

/** The files one version of a branch's schemas is made of, by blob id. */
export interface SchemaFiles {
  /** `.store/schema.json`'s blob. */
  schema: string;
  /** Each file below `.store/schemas/`: its key → its blob. */
  refs: Map<string, string>;
}

/** Whether a key is one of the files that make a branch's schemas. */
export const isSchemaFile = (key: string) => key === SCHEMA_KEY || key.startsWith(SCHEMAS_DIR);

/** A version's identity: equal files, equal identity, so a set is compiled once per version. */
export function identityOf(files: SchemaFiles): string {
  const refs = [...files.refs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, oid]) => `${k}=${oid}`);
  return [files.schema, ...refs].join(' ');
}

/** The schema file `key` cannot be used: an INVALID_VALUE that names it, with the problem as its one violation. */
export function schemaProblem(key: string, message: string, pattern = key): StoreError {
  const violation: Violation = { key, pattern, pointer: '', keyword: 'schema', rule: '#', message };
  return new StoreError(
    'INVALID_VALUE',
    `${key} is not a usable schema: ${message}; nothing was written (fix the file, then try again)`,
    { violations: [violation], total: 1 },
  );
}

type AjvClass = new (options: Record<string, unknown>) => AjvInstance;
interface AjvInstance {
  addSchema(schema: unknown, key: string): unknown;
  compile(schema: unknown): CompiledSchema['validate'];
}

let ajvModules: Promise<{ Ajv: AjvClass; addFormats: (ajv: AjvInstance) => void }> | undefined;

/** Ajv and its formats, loaded the first time a branch has schemas: a store without any never pays for them. */
function loadAjv() {
  ajvModules ??= (async () => {
    const [ajv, formats] = await Promise.all([import('ajv/dist/2020.js'), import('ajv-formats')]);
    // Both are CommonJS: their ES default is `module.exports`, whose own `default` is the export proper.
    const unwrap = <T>(m: { default: T | { default: T } }) =>
      ((m.default as { default?: T }).default ?? m.default) as T;
    return {
      Ajv: unwrap(ajv as never) as AjvClass,
      addFormats: unwrap(formats as never) as (ajv: AjvInstance) => void,
    };
  })();
  return ajvModules;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(key: string, bytes: Uint8Array | undefined): unknown {
  if (!bytes) throw schemaProblem(key, 'its blob is missing from the repository');
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (e) {
    throw schemaProblem(key, `it is not JSON (${(e as Error).message})`);
  }
}

/** The JSON types a schema names at its top (following one `$ref` to a stored file). */
function typesOf(schema: unknown, refs: Map<string, unknown>): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const s = schema as { type?: unknown; $ref?: unknown };
  if (s.type === undefined && typeof s.$ref === 'string' && refs.has(s.$ref))
    return typesOf(refs.get(s.$ref), new Map());
  if (typeof s.type === 'string') return [s.type];
  return Array.isArray(s.type) ? s.type.filter((t): t is string => typeof t === 'string') : [];
}

const MAX_CACHED = 16;
const cache = new Map<string, Promise<SchemaSet>>();

/**
 * The compiled schemas of one version of the files, from the cache when this version was compiled before. A file
 * that is not JSON or not a schema Ajv accepts (JSON Schema 2020-12, strict: an unknown keyword is a typo, not a
 * comment) is an INVALID_VALUE naming it — a broken version is remembered too, so it is not compiled at every write.
 */
export function loadSchemas(
  files: SchemaFiles,
  readBlobs: (oids: string[]) => Promise<Map<string, Uint8Array>>,
): Promise<SchemaSet> {
  const identity = identityOf(files);
  let set = cache.get(identity);
  if (set) {
    cache.delete(identity);
  } else {
    set = compile(identity, files, readBlobs);
    set.catch(() => {});
  }
  cache.set(identity, set);
  if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  return set;
}

async function compile(
  identity: string,
  files: SchemaFiles,
  readBlobs: (oids: string[]) => Promise<Map<string, Uint8Array>>,
): Promise<SchemaSet> {
  const blobs = await readBlobs([files.schema, ...files.refs.values()]);
  const declared = parseJson(SCHEMA_KEY, blobs.get(files.schema));
  if (!declared || typeof declared !== 'object' || Array.isArray(declared)) {
    throw schemaProblem(SCHEMA_KEY, 'it must be one JSON object of key pattern → JSON Schema');
  }
  const refs = new Map<string, unknown>();
  for (const [key, oid] of files.refs) refs.set(key, parseJson(key, blobs.get(oid)));
  const { Ajv, addFormats } = await loadAjv();
  // One Ajv per version: the stored files are registered under their keys, so `$ref`s between versions cannot mix.
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, logger: false });
  addFormats(ajv);
  for (const [key, schema] of refs) {
    try {
      ajv.addSchema(schema, key);
    } catch (e) {
      throw schemaProblem(key, (e as Error).message);
    }
  }
  const schemas: CompiledSchema[] = [];
  for (const [source, schema] of Object.entries(declared)) {
    let pattern: CompiledSchema['pattern'];
    try {
      pattern = keyPattern(source);
    } catch (e) {
      throw schemaProblem(SCHEMA_KEY, (e as Error).message, source);
    }
    if (typeof schema !== 'boolean' && (!schema || typeof schema !== 'object' || Array.isArray(schema))) {
      throw schemaProblem(SCHEMA_KEY, `the schema for ${JSON.stringify(source)} must be a JSON object`, source);
    }
    let validate: CompiledSchema['validate'];
    try {
      validate = ajv.compile(schema);
    } catch (e) {
      throw schemaProblem(SCHEMA_KEY, `the schema for ${JSON.stringify(source)}: ${(e as Error).message}`, source);
    }
    const types = typesOf(schema, refs);
    schemas.push({
      pattern,
      validate,
      text: types.length === 1 && types[0] === 'string',
      textAllowed: types.includes('string'),
    });
  }
  return new SchemaSet(identity, schemas);
}
