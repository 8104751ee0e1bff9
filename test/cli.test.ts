import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { git, gitEnv, gitSubjects, tempDir } from './helpers.js';

/**
 * End-to-end tests of the `store` binary: every call spawns the real bin/store.js (which runs the compiled
 * dist/cli/main.js, so `npm run build` first) against a temporary bare repository, and checks stdout, stderr and the
 * exit code — and, where it matters, what plain git sees in the repository afterwards.
 */

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));
const DIST_MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/cli/', import.meta.url));

const AUTHOR = { name: 'Cli Tester', email: 'cli@tester.test' };
const HINT = '(run store help <command> for its options and examples)';
const OID = /^[0-9a-f]{40}$/;

/** The environment every store process gets: a known author, no colour, and nothing inherited that changes behaviour. */
function storeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...gitEnv,
    GIT_AUTHOR_NAME: AUTHOR.name,
    GIT_AUTHOR_EMAIL: AUTHOR.email,
    NO_COLOR: '1',
    ...extra,
  };
  if (!('STORE_REPO' in extra)) delete env.STORE_REPO;
  if (!('STORE_DEBUG' in extra)) delete env.STORE_DEBUG;
  return env;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout as raw bytes (for binary values). */
  raw: Buffer;
}

interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs `node bin/store.js ...args` and waits for it. */
function store(args: string[], options: RunOptions = {}): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: options.input ?? '',
    env: storeEnv(options.env),
    cwd: options.cwd,
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

/** The same, without blocking, so independent calls (help pages) can run side by side. */
function storeAsync(args: string[], options: RunOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: storeEnv(options.env), cwd: options.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const raw = Buffer.concat(out);
      resolve({ code, stdout: raw.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), raw });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Asserts success with nothing on stderr and returns stdout. */
function ok(args: string[], options: RunOptions = {}): string {
  const r = store(args, options);
  expect(r, `store ${args.join(' ')}`).toMatchObject({ code: 0, stderr: '' });
  return r.stdout;
}

/** Asserts success and that stdout is exactly one commit id; returns it. */
function commitOf(args: string[], options: RunOptions = {}): string {
  const out = ok(args, options);
  expect(out).toMatch(/^[0-9a-f]{40}\n$/);
  return out.trim();
}

/**
 * Asserts a failure reported the CLI's way: the exit code, one `error:` line first on stderr (commander's usage errors
 * may add its one "run store help" hint line, nothing else), no stack trace, no colour.
 */
function fails(r: Result, code: number, message?: RegExp): string {
  expect(r.code, `stderr: ${r.stderr}`).toBe(code);
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  expect(lines[0]).toMatch(/^error: \S/);
  expect(lines.filter((l) => l.startsWith('error:'))).toHaveLength(1);
  for (const extra of lines.slice(1)) expect(extra).toBe(HINT);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toContain('\u001b[');
  if (message) expect(lines[0]).toMatch(message);
  return lines[0]!;
}

/** Real git's view of a ref or object name. */
const rev = (repo: string, name: string) => git(['--git-dir', repo, 'rev-parse', '--verify', name]).toString().trim();
const commitCount = (repo: string, ref = 'main') =>
  Number(git(['--git-dir', repo, 'rev-list', '--count', ref]).toString().trim());

/** A fresh, initialised store; returns its path. */
function newStore(): string {
  const repo = path.join(tempDir('gitstore-cli-'), 'store.git');
  expect(ok(['--repo', repo, 'init'])).toBe(`created store at ${repo} (default branch main)\n`);
  return repo;
}

/** Splits table output into rows of cells (columns are two or more spaces apart). */
const rows = (out: string) =>
  out
    .trimEnd()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.trim().split(/\s{2,}/));

beforeAll(() => {
  if (!fs.existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` before these tests`);
});

