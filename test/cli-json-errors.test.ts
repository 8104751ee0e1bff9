import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, cli, serve } from './cli-process.js';
import { git } from './helpers.js';

/**
 * With --json, every failure is one document on stdout in the shape HTTP answers — `{"error":{"code","message",
 * "data"}}` — and the exit code is still the error's; the one-line message stays on stderr for people. Merge
 * conflicts sit under error.data.conflicts, as in the HTTP body.
 */

let dir: string;
let repo: string;
let server: { url: string; stop: () => Promise<void> };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-json-errors-'));
  repo = path.join(dir, 'store.git');
  const r = (args: string[]) => cli(['--repo', repo, ...args]);
  expect((await r(['init'])).code).toBe(0);
  expect((await r(['set', 'app/mode', 'base'])).code).toBe(0);
  expect((await r(['branch', 'dev'])).code).toBe(0);
  expect((await r(['-b', 'dev', 'set', 'app/mode', 'dev'])).code).toBe(0);
  expect((await r(['set', 'app/mode', 'main'])).code).toBe(0);
  server = await serve(repo);
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The error document of a failed --json run, after checking exit code, stderr line and shape. */
function errorOf(
  r: CliRun,
  exit: number,
  code: string,
): { code: string; message: string; data: Record<string, unknown> } {
  expect(r.code, r.stderr).toBe(exit);
  expect(r.stderr).toMatch(/^error: \S/);
  expect(r.stdout.endsWith('\n')).toBe(true);
  const doc = JSON.parse(r.stdout);
  expect(Object.keys(doc)).toEqual(['error']);
  expect(Object.keys(doc.error).sort()).toEqual(['code', 'data', 'message']);
  expect(doc.error.code).toBe(code);
  // The same words on both channels: stdout for programs, stderr for people.
  expect(r.stderr).toContain(doc.error.message.split(' (set STORE_DEBUG')[0]);
  return doc.error;
}

describe('store --json: errors as documents', () => {
  it('prints a store error (NOT_FOUND) with its data, the same locally and over --url', async () => {
    const local = await cli(['--repo', repo, '--json', 'get', 'nope']);
    const remote = await cli(['--url', server.url, '--json', 'get', 'nope']);
    expect(errorOf(local, 3, 'NOT_FOUND')).toEqual({
      code: 'NOT_FOUND',
      message: 'key nope not found',
      data: { kind: 'key', name: 'nope' },
    });
    expect(remote).toEqual(local);
    // Without --json, stdout stays empty.
    expect(await cli(['--repo', repo, 'get', 'nope'])).toEqual({
      code: 3,
      stdout: '',
      stderr: 'error: key nope not found\n',
    });
  });

  it('prints usage errors — the CLI’s own and commander’s — as INVALID_ARGUMENT, exit 2', async () => {
    expect(errorOf(await cli(['--repo', repo, '--json', 'log', '-n', '0']), 2, 'INVALID_ARGUMENT').message).toMatch(
      /-n takes a whole number/,
    );
    expect(errorOf(await cli(['--repo', repo, '--json', 'get']), 2, 'INVALID_ARGUMENT').message).toBe(
      "missing required argument 'key'",
    );
    expect(errorOf(await cli(['--repo', repo, 'get', 'k', '--bogus', '--json']), 2, 'INVALID_ARGUMENT').message).toBe(
      "unknown option '--bogus'",
    );
    expect(errorOf(await cli(['--json', 'frobnicate']), 2, 'INVALID_ARGUMENT').message).toBe(
      "unknown command 'frobnicate'",
    );
    // An invalid key is the library's INVALID_KEY, also exit 2.
    expect(errorOf(await cli(['--repo', repo, '--json', 'set', 'a//b', 'x']), 2, 'INVALID_KEY').data).toEqual({
      key: 'a//b',
    });
  });

  it('puts merge conflicts under error.data.conflicts (as HTTP does), and writes nothing', async () => {
    const head = git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim();
    const blob = (rev: string) =>
      git(['--git-dir', repo, 'rev-parse', `${rev}:app/mode`])
        .toString()
        .trim();
    const expected = [
      { key: 'app/mode', kind: 'both-modified', base: blob('main~1'), ours: blob('main'), theirs: blob('dev') },
    ];
    for (const target of [
      ['--repo', repo],
      ['--url', server.url],
    ]) {
      const e = errorOf(await cli([...target, '--json', 'merge', 'dev']), 4, 'CONFLICT');
      expect(e.message).toBe('merging dev into main: 1 conflicting key; nothing was written');
      expect(e.data).toEqual({ conflicts: expected });
    }
    // The same conflicts from HTTP itself.
    const response = await fetch(`${server.url}/v1/branches/main/merge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'dev' }),
    });
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: { data: unknown } }).error.data).toEqual({ conflicts: expected });
    // For people: the table on stdout, the error on stderr.
    const human = await cli(['--repo', repo, 'merge', 'dev']);
    expect(human.code).toBe(4);
    expect(human.stdout).toMatch(/both-modified\s+app\/mode/);
    expect(git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim()).toBe(head);
  });

  it('prints a failed transaction check and an unexpected failure the same way', async () => {
    const check = errorOf(
      await cli(['--repo', repo, '--json', 'tx'], { input: 'check app/mode other\nset app/mode x\n' }),
      4,
      'PRECONDITION_FAILED',
    );
    expect(check.message).toMatch(/check failed: app\/mode is "main", not "other"/);
    // Reading a directory as a file is an I/O failure the store did not raise: INTERNAL, exit 1, no stack.
    const internal = errorOf(await cli(['--repo', repo, '--json', 'import', dir]), 1, 'INTERNAL');
    expect(internal.data).toEqual({});
    expect(JSON.stringify(internal)).not.toMatch(/\bat \S+ \(|\.js:\d+/);
  });
});
