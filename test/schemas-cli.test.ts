/**
 * Schemas (`.store/schema.json`, issue 18) through the real `store` binary, on a repository and over --url against a
 * real `store serve`: `store validate` and `store bisect --invalid` on a 1,000-commit history into which a bad value
 * came at a known commit, and every CLI write that a schema refuses — set, import, a schema change itself (and
 * `--force` past it), a merge — exiting 7 with the violations, the branch head where it was and `git fsck --strict`
 * clean. The library's own tests are in test/conformance/schemas.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Violation } from '../src/index.js';
import { type CliRun, cli, serve } from './cli-process.js';
import { expectFsckClean } from './git-packs.js';
import { git, tempDir } from './helpers.js';

const MEMORY = { 'vm/*/memory': { type: 'integer', minimum: 128 } };
const SCHEMA = JSON.stringify(MEMORY);
/** The set (1-based) that writes the bad value; every set is its own commit, so it is the history's 637th commit. */
const BAD_AT = 637;

const head = (repo: string, branch = 'main') => git(['--git-dir', repo, 'rev-parse', branch]).toString().trim();
const short = (oid: string) => oid.slice(0, 10);

/** The JSON error body a failed `--json` run printed on stdout. */
function errorBody(r: CliRun): { code: string; message: string; data: { violations: Violation[]; total: number } } {
  const body = JSON.parse(r.stdout) as { error: ReturnType<typeof errorBody> };
  expect(Object.keys(body)).toEqual(['error']);
  return body.error;
}