describe('store CLI: a whole session', () => {
  it('init, set, get, branch, merge, log, diff, show, revert, ls, branch -d — and real git agrees', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];

    const c1 = commitOf(s('set', 'vm/web1/memory', '2048'));
    const c2 = commitOf(s('set', 'vm/web1/cpu', '2'));
    expect(rev(repo, 'main')).toBe(c2);
    expect(rev(repo, 'main~1')).toBe(c1);
    // get prints the raw value: no newline added.
    expect(ok(s('get', 'vm/web1/memory'))).toBe('2048');

    expect(ok(s('branch', 'dev'))).toBe(`created branch dev at ${c2.slice(0, 10)}\n`);
    const d1 = commitOf(s('--branch', 'dev', 'set', 'vm/web2/memory', '1024'));
    expect(rev(repo, 'dev')).toBe(d1);
    expect(ok(s('-b', 'dev', 'get', 'vm/web2/memory'))).toBe('1024');
    fails(store(s('get', 'vm/web2/memory')), 3, /vm\/web2\/memory not found/); // not on main yet

    const c3 = commitOf(s('set', 'vm/web1/memory', '4096'));
    const c4 = commitOf(s('rm', 'vm/web1/cpu'));

    const merged = commitOf(s('merge', 'dev'));
    expect(rev(repo, 'main')).toBe(merged);
    expect(git(['--git-dir', repo, 'rev-list', '--parents', '-n', '1', 'main']).toString().trim()).toBe(
      `${merged} ${c4} ${d1}`,
    );
    expect(ok(s('get', 'vm/web2/memory'))).toBe('1024');
    expect(git(['--git-dir', repo, 'cat-file', 'blob', 'main:vm/web1/memory']).toString()).toBe('4096');

    // log: newest first, the same first-parent subjects plain git shows.
    const subjects = gitSubjects(repo);
    expect(subjects).toEqual([
      'merge dev into main',
      'delete vm/web1/cpu',
      'set vm/web1/memory',
      'set vm/web1/cpu',
      'set vm/web1/memory',
    ]);
    const log = rows(ok(s('log')));
    expect(log.map((r) => r.at(-1))).toEqual(subjects);
    expect(log.map((r) => r[0])).toEqual([merged, c4, c3, c2, c1].map((c) => c.slice(0, 10)));
    for (const r of log) expect(r[2]).toBe(AUTHOR.name);

    // log KEY -n 1: the newest commit that touched the key.
    expect(rows(ok(s('log', 'vm/web1/memory', '-n', '1')))).toEqual([
      [c3.slice(0, 10), expect.stringMatching(/^\d{4}-\d\d-\d\dT/), AUTHOR.name, 'set vm/web1/memory'],
    ]);

    // diff against main~3 (= c2) shows one of each kind.
    const diff = rows(ok(s('diff', 'main~3')));
    expect(diff.map((r) => [r[0], r[1]])).toEqual(
      expect.arrayContaining([
        ['M', 'vm/web1/memory'],
        ['D', 'vm/web1/cpu'],
        ['A', 'vm/web2/memory'],
      ]),
    );
    expect(diff).toHaveLength(3);
    expect(rows(ok(s('diff', 'main~3', 'main~2')))).toEqual([['M', 'vm/web1/memory', expect.stringContaining('→')]]);
    // --prefix naming a key gives that key's change, as --prefix naming its directory does (issue 13, defect 3).
    expect(rows(ok(s('diff', 'main~3', '--prefix', 'vm/web1/memory'))).map((r) => [r[0], r[1]])).toEqual([
      ['M', 'vm/web1/memory'],
    ]);
    expect(rows(ok(s('diff', 'main~3', '--prefix', 'vm/web1/cpu'))).map((r) => [r[0], r[1]])).toEqual([
      ['D', 'vm/web1/cpu'],
    ]);
    expect(ok(s('diff', 'main~3', '--prefix', 'vm/web1/mem'))).toBe('');

    // show: the merge commit, its parents, author and what it changed relative to its first parent.
    const show = ok(s('show', 'main'));
    expect(show).toContain(`commit ${merged}\n`);
    expect(show).toContain(`merge:  ${c4.slice(0, 10)} ${d1.slice(0, 10)}\n`);
    expect(show).toContain(`author: ${AUTHOR.name} <${AUTHOR.email}>\n`);
    expect(show).toContain('    merge dev into main\n');
    expect(show).toMatch(/^A {2}vm\/web2\/memory {2}/m);

    // revert the resize: a new commit puts the old value back.
    const reverted = commitOf(s('revert', c3));
    expect(ok(s('get', 'vm/web1/memory'))).toBe('2048');
    expect(gitSubjects(repo)[0]).toBe(`revert ${c3}`);
    expect(git(['--git-dir', repo, 'rev-parse', 'main~1']).toString().trim()).toBe(merged);
    expect(rev(repo, 'main')).toBe(reverted);

    // ls: one level, directories end in "/"; -r --json: every value.
    expect(ok(s('ls'))).toBe('vm/\n');
    expect(ok(s('ls', 'vm'))).toBe('vm/web1/\nvm/web2/\n');
    expect(JSON.parse(ok(s('ls', '-r', '--json')))).toEqual([
      { key: 'vm/web1/memory', type: 'value' },
      { key: 'vm/web2/memory', type: 'value' },
    ]);

    // branch: the default one is marked with "*".
    expect(rows(ok(s('branch')))).toEqual([
      ['dev', d1.slice(0, 10)],
      ['* main', reverted.slice(0, 10)],
    ]);
    expect(ok(s('branch', '-d', 'dev'))).toBe('deleted branch dev\n');
    expect(rows(ok(s('branch')))).toEqual([['* main', reverted.slice(0, 10)]]);
    expect(git(['--git-dir', repo, 'for-each-ref', '--format=%(refname)']).toString()).toBe('refs/heads/main\n');

    // The repository is a healthy git repository throughout.
    git(['--git-dir', repo, 'fsck', '--strict', '--no-progress']);
  });
});

