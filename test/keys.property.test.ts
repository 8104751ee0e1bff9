import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBranchName, isStoreError, MAX_KEY_BYTES, normalizeKey, parseKey } from '../src/index.js';

const MAX_SEGMENT_BYTES = 255;
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** What a call throws (undefined when it returns). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

function expectInvalidKey(key: string) {
  const e = thrown(() => parseKey(key));
  expect(isStoreError(e), `expected ${JSON.stringify(key)} to be rejected`).toBe(true);
  expect((e as { code: string }).code).toBe('INVALID_KEY');
  expect((e as { data: { key: string } }).data.key).toBe(key);
  // normalizeKey goes through the same check.
  expect((thrown(() => normalizeKey(key)) as { code?: string } | undefined)?.code).toBe('INVALID_KEY');
}

// ---- arbitraries ---------------------------------------------------------------------------------------------

// One "character" of a valid segment: printable ASCII except `/` and `\`, plus 2-, 3- and 4-byte UTF-8 characters
// (the last a surrogate pair; U+00A0 is the first code point after the C1 controls), zero-width code points that HFS+
// ignores, and the pieces of near-miss reserved names (`.`, ` `, `:`, `git`, `~`, digits) so that names such as
// `...`, `.gitx`, `git~`, `xgit~1`, `a.b.` or `.git x` come up often.
const printableAscii = fc
  .integer({ min: 0x20, max: 0x7e })
  .map((c) => String.fromCharCode(c))
  .filter((c) => c !== '/' && c !== '\\');
const segmentUnit = fc.oneof(
  { weight: 6, arbitrary: printableAscii },
  { weight: 2, arbitrary: fc.constantFrom('.', ' ', ':', '::', 'git', 'GiT', '~', '1', '23') },
  { weight: 1, arbitrary: fc.constantFrom('é', 'ß', '€', '中', '😀', '\u00a0', '\u200c', '\ufeff') },
);

const reserved = /^(\.|\.\.|\.git|git~\d+)$/i;
/** The zero-width code points HFS+ ignores in names (those git's is_hfs_dotgit skips). */
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => String.fromCharCode(from + i));
const HFS_IGNORABLE = [...range(0x200c, 0x200f), ...range(0x202a, 0x202e), ...range(0x206a, 0x206f), '\ufeff'];
const hfsIgnorable = new RegExp(`[${HFS_IGNORABLE.join('')}]`, 'g');
/**
 * Whether git or a file system may read a segment as `.git` or `git~N`: HFS+ drops the ignorable code points, NTFS
 * drops trailing dots and spaces and a stream name (from a colon on). Valid segments avoid all of these. The invalid
 * ones below use only the stream forms keys.ts rejects (`::…`): git's fsck also flags a single colon (`.git:x`,
 * `git~1:x`), which keys.ts still accepts, so these properties assert neither way on it.
 */
const readsAsDotGit = (s: string) => /^(\.git|git~\d+)[. ]*(:.*)?$/is.test(s.replace(hfsIgnorable, ''));

/** Drops code points from the end until the segment fits in 255 UTF-8 bytes. */
function fitSegment(s: string): string {
  const chars = Array.from(s);
  while (bytes(chars.join('')) > MAX_SEGMENT_BYTES) chars.pop();
  return chars.join('');
}

const validSegment = fc
  .oneof(
    { weight: 4, arbitrary: fc.string({ unit: segmentUnit, minLength: 1, maxLength: 12 }) },
    // Long segments, up to and exactly at the 255-byte limit.
    { weight: 1, arbitrary: fc.string({ unit: segmentUnit, minLength: 80, maxLength: 260 }).map(fitSegment) },
    { weight: 1, arbitrary: fc.integer({ min: 250, max: 255 }).map((n) => 'x'.repeat(n)) },
  )
  .filter((s) => s.length > 0 && !reserved.test(s) && !readsAsDotGit(s));

const validSegments = fc
  .array(validSegment, { minLength: 1, maxLength: 8 })
  .filter((segs) => bytes(segs.join('/')) <= MAX_KEY_BYTES);

/** `.git` and `git~N` in any mix of upper and lower case. */
const anyCase = (s: string) =>
  fc
    .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
    .map((ups) => Array.from(s, (c, i) => (ups[i] ? c.toUpperCase() : c)).join(''));

const forbiddenChar = fc.oneof(
  fc.constantFrom('\\', '\u0000', '\u007f', '\n', '\t', '\r', '\u0080', '\u0085', '\u009f'),
  // C0 and C1 control characters.
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x80, max: 0x9f }).map((c) => String.fromCharCode(c)),
  // A lone surrogate, high or low (segmentUnit never ends with a high one nor starts with a low one, so it stays alone).
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
);

const dotGit = fc.oneof(
  anyCase('.git'),
  fc.nat({ max: 100_000 }).chain((n) => anyCase(`git~${n}`)),
);

