import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, serve } from './cli-process.js';
import { git } from './helpers.js';

/**
 * Where a command goes, and what its arguments mean, without surprises: commands that work on a repository here
 * refuse a server URL instead of silently making ./store.git; `store branch -bad` is not read as `-b ad`; and a
 * leading "/" on a key means the same on the repository, over --url and over HTTP.
 */

let dir: string;
let repo: string;
let server: { url: string; stop: () => Promise<void> };
const DEAD = 'http://127.0.0.1:1';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-targets-'));
  repo = path.join(dir, 'store.git');
  expect((await cli(['init', repo])).code).toBe(0);
  server = await serve(repo);
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const paths = (rev = 'main') =>
  git(['--git-dir', repo, 'ls-tree', '-r', '--name-only', rev]).toString().trim().split('\n').filter(Boolean);

describe('local-only commands refuse a server as their target (exit 2, nothing made)', () => {
  it('init with --url or $STORE_URL creates nothing and says why', async () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'cwd-'));
    for (const [args, env, source] of [
      [['--url', server.url, 'init'], {}, '--url'],
      [['init'], { STORE_URL: server.url }, '$STORE_URL'],
      [['--url', DEAD, 'init', 'here.git'], {}, '--url'],
    ] as const) {
      const r = await cli([...args], { cwd, env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        'error: init creates a repository on this machine (a server creates its own when it starts), so it does ' +
          `not go through ${source}: run it where the repository is (--repo DIR)\n`,
      );
    }
    expect(fs.readdirSync(cwd)).toEqual([]);
    // With --repo or a directory named, $STORE_URL does not apply: that is a local init.
    expect((await cli(['--repo', 'mine.git', 'init'], { cwd, env: { STORE_URL: DEAD } })).code).toBe(0);
    expect((await cli(['init', 'named.git'], { cwd, env: { STORE_URL: DEAD } })).code).toBe(0);
    expect(fs.readdirSync(cwd).sort()).toEqual(['mine.git', 'named.git']);
  });

  it('serve, xenstored and bisect --run refuse --url and $STORE_URL too', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--url', server.url, 'serve', '--port', '0'], {}, /^error: serve serves a repository on this machine/],
      [['serve', '--port', '0'], { STORE_URL: server.url }, /\$STORE_URL/],
      [['--url', DEAD, 'xenstored', '--socket', path.join(dir, 'xs.sock')], {}, /^error: xenstored serves/],
      [['xenstored', '--socket', path.join(dir, 'xs.sock')], { STORE_URL: DEAD }, /\$STORE_URL/],
      [['bisect', '--good', 'main', '--run', 'true'], { STORE_URL: server.url }, /^error: bisect --run runs/],
    ];
    const runs = await Promise.all(cases.map(([args, env]) => cli(args, { env, cwd: dir })));
    for (const [i, r] of runs.entries()) {
      expect(r.code, `${cases[i]![0].join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(cases[i]![2]);
    }
  });

  it('--repo wins over $STORE_URL; --repo with --url is refused', async () => {
    expect((await cli(['--repo', repo, 'set', 'where', 'local'], { env: { STORE_URL: DEAD } })).code).toBe(0);
    const both = await cli(['--repo', repo, '--url', server.url, 'get', 'where']);
    expect(both).toMatchObject({ code: 2, stdout: '' });
    expect(both.stderr).toBe('error: give --repo (a repository here) or --url (a server), not both\n');
  });
});

describe('store branch -bad', () => {
  it('fails with exit 2 and a clear message instead of listing branches as -b ad', async () => {
    for (const args of [
      ['branch', '-bad'],
      ['-bad', 'branch'],
      ['branch', '--branch', 'x'],
    ]) {
      const r = await cli(['--repo', repo, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^error: store branch does not take -b\/--branch .*may not begin with "-"\n$/);
    }
    expect((await cli(['--repo', repo, 'branch', '-bad'])).stderr).toContain('(given -b ad, as "-bad" also reads)');
    // Past "--" it is the name, which git does not accept either.
    const named = await cli(['--repo', repo, 'branch', '--', '-bad']);
    expect(named).toMatchObject({ code: 2, stderr: 'error: invalid branch name "-bad": it may not start with "-"\n' });
    const http = await fetch(`${server.url}/v1/branches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: '-bad' }),
    });
    expect(http.status).toBe(400);
    expect(((await http.json()) as { error: { code: string } }).error.code).toBe('INVALID_BRANCH');
    expect(git(['--git-dir', repo, 'for-each-ref', '--format=%(refname:short)', 'refs/heads']).toString()).toBe(
      'main\n',
    );
  });
});