describe('store CLI: merge conflicts', () => {
  it('exits 4 naming the key, writes nothing, offers JSON, and --strategy theirs resolves', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];
    commitOf(s('set', 'app/mode', 'base'));
    ok(s('branch', 'dev'));
    commitOf(s('set', 'app/mode', 'ours'));
    commitOf(s('-b', 'dev', 'set', 'app/mode', 'theirs'));
    commitOf(s('-b', 'dev', 'set', 'app/other', 'fine'));
    const head = rev(repo, 'main');
    const before = commitCount(repo);

    const r = store(s('merge', 'dev'));
    fails(r, 4, /conflict/);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    const table = rows(r.stdout);
    expect(table[0]).toEqual(['KIND', 'KEY', 'BASE', 'OURS', 'THEIRS']);
    expect(table.slice(1)).toEqual([
      [
        'both-modified',
        'app/mode',
        rev(repo, 'main~1:app/mode').slice(0, 10),
        rev(repo, 'main:app/mode').slice(0, 10),
        rev(repo, 'dev:app/mode').slice(0, 10),
      ],
    ]);
    expect(rev(repo, 'main')).toBe(head);
    expect(commitCount(repo)).toBe(before);

    const j = store(s('--json', 'merge', 'dev'));
    fails(j, 4);
    const doc = JSON.parse(j.stdout);
    expect(doc.error.code).toBe('CONFLICT');
    expect(doc.error.message).toBe('merging dev into main: 1 conflicting key; nothing was written');
    // The conflicts sit where HTTP puts them: error.data.conflicts.
    expect(Object.keys(doc)).toEqual(['error']);
    expect(doc.error.data.conflicts).toEqual([
      {
        key: 'app/mode',
        kind: 'both-modified',
        base: rev(repo, 'main~1:app/mode'),
        ours: rev(repo, 'main:app/mode'),
        theirs: rev(repo, 'dev:app/mode'),
      },
    ]);
    expect(rev(repo, 'main')).toBe(head);

    fails(store(s('merge', 'dev', '--strategy', 'nonsense')), 2, /unknown strategy nonsense/);
    expect(rev(repo, 'main')).toBe(head);

    const merged = commitOf(s('merge', 'dev', '--strategy', 'theirs'));
    expect(rev(repo, 'main')).toBe(merged);
    expect(rev(repo, 'main^1')).toBe(head);
    expect(rev(repo, 'main^2')).toBe(rev(repo, 'dev'));
    expect(ok(s('get', 'app/mode'))).toBe('theirs');
    expect(ok(s('get', 'app/other'))).toBe('fine');

    // Merging again has nothing to do.
    expect(JSON.parse(ok(s('--json', 'merge', 'dev')))).toEqual({ commit: merged, outcome: 'up-to-date' });
  });
});