/** `.git` with HFS+-ignorable code points anywhere in it: `.g\u200cit`, `\ufeff.GIT\u200d`. */
const hfsDotGit = fc
  .tuple(
    anyCase('.git'),
    fc.array(fc.tuple(fc.nat({ max: 4 }), fc.constantFrom(...HFS_IGNORABLE)), { minLength: 1, maxLength: 3 }),
  )
  .map(([name, inserts]) => {
    const chars = Array.from(name);
    for (const [at, c] of inserts) chars.splice(at % (chars.length + 1), 0, c);
    return chars.join('');
  });

/** `.git` or `git~N` as NTFS reads it: followed by dots and spaces, and/or a `::` stream suffix (`.git::$DATA`). */
const ntfsDotGit = fc
  .tuple(
    dotGit,
    fc.string({ unit: fc.constantFrom('.', ' '), maxLength: 4 }),
    fc.option(
      fc.string({ unit: segmentUnit, maxLength: 8 }).map((stream) => `::${stream}`),
      { nil: '' },
    ),
  )
  .filter(([, tail, stream]) => tail !== '' || stream !== '')
  .map(([name, tail, stream]) => name + tail + stream);

const invalidSegment = fc.oneof(
  fc.constantFrom('.', '..'),
  dotGit,
  hfsDotGit,
  ntfsDotGit,
  // A forbidden character anywhere in an otherwise valid segment.
  fc
    .tuple(
      fc.string({ unit: segmentUnit, maxLength: 10 }),
      forbiddenChar,
      fc.string({ unit: segmentUnit, maxLength: 10 }),
    )
    .map(([a, c, b]) => a + c + b),
  // One byte (or a few) too long.
  fc
    .tuple(fc.integer({ min: 256, max: 300 }), fc.constantFrom('a', 'é', '€', '😀'))
    .map(([n, c]) => c.repeat(Math.ceil(n / bytes(c)))),
);

// ---- keys ----------------------------------------------------------------------------------------------------