describe('a leading "/" on a key: the root, the same everywhere', () => {
  it('names the same key on the repository, over --url and over HTTP; "//" is INVALID_KEY everywhere', async () => {
    const local = await cli(['--repo', repo, '--json', 'set', '/lead/a', '1']);
    expect(local.code, local.stderr).toBe(0);
    expect(JSON.parse(local.stdout).key).toBe('lead/a');
    const remote = await cli(['--url', server.url, '--json', 'set', '/lead/b', '2']);
    expect(remote.code, remote.stderr).toBe(0);
    expect(JSON.parse(remote.stdout).key).toBe('lead/b');
    const put = (p: string, body: string) => fetch(`${server.url}/v1/branches/main/keys/${p}`, { method: 'PUT', body });
    for (const p of ['/lead/c', '%2Flead/d']) {
      const r = await put(p, '3');
      expect(r.status, p).toBe(201);
      expect(((await r.json()) as { key: string }).key).toBe(`lead/${p.at(-1)}`);
    }
    expect(paths().filter((p) => p.startsWith('lead/'))).toEqual(['lead/a', 'lead/b', 'lead/c', 'lead/d']);
    // Read back either way, on both sides.
    for (const target of [
      ['--repo', repo],
      ['--url', server.url],
    ]) {
      expect((await cli([...target, 'get', '/lead/a'])).stdout).toBe('1');
      expect((await cli([...target, 'ls', '/lead'])).stdout).toBe('lead/a\nlead/b\nlead/c\nlead/d\n');
    }
    // Two slashes are an empty segment: refused the same way everywhere (the client no longer strips them).
    for (const target of [
      ['--repo', repo],
      ['--url', server.url],
    ]) {
      const r = await cli([...target, 'set', '//lead/e', 'x']);
      expect(r, target[0]).toMatchObject({ code: 2, stdout: '' });
      expect(r.stderr).toBe(
        'error: invalid key "//lead/e": it has an empty segment (two slashes, or a trailing slash)\n',
      );
    }
    const twice = await put('//lead/e', 'x');
    expect(twice.status).toBe(400);
    expect(((await twice.json()) as { error: { code: string } }).error.code).toBe('INVALID_KEY');
    expect(paths()).not.toContain('lead/e');
  });
});

describe('store ls of a directory that is not there', () => {
  it('is NOT_FOUND (exit 3, HTTP 404) like a missing key, while the root of an empty branch lists empty', async () => {
    const empty = path.join(dir, 'empty.git');
    expect((await cli(['init', empty])).code).toBe(0);
    expect(await cli(['--repo', empty, 'ls'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await cli(['--repo', empty, '--json', 'ls', '-r'])).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
    expect((await cli(['--repo', repo, 'set', 'present/x', '1'])).code).toBe(0);
    for (const target of [
      ['--repo', repo],
      ['--url', server.url],
    ]) {
      for (const args of [
        ['ls', 'nosuch'],
        ['ls', '-r', 'present/nosuch'],
        ['export', 'nosuch'],
      ]) {
        const r = await cli([...target, ...args]);
        expect(r.code, `${target[0]} ${args.join(' ')}: ${r.stderr}`).toBe(3);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/^error: directory \S*nosuch not found — nothing is stored at or below it\n$/);
      }
      expect((await cli([...target, 'ls', 'present'])).stdout).toBe('present/x\n');
    }
    const http = await fetch(`${server.url}/v1/branches/main/list/nosuch`);
    expect(http.status).toBe(404);
    expect(((await http.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