describe('store CLI: values from stdin, binary values, --json and --if-match', () => {
  it('reads stdin for `set KEY` and `set KEY -`, byte-exact for binary values', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];

    commitOf(s('set', 'from/stdin'), { input: 'line one\nline two\n' });
    expect(ok(s('get', 'from/stdin'))).toBe('line one\nline two\n');
    commitOf(s('set', 'from/dash', '-'), { input: 'dashed' });
    expect(ok(s('get', 'from/dash'))).toBe('dashed');

    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const binCommit = commitOf(s('set', 'blob/all-bytes'), { input: bytes });
    const got = store(s('get', 'blob/all-bytes'));
    expect(got).toMatchObject({ code: 0, stderr: '' });
    expect(got.raw.equals(bytes)).toBe(true);
    expect(git(['--git-dir', repo, 'cat-file', 'blob', 'main:blob/all-bytes']).equals(bytes)).toBe(true);

    const bin = JSON.parse(ok(s('get', 'blob/all-bytes', '--json')));
    expect(bin).toEqual({
      key: 'blob/all-bytes',
      value: expect.any(String),
      encoding: 'base64',
      oid: rev(repo, 'main:blob/all-bytes'),
      commit: binCommit,
    });
    expect(Buffer.from(bin.value, 'base64').equals(bytes)).toBe(true);

    // `commit` is the commit the read looked at: the branch head, or the revision given with --at.
    const text = JSON.parse(ok(s('get', 'from/dash', '--json')));
    expect(Object.keys(text)).toEqual(['key', 'value', 'oid', 'commit']);
    expect(text).toEqual({ key: 'from/dash', value: 'dashed', oid: rev(repo, 'main:from/dash'), commit: binCommit });
    expect(JSON.parse(ok(s('get', 'from/stdin', '--json', '--at', 'main~2')))).toEqual({
      key: 'from/stdin',
      value: 'line one\nline two\n',
      oid: rev(repo, 'main:from/stdin'),
      commit: rev(repo, 'main~2'),
      // Read at a revision: its commit's time as well (issue 13: with --nearest it may be older than --at).
      time: git(
        ['--git-dir', repo, 'log', '-1', '--format=%cd', '--date=format-local:%Y-%m-%dT%H:%M:%S.000Z', 'main~2'],
        {
          env: { ...gitEnv, TZ: 'UTC' },
        },
      )
        .toString()
        .trim(),
    });
  });

  it('--if-match: a stale oid fails with 4 and writes nothing; the current one succeeds', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];
    const first = JSON.parse(ok(s('--json', 'set', 'lock/owner', 'alice')));
    expect(first).toEqual({ commit: expect.stringMatching(OID), key: 'lock/owner', oid: rev(repo, 'main:lock/owner') });
    const { oid } = JSON.parse(ok(s('get', 'lock/owner', '--json')));
    commitOf(s('set', 'lock/owner', 'bob'));
    const head = rev(repo, 'main');

    fails(store(s('set', 'lock/owner', 'carol', '--if-match', oid)), 4, /re-read it and retry/);
    expect(rev(repo, 'main')).toBe(head);
    expect(ok(s('get', 'lock/owner'))).toBe('bob');

    const current = rev(repo, 'main:lock/owner');
    commitOf(s('set', 'lock/owner', 'carol', '--if-match', current));
    expect(ok(s('get', 'lock/owner'))).toBe('carol');
  });
});

describe('store CLI: import and export', () => {
  /** No carriage-return redraws, no [###...] bars: progress is only for terminals. */
  const noProgress = (r: Result) => {
    for (const text of [r.stdout, r.stderr]) {
      expect(text).not.toContain('\r');
      expect(text).not.toMatch(/\[[#.]+\]/);
      expect(text).not.toContain('importing');
    }
  };

  it('imports a nested JSON document in one commit and exports the same document', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];
    commitOf(s('set', 'unrelated', 'x'));
    const file = path.join(FIXTURES, 'doc.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));

    const before = commitCount(repo);
    const r = store(s('--json', 'import', file, '--prefix', 'cfg/prod'));
    expect(r).toMatchObject({ code: 0, stderr: '' });
    noProgress(r);
    const imported = JSON.parse(r.stdout);
    expect(imported).toEqual({ commit: rev(repo, 'main'), keys: 8 });
    expect(commitCount(repo)).toBe(before + 1);

    expect(JSON.parse(ok(s('export', 'cfg/prod')))).toEqual(doc);
    // Exporting everything nests the prefix; the unrelated key is untouched.
    expect(JSON.parse(ok(s('export')))).toEqual({ unrelated: 'x', cfg: { prod: doc } });
    expect(ok(s('get', 'cfg/prod/web1/labels/multi'))).toBe('line one\nline two\n');
  });

  it('imports YAML (and JSON from stdin) in one commit each, exports YAML that parses back to the same document', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];
    const file = path.join(FIXTURES, 'doc.yaml');
    const doc = YAML.parse(fs.readFileSync(file, 'utf8'));

    const r = store(s('import', file, '--prefix', 'app', '-m', 'initial load'));
    expect(r).toMatchObject({ code: 0, stderr: '' });
    noProgress(r);
    expect(r.stdout.trim()).toBe(rev(repo, 'main'));
    expect(commitCount(repo)).toBe(1);
    expect(git(['--git-dir', repo, 'log', '-1', '--format=%b', 'main']).toString().trim()).toBe('initial load');

    const yamlOut = ok(s('export', 'app', '--format', 'yaml'));
    expect(YAML.parse(yamlOut)).toEqual(doc);
    expect(JSON.parse(ok(s('export', 'app')))).toEqual(doc);

    const piped = store(s('import', '-', '--prefix', 'piped'), { input: JSON.stringify({ a: { b: 'c' } }) });
    expect(piped).toMatchObject({ code: 0, stderr: '' });
    noProgress(piped);
    expect(commitCount(repo)).toBe(2);
    expect(JSON.parse(ok(s('export', 'piped')))).toEqual({ a: { b: 'c' } });
  });
});