/** Asserts a run was refused as INVALID_VALUE: exit 7, the one-line error on stderr naming every key in `keys`. */
function expectInvalid(r: CliRun, keys: string[]): void {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(7);
  expect(r.stderr).toMatch(/^error: (a value breaks|\d+ values break) the branch's schemas/);
  expect(r.stderr).toMatch(/nothing was written\n$/);
  for (const key of keys.slice(0, 3)) expect(r.stderr).toContain(key);
}

describe('store validate and store bisect --invalid on a 1,000-commit history', () => {
  let root: string;
  let repo: string;
  /** The history's commits, oldest first (rev-list --reverse). */
  let commits: string[];
  let bad: string;
  let url: string;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-schemas-cli-'));
    repo = path.join(root, 'store.git');
    const store = await openStore({ fs, dir: repo, create: true });
    // Values 256 and up, 50 VMs, one set per commit; set BAD_AT adds vm/bad/memory = 16, which no later set touches.
    const set = (i: number) =>
      i === BAD_AT ? store.set('vm/bad/memory', '16') : store.set(`vm/v${i % 50}/memory`, String(256 + i));
    const started = Date.now();
    // Concurrent sets: the writer batches them, one commit each, in the order they were made.
    await Promise.all(Array.from({ length: BAD_AT - 1 }, (_, i) => set(i + 1)));
    bad = (await set(BAD_AT)).commit;
    await Promise.all(Array.from({ length: 1000 - BAD_AT }, (_, i) => set(BAD_AT + 1 + i)));
    // Today's rule arrives after the fact: forced past the bad value still stored.
    await expect(store.set('.store/schema.json', SCHEMA)).rejects.toMatchObject({ code: 'INVALID_VALUE' });
    await store.set('.store/schema.json', SCHEMA, { force: true });
    await store.close();
    console.log(`schemas-cli: a 1,001-commit history in ${Date.now() - started} ms`);
    commits = git(['--git-dir', repo, 'rev-list', '--reverse', 'main']).toString().trim().split('\n');
    expect(commits).toHaveLength(1001);
    expect(commits[BAD_AT - 1]).toBe(bad);
    expect(git(['--git-dir', repo, 'log', '-1', '--format=%s', bad]).toString().trim()).toBe('set vm/bad/memory');
    ({ url, stop } = await serve(repo));
  });

  afterAll(async () => {
    await stop?.();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  /** The same command on the repository and over --url: the same exit code and output. */
  async function both(args: string[]): Promise<CliRun> {
    const [local, remote] = await Promise.all([cli(['--repo', repo, ...args]), cli(['--url', url, ...args])]);
    expect(remote.code, `over --url: ${remote.stderr}`).toBe(local.code);
    expect(remote.stdout, 'over --url').toBe(local.stdout);
    return local;
  }

  it('store validate exits 4 and prints the key, the problem and the rule; --json gives the report', async () => {
    const tip = head(repo);
    const r = await both(['validate']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^KEY +AT +PROBLEM +RULE$/);
    expect(lines[1]).toMatch(/^vm\/bad\/memory +\/ +must be >= 128 +vm\/\*\/memory #\/minimum$/);
    expect(lines.at(-1)).toBe(`${short(tip)}: 51 values checked against 1 schema: 1 violation`);
    expect(lines).toHaveLength(3);

    const json = await both(['--json', 'validate']);
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout)).toEqual({
      commit: tip,
      patterns: ['vm/*/memory'],
      checked: 51,
      valid: false,
      violations: [
        {
          key: 'vm/bad/memory',
          pattern: 'vm/*/memory',
          pointer: '',
          keyword: 'minimum',
          rule: '#/minimum',
          message: 'must be >= 128',
        },
      ],
    });
    // --at the head is the same report.
    expect((await cli(['--repo', repo, '--json', 'validate', '--at', tip])).stdout).toBe(json.stdout);
  });

  it('store validate --at an older commit checks it against the schemas IT declares: none, so valid', async () => {
    // Before the bad value, and after it but before the schema: neither tree declares a schema.
    for (const at of [commits[BAD_AT - 2]!, commits[999]!]) {
      const r = await both(['validate', '--at', at]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${short(at)}: 0 values checked against no schemas declared: valid\n`);
      const json = await both(['--json', 'validate', '--at', at]);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual({ commit: at, patterns: [], checked: 0, valid: true, violations: [] });
    }
    // A revision form (main~1: the last set, before the schema) too.
    expect(JSON.parse((await both(['--json', 'validate', '--at', 'main~1'])).stdout)).toMatchObject({
      commit: commits[999],
      valid: true,
    });
  });

  it('store bisect --invalid names the commit that brought the bad value, with and without --json', async () => {
    const json = await both(['--json', 'bisect', '--invalid']);
    expect(json.code, json.stderr).toBe(0);
    const r = JSON.parse(json.stdout) as {
      firstBad: { id: string; subject: string };
      changes: { key: string; kind: string }[];
      tested: { commit: string; verdict: string }[];
      violations: Violation[];
    };
    expect(r.firstBad.id).toBe(bad);
    expect(r.firstBad.subject).toBe('set vm/bad/memory');
    expect(r.changes).toEqual([expect.objectContaining({ key: 'vm/bad/memory', kind: 'added' })]);
    expect(r.violations).toEqual([
      expect.objectContaining({ key: 'vm/bad/memory', pattern: 'vm/*/memory', keyword: 'minimum' }),
    ]);
    // O(log n) snapshots of 1,001 commits, not one each.
    expect(r.tested.length).toBeLessThanOrEqual(13);
    expect(r.tested.find((t) => t.commit === bad)?.verdict).toBe('bad');
    expect(r.tested.find((t) => t.commit === commits[BAD_AT - 2])?.verdict).toBe('good');

    const text = await both(['bisect', '--invalid']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.split('\n')[0]).toBe(`first bad commit: ${bad}`);
    expect(text.stdout).toContain(`commit ${bad}`);
    expect(text.stdout).toMatch(/^A +vm\/bad\/memory /m);
    expect(text.stdout).toMatch(/^vm\/bad\/memory +\/ +must be >= 128 +vm\/\*\/memory #\/minimum$/m);

    // A good end given: the same answer, from fewer commits.
    const from = await both(['--json', 'bisect', '--invalid', '--good', commits[400]!]);
    expect(from.code, from.stderr).toBe(0);
    expect((JSON.parse(from.stdout) as typeof r).firstBad.id).toBe(bad);
  });

  it('leaves the repository as git fsck --strict wants it', () => {
    expectFsckClean(repo);
  });
});

/** A new repository (via the CLI) with the schema and valid values: its path. */
async function typedRepo(values: Record<string, string> = { 'vm/web1/memory': '2048' }): Promise<string> {
  const repo = path.join(tempDir(), 'store.git');
  expect((await cli(['init', repo])).code).toBe(0);
  const schema = await cli(['--repo', repo, 'set', '.store/schema.json', SCHEMA]);
  expect(schema.code, schema.stderr).toBe(0);
  for (const [key, value] of Object.entries(values)) {
    const r = await cli(['--repo', repo, 'set', key, value]);
    expect(r.code, r.stderr).toBe(0);
  }
  return repo;
}

describe('CLI writes that break a schema', () => {
  it('store set of a value the schema refuses exits 7, writes nothing; --json has the violations', async () => {
    const repo = await typedRepo();
    const before = head(repo);
    expectInvalid(await cli(['--repo', repo, 'set', 'vm/x/memory', '64']), ['vm/x/memory']);
    const json = await cli(['--repo', repo, '--json', 'set', 'vm/x/memory', '64']);
    expect(json.code).toBe(7);
    const e = errorBody(json);
    expect(e.code).toBe('INVALID_VALUE');
    expect(e.message).toMatch(/vm\/x\/memory: must be >= 128/);
    expect(e.data).toEqual({
      violations: [
        {
          key: 'vm/x/memory',
          pattern: 'vm/*/memory',
          pointer: '',
          keyword: 'minimum',
          rule: '#/minimum',
          message: 'must be >= 128',
        },
      ],
      total: 1,
    });
    // Not JSON at all, where the schema wants an integer; from stdin too.
    const text = await cli(['--repo', repo, '--json', 'set', 'vm/web1/memory', '-'], { input: '2048 MiB' });
    expect(text.code).toBe(7);
    expect(errorBody(text).data.violations).toEqual([
      expect.objectContaining({ key: 'vm/web1/memory', keyword: 'json' }),
    ]);
    expect(head(repo)).toBe(before);
    expect((await cli(['--repo', repo, 'get', 'vm/x/memory'])).code).toBe(3);
    expect((await cli(['--repo', repo, 'get', 'vm/web1/memory'])).stdout).toBe('2048');
    expectFsckClean(repo);

    // Over --url the same exit code and the same error body (HTTP's 422).
    const served = await serve(repo);
    try {
      const remote = await cli(['--url', served.url, '--json', 'set', 'vm/x/memory', '64']);
      expect(remote.code, remote.stderr).toBe(7);
      expect(errorBody(remote)).toEqual(e);
      // --force adopts schemas; it does not let a value past them.
      expect((await cli(['--url', served.url, 'set', '--force', 'vm/x/memory', '64'])).code).toBe(7);
      const ok = await cli(['--url', served.url, 'set', 'vm/x/memory', '128']);
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await served.stop();
    }
    expect(head(repo)).not.toBe(before);
    expectFsckClean(repo);
  });

  it('store import of a document with one bad value exits 7 and writes none of it; a valid one is imported', async () => {
    const repo = await typedRepo();
    const before = head(repo);
    const dir = tempDir();
    const file = path.join(dir, 'vms.json');
    fs.writeFileSync(file, JSON.stringify({ vm: { a: { memory: 512 }, b: { memory: 12 } }, note: 'free text' }));
    expectInvalid(await cli(['--repo', repo, 'import', file]), ['vm/b/memory']);
    const json = await cli(['--repo', repo, '--json', 'import', file]);
    expect(json.code).toBe(7);
    expect(errorBody(json).data.violations.map((v) => [v.key, v.keyword])).toEqual([['vm/b/memory', 'minimum']]);
    // With --prefix the schema applies to the keys as they would land.
    const nested = path.join(dir, 'nested.json');
    fs.writeFileSync(nested, JSON.stringify({ c: { memory: 100 } }));
    const prefixed = await cli(['--repo', repo, '--json', 'import', nested, '--prefix', 'vm']);
    expect(prefixed.code).toBe(7);
    expect(errorBody(prefixed).data.violations.map((v) => v.key)).toEqual(['vm/c/memory']);
    // --force does not let values past the schema either.
    expect((await cli(['--repo', repo, 'import', '--force', file])).code).toBe(7);
    expect(head(repo)).toBe(before);
    for (const key of ['vm/a/memory', 'vm/b/memory', 'note']) {
      expect((await cli(['--repo', repo, 'get', key])).code, key).toBe(3);
    }
    expectFsckClean(repo);

    fs.writeFileSync(file, JSON.stringify({ vm: { a: { memory: 512 }, b: { memory: 4096 } }, note: 'free text' }));
    const ok = await cli(['--repo', repo, '--json', 'import', file]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ commit: head(repo), keys: 3 });
    expect((await cli(['--repo', repo, 'get', 'vm/b/memory'])).stdout).toBe('4096');
    expect((await cli(['--repo', repo, 'validate'])).code).toBe(0);
    expectFsckClean(repo);
  });

  it('store set of a tighter .store/schema.json is refused, listing the stored values it breaks; --force adopts it', async () => {
    const repo = await typedRepo({
      'vm/a/memory': '256',
      'vm/b/memory': '512',
      'vm/c/memory': '2048',
      'vm/d/memory': '1000',
    });
    const before = head(repo);
    const tighter = JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 1024 } });
    const refused = await cli(['--repo', repo, 'set', '.store/schema.json', tighter]);
    expectInvalid(refused, ['vm/a/memory', 'vm/b/memory', 'vm/d/memory']);
    expect(refused.stderr).toMatch(/^error: 3 values break/);
    const json = await cli(['--repo', repo, '--json', 'set', '.store/schema.json', tighter]);
    expect(json.code).toBe(7);
    const e = errorBody(json);
    expect(e.code).toBe('INVALID_VALUE');
    expect(e.data.total).toBe(3);
    expect(e.data.violations.map((v) => v.key).sort()).toEqual(['vm/a/memory', 'vm/b/memory', 'vm/d/memory']);
    expect(e.data.violations.every((v) => v.message === 'must be >= 1024')).toBe(true);
    expect(head(repo)).toBe(before);
    expect((await cli(['--repo', repo, 'get', '.store/schema.json'])).stdout).toBe(SCHEMA);

    const forced = await cli(['--repo', repo, 'set', '--force', '.store/schema.json', tighter]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout.trim()).toBe(head(repo));
    expect((await cli(['--repo', repo, 'get', '.store/schema.json'])).stdout).toBe(tighter);
    // The values stand, and validate lists them.
    const report = await cli(['--repo', repo, '--json', 'validate']);
    expect(report.code).toBe(4);
    expect((JSON.parse(report.stdout) as { violations: Violation[] }).violations.map((v) => v.key).sort()).toEqual([
      'vm/a/memory',
      'vm/b/memory',
      'vm/d/memory',
    ]);
    // A write that leaves the schemas alone is checked on what it changes only.
    expect((await cli(['--repo', repo, 'set', 'vm/c/memory', '4096'])).code).toBe(0);
    expect((await cli(['--repo', repo, 'set', 'vm/a/memory', '512'])).code).toBe(7);
    expectFsckClean(repo);
  });

  it('store merge of a branch whose schema change main’s values break is refused (exit 7), and taken with --force', async () => {
    const repo = await typedRepo({ 'vm/a/memory': '256' });
    expect((await cli(['--repo', repo, 'branch', 'dev'])).code).toBe(0);
    const tighter = JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 1024 } });
    // On dev, the tighter schema and a value that meets it; on main meanwhile a value that does not.
    expect((await cli(['--repo', repo, '-b', 'dev', 'set', '--force', '.store/schema.json', tighter])).code).toBe(0);
    expect((await cli(['--repo', repo, '-b', 'dev', 'set', 'vm/a/memory', '2048'])).code).toBe(0);
    expect((await cli(['--repo', repo, 'set', 'vm/b/memory', '512'])).code).toBe(0);
    const before = head(repo);
    const refused = await cli(['--repo', repo, '--json', 'merge', 'dev']);
    expect(refused.code, refused.stderr).toBe(7);
    expect(errorBody(refused).data.violations.map((v) => v.key)).toEqual(['vm/b/memory']);
    expect(head(repo)).toBe(before);
    const forced = await cli(['--repo', repo, '--json', 'merge', '--force', 'dev']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ commit: head(repo), outcome: 'merged' });
    expect((await cli(['--repo', repo, 'get', '.store/schema.json'])).stdout).toBe(tighter);
    expectFsckClean(repo);
  });
});