describe('keys (property)', () => {
  it('accepts every key made of valid segments; parseKey returns the segments', () => {
    fc.assert(
      fc.property(validSegments, (segs) => {
        const key = segs.join('/');
        expect(parseKey(key)).toEqual(segs);
        expect(normalizeKey(key)).toBe(key);
      }),
      { numRuns: 500 },
    );
  });

  it('normalizeKey drops one leading slash and is idempotent', () => {
    fc.assert(
      fc.property(validSegments, fc.boolean(), (segs, slash) => {
        const key = segs.join('/');
        const input = slash ? `/${key}` : key;
        const once = normalizeKey(input);
        expect(once).toBe(key);
        expect(normalizeKey(once)).toBe(once);
        expect(parseKey(input)).toEqual(segs);
        // Only one slash is dropped: a second one is an empty segment.
        expectInvalidKey(`//${key}`);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a key with an invalid segment inserted anywhere (INVALID_KEY)', () => {
    fc.assert(
      fc.property(validSegments, invalidSegment, fc.nat(), fc.boolean(), (segs, bad, at, slash) => {
        const i = at % (segs.length + 1);
        const withBad = [...segs.slice(0, i), bad, ...segs.slice(i)];
        const key = withBad.join('/');
        expectInvalidKey(key);
        expectInvalidKey(`/${key}`);
        if (slash) expectInvalidKey(`${key}/`);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects an empty segment anywhere but first (two slashes, or a trailing slash)', () => {
    // An empty FIRST segment is a leading slash, which is accepted and dropped (see above).
    fc.assert(
      fc.property(validSegments, fc.nat(), (segs, at) => {
        const i = 1 + (at % segs.length);
        const key = [...segs.slice(0, i), '', ...segs.slice(i)].join('/');
        expectInvalidKey(key);
      }),
      { numRuns: 300 },
    );
    expectInvalidKey('');
    expectInvalidKey('/');
    expect(parseKey('', true)).toEqual([]);
    expect(parseKey('/', true)).toEqual([]);
  });

  it('rejects names NTFS or HFS+ would read as .git or git~N, lone surrogates and C1 controls (examples)', () => {
    for (const name of [
      '.git.',
      '.git ',
      '.GIT. .',
      'git~1.',
      'GIT~1 ',
      '.g\u200cit',
      '\ufeff.git',
      '.git::$INDEX_ALLOCATION',
      '.git::',
      '.git:x',
      '.git:',
      'git~1:x',
      'git~1::$DATA',
      'x\ud800y',
      'x\udc00',
      '\ud83dx',
      'a\u0080b',
      'a\u0085b',
      'a\u009fb',
    ]) {
      expectInvalidKey(name);
      expectInvalidKey(`a/${name}/b`);
    }
  });

  it('still accepts near misses (examples)', () => {
    for (const name of ['...', '.gitx', 'a.b.', 'x.git.', '.git x', 'git~', 'git~1x', 'a\u00a0b', 'a\u200cb', 'x😀']) {
      expect(parseKey(name)).toEqual([name]);
      expect(normalizeKey(`/a/${name}/b`)).toBe(`a/${name}/b`);
    }
  });

  it('accepts valid segments exactly while the key fits in 3072 bytes (the leading slash not counted)', () => {
    // 10–16 segments of 200–255 bytes land on both sides of the limit.
    const longSegment = fc
      .tuple(fc.integer({ min: 200, max: 255 }), fc.constantFrom('a', 'é', '€', '😀'))
      .map(([n, c]) => c.repeat(Math.floor(n / bytes(c))));
    fc.assert(
      fc.property(
        fc.array(longSegment, { minLength: 10, maxLength: 16 }),
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        (segs, trim, slash) => {
          // Trim the last segment a little so that keys of exactly 3072 bytes (and 3073) turn up too; by code point,
          // since half a surrogate pair is not a valid key.
          const last = Array.from(segs.at(-1)!);
          const trimmed = [...segs.slice(0, -1), last.slice(0, Math.max(1, last.length - trim)).join('')];
          const key = trimmed.join('/');
          const input = slash ? `/${key}` : key;
          if (bytes(key) <= MAX_KEY_BYTES) expect(normalizeKey(input)).toBe(key);
          else expectInvalidKey(input);
        },
      ),
      { numRuns: 300 },
    );
    // 11 × 255 + 200 + 55 bytes of segments and 12 slashes: exactly 3072 bytes.
    const exact = [...Array.from({ length: 11 }, () => 'a'.repeat(255)), 'b'.repeat(200), 'c'.repeat(55)];
    expect(bytes(exact.join('/'))).toBe(MAX_KEY_BYTES);
    expect(normalizeKey(exact.join('/'))).toBe(exact.join('/'));
    expect(normalizeKey(`/${exact.join('/')}`)).toBe(exact.join('/'));
    expectInvalidKey(`${exact.join('/')}e`);
    expectInvalidKey(`${exact.join('/').slice(0, -1)}é`); // 3073 bytes, 3072 UTF-16 units
  });
});

// ---- branch names --------------------------------------------------------------------------------------------

// Run git outside any repository, so that `--branch` does not resolve names against the project's own repo.
const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-refname-'));
afterAll(() => fs.rmSync(outside, { recursive: true, force: true }));
const gitEnv: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CEILING_DIRECTORIES: path.dirname(outside),
  GIT_CONFIG_NOSYSTEM: '1',
};
delete gitEnv.GIT_DIR;

function gitAccepts(name: string): boolean {
  const r = spawnSync('git', ['check-ref-format', '--branch', name], { cwd: outside, env: gitEnv });
  if (r.error) throw r.error;
  return r.status === 0;
}

function weAccept(name: string): boolean {
  const e = thrown(() => checkBranchName(name));
  if (e === undefined) return true;
  expect((e as { code?: string }).code).toBe('INVALID_BRANCH');
  return false;
}

// Tokens rather than single characters, so that `.lock` suffixes, `HEAD`, `..`, `@{` and `//` are frequent; benign
// tokens weigh more so that about half the names are valid and both answers get exercised.
const branchToken = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'b', 'x', 'main', 'é') },
  { weight: 4, arbitrary: fc.constantFrom('.', '/', '-', '@', '{', '}', '.lock', 'HEAD') },
  { weight: 1, arbitrary: fc.constantFrom('..', '~', '^', ':', ' ', '?', '*', '[', '\\', '\t', '\u007f') },
);

// Two exclusions. Names starting with `@{`: with --branch, git first tries to resolve `@{-N}` / `@{upstream}` as
// "a previous / the upstream branch" rather than check a name (outside a repository both sides reject them, but the
// comparison would test git's resolution, not the name rules). And the bare `@`: git 2.39 outside a repository
// accepts it (it checks `refs/heads/@`), while checkBranchName deliberately reserves it, since inside a repository git
// reads `@` as HEAD — the one known, intended disagreement (asserted separately below).
const branchName = fc
  .array(branchToken, { minLength: 1, maxLength: 8 })
  .map((t) => t.join(''))
  .filter((n) => !n.startsWith('@{') && n !== '@');

describe('branch names agree with git check-ref-format --branch (property)', () => {
  it('on names from a small, hostile alphabet', () => {
    fc.assert(
      fc.property(branchName, (name) => {
        expect(weAccept(name), `checkBranchName vs git on ${JSON.stringify(name)}`).toBe(gitAccepts(name));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects the bare "@" on purpose (git --branch outside a repository accepts it)', () => {
    expect(weAccept('@')).toBe(false);
  });

  it('on a few hand-picked edge cases', () => {
    for (const name of [
      'main',
      'feature/x',
      'a.b',
      'a/b.c',
      'a.lock.b',
      'a{b}',
      'a@b',
      'x@',
      '@a',
      'é/ü',
      '-a',
      'a-',
      'HEAD',
      'HEAD/x',
      'x/HEAD',
      '.a',
      'a/.b',
      'a.',
      'a..b',
      'a.lock',
      'a.lock/b',
      'a/',
      '/a',
      'a//b',
      'a@{b',
      'a b',
      'a~1',
      'a^',
      'a:b',
      'a?',
      'a*',
      'a[',
      'a\\b',
    ]) {
      expect(weAccept(name), JSON.stringify(name)).toBe(gitAccepts(name));
    }
  });
});