describe('store CLI: exit codes and error messages', () => {
  it('maps each kind of failure to its exit code with one error line and no stack trace', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];
    commitOf(s('set', 'vm/web1/memory', '2048'));
    ok(s('branch', 'dev'));
    const head = rev(repo, 'main');
    const dir = path.dirname(repo);

    // 1: a failure the store did not raise on purpose (an I/O error).
    fails(store(s('import', path.join(dir, 'missing.json'))), 1, /missing\.json: no such file or directory$/);
    // 5: not allowed (HTTP 403).
    fails(store(s('branch', '-d', 'main')), 5, /main is the default branch and cannot be deleted/);

    // 2: how the command was called.
    fails(store(s('--bogus', 'get', 'k')), 2, /unknown option '--bogus'/);
    fails(store(s('get')), 2, /missing required argument 'key'/);
    fails(store(s('frobnicate')), 2, /unknown command 'frobnicate'/);
    fails(store(s('get', 'a//b')), 2, /^error: invalid key "a\/\/b"/);
    fails(store(s('set', 'a//b', 'v')), 2, /invalid key/);
    fails(store(s('log', '-n', '0')), 2, /-n takes a whole number/);
    fails(store(s('log', '-n', 'lots')), 2, /-n takes a whole number/);
    fails(store(s('export', '--format', 'xml')), 2, /--format is json or yaml/);
    fails(store(s('--author', 'nobody', 'set', 'k', 'v')), 2, /--author must look like "Name <email>"/);
    fails(store(s('branch', '-d')), 2, /needs the name/);
    fails(store(s('branch', 'bad..name')), 2, /invalid branch name "bad\.\.name"/);
    fs.writeFileSync(path.join(dir, 'broken.json'), '{"a": ');
    fails(store(s('import', path.join(dir, 'broken.json'))), 2, /broken\.json is not valid JSON/);

    // 3: something named does not exist.
    fails(store(s('get', 'vm/web1/disk')), 3, /key vm\/web1\/disk not found/);
    fails(store(s('get', 'vm/web1/memory', '--at', 'nosuchrev')), 3, /revision nosuchrev not found/);
    fails(store(s('show', 'main~9')), 3, /not found/);
    fails(store(s('-b', 'ghost', 'get', 'vm/web1/memory')), 3, /branch ghost not found/);
    const missing = path.join(dir, 'nowhere.git');
    fails(store(['--repo', missing, 'get', 'k']), 3, /nowhere\.git.*store init.*--repo/);
    // Without --repo the default is ./store.git (or $STORE_REPO).
    fails(store(['get', 'k'], { cwd: dir, env: { STORE_REPO: missing } }), 3, /store init.*--repo/);
    fails(store(['log'], { cwd: path.dirname(dir) }), 3, /store\.git.*store init.*--repo/);
    expect(store(['get', 'vm/web1/memory'], { cwd: dir })).toMatchObject({ code: 0, stdout: '2048' });

    // 4: a conflict with what is there (merge conflicts and --if-match are covered above), as HTTP's 409.
    fails(store(s('set', 'vm/web1', '1')), 4, /^error: vm\/web1 is a directory/);
    fails(store(s('set', 'vm/web1/memory/x', '1')), 4, /is a value, not a directory/);
    fails(store(s('ls', 'vm/web1/memory')), 4, /is a value, not a directory; get it instead/);
    // Like git init, init on an existing store changes nothing and succeeds; another default branch is a conflict.
    expect(store(s('init'))).toMatchObject({
      code: 0,
      stdout: `store at ${repo} exists already (default branch main); nothing changed\n`,
    });
    expect(JSON.parse(ok(['--json', 'init', repo]))).toEqual({ repository: repo, branch: 'main', created: false });
    fails(
      store(['init', repo, '--default-branch', 'trunk']),
      4,
      /already exists at .* with default branch main, not trunk/,
    );
    fails(store(s('branch', 'dev')), 4);
    fails(store(s('set', 'vm/web1/memory', '1', '--if-match', '0'.repeat(40))), 4, /re-read it and retry/);

    // None of the failures wrote anything.
    expect(rev(repo, 'main')).toBe(head);
    expect(commitCount(repo)).toBe(1);
  });

  it('prints the stack trace only with STORE_DEBUG=1', () => {
    const repo = newStore();
    const plain = store(['--repo', repo, 'get', 'nope']);
    fails(plain, 3);
    expect(plain.stderr).toBe('error: key nope not found\n');

    const debug = store(['--repo', repo, 'get', 'nope'], { env: { STORE_DEBUG: '1' } });
    expect(debug.code).toBe(3);
    expect(debug.stderr.split('\n')[0]).toBe('error: key nope not found');
    expect(debug.stderr).toMatch(/^\s+at /m);
  });
});

