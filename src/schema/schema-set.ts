import type { Violation } from '../errors.js';
import type { KeyPattern } from './patterns.js';

/** The store's own files: never matched by a pattern (their own readers check them). */
export const CONFIG_PREFIX = '.store/';

/** One compiled schema of a set: its pattern, the validator, and how it reads a value. */
export interface CompiledSchema {
  pattern: KeyPattern;
  /** Ajv's compiled validator: true or false, with `errors` after a false. */
  validate: ((data: unknown) => boolean) & { errors?: AjvError[] | null };
  /** The value is text (the schema's type is `string`), not a JSON document. */
  text: boolean;
  /** A JSON text that does not parse may still be text: the schema's types include `string`. */
  textAllowed: boolean;
}

/** The part of Ajv's error objects the store reports. */
export interface AjvError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  message?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The schemas one version of `.store/schema.json` declares, compiled (see load.ts): each key is checked against
 * every schema whose pattern matches it, and must satisfy all of them.
 */
export class SchemaSet {
  constructor(
    /** Identifies the schema files' version (their blob ids): equal sets have equal identities. */
    readonly identity: string,
    readonly schemas: CompiledSchema[],
  ) {}

  /** Whether any schema applies to `key`: a key no pattern matches is not read at all. */
  covers(key: string): boolean {
    if (key.startsWith(CONFIG_PREFIX)) return false;
    return this.schemas.some((s) => s.pattern.matches(key));
  }

  /** Every way `value` at `key` breaks the schemas that match the key (empty: it satisfies them all). */
  check(key: string, value: Uint8Array): Violation[] {
    if (key.startsWith(CONFIG_PREFIX)) return [];
    const violations: Violation[] = [];
    let text: string | undefined;
    for (const schema of this.schemas) {
      if (!schema.pattern.matches(key)) continue;
      const pattern = schema.pattern.source;
      const fail = (keyword: string, message: string) =>
        violations.push({ key, pattern, pointer: '', keyword, rule: '#', message });
      if (text === undefined) {
        try {
          text = utf8.decode(value);
        } catch {
          fail('json', 'is not UTF-8 text, so no schema can accept it');
          return violations;
        }
      }
      let data: unknown = text;
      if (!schema.text) {
        try {
          data = JSON.parse(text);
        } catch {
          if (!schema.textAllowed) {
            fail('json', `is not JSON (${JSON.stringify(clip(text))}), and the schema for ${pattern} wants JSON`);
            continue;
          }
        }
      }
      if (schema.validate(data)) continue;
      for (const e of schema.validate.errors ?? []) {
        violations.push({
          key,
          pattern,
          pointer: e.instancePath,
          keyword: e.keyword,
          rule: ruleOf(e.schemaPath),
          message: e.message ?? `fails ${e.keyword}`,
        });
      }
    }
    return violations;
  }
}

/** Ajv writes a rule in a stored schema as `.store/schemas/app.json/required`: given as a JSON pointer after `#`. */
const ruleOf = (schemaPath: string) =>
  schemaPath.includes('#')
    ? schemaPath
    : schemaPath.replace(/^(.*?\.json)(\/.*)?$/, (_, file, rest) => `${file}#${rest ?? ''}`);

const clip = (text: string) => (text.length > 40 ? `${text.slice(0, 37)}...` : text);
