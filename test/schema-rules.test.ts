/**
 * The rules of `.store/schema.json` below the store (src/schema/): key patterns, how a value is read (JSON, or text
 * where the schema's type is `string`), and that a version of the schema files is compiled once.
 */
import { describe, expect, it } from 'vitest';
import { loadSchemas, type SchemaFiles } from '../src/schema/load.js';
import { keyPattern } from '../src/schema/patterns.js';

const utf8 = new TextEncoder();

/** Blob ids are unique across the file: compiled versions are cached by them, as the store's are by git's. */
let n = 0;

/** Schema files held in memory: blob id → text. */
function filesOf(schema: unknown, refs: Record<string, unknown> = {}) {
  const blobs = new Map<string, Uint8Array>();
  const put = (value: unknown) => {
    const oid = `blob${n++}`;
    blobs.set(oid, utf8.encode(typeof value === 'string' ? value : JSON.stringify(value)));
    return oid;
  };
  const files: SchemaFiles = {
    schema: put(schema),
    refs: new Map(Object.entries(refs).map(([key, value]) => [key, put(value)])),
  };
  let reads = 0;
  const read = async (oids: string[]) => {
    reads++;
    return new Map(oids.map((o) => [o, blobs.get(o)!]));
  };
  return { files, read, reads: () => reads };
}

describe('key patterns', () => {
  it('`*` stays within one segment, `**` spans any number of them (none included)', () => {
    const cases: [string, string, boolean][] = [
      ['vm/*/memory', 'vm/web1/memory', true],
      ['vm/*/memory', 'vm/a/b/memory', false],
      ['vm/*/memory', 'vm/memory', false],
      ['vm/web*/memory', 'vm/web12/memory', true],
      ['vm/web*/memory', 'vm/db1/memory', false],
      ['app/**/port', 'app/port', true],
      ['app/**/port', 'app/eu/web/port', true],
      ['app/**', 'app/eu/web/port', true],
      ['app/**', 'apps/x', false],
      ['**', 'anything/at/all', true],
      ['a.b/c+d', 'a.b/c+d', true],
      ['a.b/c+d', 'axb/cd', false],
    ];
    for (const [pattern, key, want] of cases)
      expect(keyPattern(pattern).matches(key), `${pattern} ~ ${key}`).toBe(want);
  });

  it('refuses a pattern with an empty segment', () => {
    for (const bad of ['', 'a//b', '/a', 'a/']) expect(() => keyPattern(bad), bad).toThrow(/empty segment/);
  });
});

describe('a version of the schema files', () => {
  it('is compiled once, and a new version again', async () => {
    const one = filesOf({ 'n/*': { type: 'integer' } });
    const first = await loadSchemas(one.files, one.read);
    expect(await loadSchemas(one.files, one.read)).toBe(first);
    expect(one.reads()).toBe(1);
    const two = filesOf({ 'n/*': { type: 'integer', minimum: 1 } });
    expect(await loadSchemas(two.files, two.read)).not.toBe(first);
  });

  it('reads a value as JSON, or as its text where the type is string, and never checks the store’s own files', async () => {
    const { files, read } = filesOf(
      {
        'n/*': { type: 'integer' },
        's/*': { type: 'string', pattern: '^[a-z]+$' },
        'either/*': { type: ['integer', 'string'] },
        'ref/*': { $ref: '.store/schemas/name.json' },
        'm/*': { type: 'integer' },
        'm/**': { maximum: 10 },
        '**/secret': false,
      },
      { '.store/schemas/name.json': { type: 'string', maxLength: 3 } },
    );
    const set = await loadSchemas(files, read);
    const problems = (key: string, value: string) => set.check(key, utf8.encode(value)).map((v) => v.keyword);
    expect(problems('n/a', ' 42\n')).toEqual([]);
    expect(problems('n/a', '"42"')).toEqual(['type']);
    expect(problems('n/a', '42a')).toEqual(['json']);
    // Text: the bytes as they are, quotes included.
    expect(problems('s/a', 'web')).toEqual([]);
    expect(problems('s/a', '"web"')).toEqual(['pattern']);
    // A type list with string: JSON where it parses, text where it does not.
    expect(problems('either/a', '7')).toEqual([]);
    expect(problems('either/a', 'seven')).toEqual([]);
    expect(problems('either/a', '7.5')).toEqual(['type']);
    // A $ref to a stored schema of type string reads text too.
    expect(problems('ref/a', 'abcd')).toEqual(['maxLength']);
    // Every matching pattern applies, and nothing below .store/ is matched.
    expect(problems('m/a', '5')).toEqual([]);
    expect(problems('m/a', '42')).toEqual(['maximum']);
    expect(problems('m/a', '4.5')).toEqual(['type']);
    expect(problems('m/a/secret', '1')).toEqual(['false schema']);
    expect(problems('.store/secret', '1')).toEqual([]);
    expect(set.covers('.store/secret')).toBe(false);
    expect(set.covers('elsewhere')).toBe(false);
    // Bytes that are not UTF-8 are no value a schema can accept.
    expect(set.check('n/a', new Uint8Array([0xff, 0xfe])).map((v) => v.keyword)).toEqual(['json']);
  });

  it('names the file and the pattern when a schema cannot be used', async () => {
    const cases: [unknown, Record<string, unknown>, RegExp][] = [
      ['{"n/*": ', {}, /\.store\/schema\.json is not a usable schema: it is not JSON/],
      [[], {}, /must be one JSON object/],
      [{ 'n/*': 3 }, {}, /the schema for "n\/\*" must be a JSON object/],
      [{ 'n/*': { type: 'integer', minimun: 1 } }, {}, /unknown keyword: "minimun"/],
      [{ 'n/*': { $ref: '.store/schemas/gone.json' } }, {}, /can't resolve reference/],
      [{ 'a//b': true }, {}, /empty segment/],
      [{ 'n/*': true }, { '.store/schemas/x.json': '{' }, /\.store\/schemas\/x\.json is not a usable schema/],
    ];
    for (const [schema, refs, message] of cases) {
      const { files, read } = filesOf(schema, refs);
      await expect(loadSchemas(files, read), JSON.stringify(schema)).rejects.toMatchObject({
        code: 'INVALID_VALUE',
        message: expect.stringMatching(message),
      });
    }
  });
});