describe('store CLI: help', () => {
  it('store --help and store help set show options and examples', () => {
    const top = store(['--help']);
    expect(top).toMatchObject({ code: 0, stderr: '' });
    for (const text of ['Usage: store', 'Options:', '--repo <dir>', '--json', 'Commands:', 'Examples:']) {
      expect(top.stdout).toContain(text);
    }
    const set = store(['help', 'set']);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    for (const text of ['Usage: store set', 'Options:', '--if-match <oid>', 'Examples:', '$ store set']) {
      expect(set.stdout).toContain(text);
    }
    expect(store(['--version'])).toMatchObject({ code: 0, stdout: '0.1.0\n', stderr: '' });
  });

  it('every command listed in store --help has a help page with examples', async () => {
    const top = ok(['--help']);
    const section = top.slice(top.indexOf('Commands:'), top.indexOf('Examples:'));
    const commands = [...section.matchAll(/^ {2}([a-z][\w-]*)\b/gm)].map((m) => m[1]!);
    expect(commands).toEqual(expect.arrayContaining(['init', 'get', 'set', 'merge', 'log', 'import', 'export']));
    expect(commands).toContain('help');
    const pages = commands;
    const results = await Promise.all(pages.map((c) => storeAsync(['help', c])));
    for (const [i, r] of results.entries()) {
      const command = pages[i]!;
      expect(r, `store help ${command}`).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout).toContain(`Usage: store ${command}`);
      expect(r.stdout).toMatch(/\nExamples:\n {2}\$ store /);
    }
    const unknown = await storeAsync(['help', 'nosuch']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe("error: unknown command 'nosuch'; `store --help` lists them\n");
  });
});

describe('store CLI: authorship and messages', () => {
  it('--author sets the commit author, -m adds the body; otherwise GIT_AUTHOR_* is used', () => {
    const repo = newStore();
    const s = (...args: string[]) => ['--repo', repo, ...args];
    commitOf(s('--author', 'Ada <ada@example.org>', '-m', 'why', 'set', 'k', 'v'));
    const fmt = (f: string) =>
      git(['--git-dir', repo, 'log', '-1', `--format=${f}`, 'main'])
        .toString()
        .trim();
    expect(fmt('%an <%ae>')).toBe('Ada <ada@example.org>');
    expect(fmt('%s')).toBe('set k');
    expect(fmt('%b')).toBe('why');

    commitOf(s('rm', 'k', '--message', 'cleanup'));
    expect(fmt('%an <%ae>')).toBe(`${AUTHOR.name} <${AUTHOR.email}>`);
    expect(fmt('%B')).toBe('delete k\n\ncleanup');
    expect(ok(s('show', 'main'))).toContain('    delete k\n\n    cleanup\n');
  });
});
