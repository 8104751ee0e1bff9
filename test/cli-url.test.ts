import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitEnv, gitSubjects } from './helpers.js';

/**
 * The CLI's --url mode: the same commands against `store serve` instead of a repository, with the same output and
 * exit codes. Each command runs twice — once over HTTP, once on a twin local repository given the same history — and
 * the outputs are compared where they do not contain commit ids.
 */

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));
const env = { ...gitEnv, GIT_AUTHOR_NAME: 'Url Tester', GIT_AUTHOR_EMAIL: 'url@test.test', NO_COLOR: '1' };

function store(args: string[], input = '') {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, env, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), raw: r.stdout };
}

let server: ChildProcess;
let url: string;
let served: string;
let local: string;
let dir: string;

beforeAll(async () => {
  // Not tempDir(): that is emptied after each test, and this server and its twin live for the whole file.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-url-'));
  served = path.join(dir, 'served.git');
  local = path.join(dir, 'local.git');
  expect(store(['--repo', local, 'init']).code).toBe(0);
  server = spawn(process.execPath, [BIN, 'serve', '--repo', served, '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    server.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    server.once('exit', (code) => reject(new Error(`store serve exited with ${code}`)));
  });
});

afterAll(async () => {
  if (server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the same command against the server and against the local twin. */
function both(args: string[], input = '') {
  return { remote: store(['--url', url, ...args], input), local: store(['--repo', local, ...args], input) };
}

describe('store --url (against store serve)', () => {
  it('get, set, ls, branch, log behave as on a local repository', () => {
    for (const [key, value] of [
      ['vm/web1/memory', '2048'],
      ['vm/web1/cpus', '2'],
      ['vm/db/memory', '8192'],
    ]) {
      const { remote, local: l } = both(['set', key!, value!]);
      expect(remote.code).toBe(0);
      expect(remote.stdout).toMatch(/^[0-9a-f]{40}\n$/);
      expect(l.code).toBe(0);
    }
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(store(['--url', url, 'set', 'blob'], binary as unknown as string).code).toBe(0);
    expect(store(['--url', url, 'get', 'blob']).raw.equals(binary)).toBe(true);

    const get = both(['get', 'vm/web1/memory']);
    expect(get.remote).toEqual(get.local);
    expect(get.remote.stdout).toBe('2048');
    const ls = both(['ls', 'vm']);
    expect(ls.remote).toEqual(ls.local);
    expect(ls.remote.stdout).toBe('vm/db/\nvm/web1/\n');
    const lsr = both(['--json', 'ls', '-r', 'vm']);
    expect(JSON.parse(lsr.remote.stdout)).toEqual(JSON.parse(lsr.local.stdout));

    expect(store(['--url', url, 'branch', 'dev']).stdout).toMatch(/^created branch dev at [0-9a-f]{10}\n$/);
    const branches = store(['--url', url, 'branch']);
    expect(branches.code).toBe(0);
    expect(branches.stdout).toMatch(/^ {2}dev {3}[0-9a-f]{10}\n\* main {2}[0-9a-f]{10}\n$/);

    const log = store(['--url', url, 'log', '-n', '2']);
    expect(log.code).toBe(0);
    expect(
      log.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s{2,}/).at(-1)),
    ).toEqual(['set blob', 'set vm/db/memory']);
    const keyLog = store(['--url', url, 'log', 'vm/web1']);
    expect(keyLog.stdout.trim().split('\n')).toHaveLength(2);
    expect(gitSubjects(served).slice(0, 2)).toEqual(['set blob', 'set vm/db/memory']);
  });

  it('merge: a clean merge prints the commit, a conflict exits 4 naming the key', () => {
    expect(store(['--url', url, '--branch', 'dev', 'set', 'vm/web1/memory', '4096']).code).toBe(0);
    expect(store(['--url', url, 'set', 'vm/web1/cpus', '4']).code).toBe(0);
    const merged = store(['--url', url, 'merge', 'dev']);
    expect(merged).toMatchObject({ code: 0, stderr: '' });
    expect(merged.stdout).toMatch(/^[0-9a-f]{40}\n$/);
    expect(store(['--url', url, 'get', 'vm/web1/memory']).stdout).toBe('4096');

    expect(store(['--url', url, '--branch', 'dev', 'set', 'vm/db/memory', 'dev']).code).toBe(0);
    expect(store(['--url', url, 'set', 'vm/db/memory', 'main']).code).toBe(0);
    const head = gitSubjects(served)[0];
    const conflict = store(['--url', url, 'merge', 'dev']);
    expect(conflict.code).toBe(4);
    expect(conflict.stdout).toMatch(/both-modified\s+vm\/db\/memory/);
    expect(conflict.stderr).toBe('error: merging dev into main: 1 conflicting key; nothing was written\n');
    expect(gitSubjects(served)[0]).toBe(head);
    const json = store(['--url', url, '--json', 'merge', 'dev']);
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout).error.data.conflicts).toEqual([
      expect.objectContaining({ key: 'vm/db/memory', kind: 'both-modified' }),
    ]);
  });

  it('maps errors to the same exit codes and messages', () => {
    const missing = both(['get', 'nope']);
    expect(missing.remote).toEqual(missing.local);
    expect(missing.remote).toMatchObject({ code: 3, stderr: 'error: key nope not found\n' });
    const invalid = both(['set', 'a//b', 'x']);
    expect(invalid.remote.code).toBe(2);
    expect(invalid.remote.stderr).toBe(invalid.local.stderr);
    const precondition = store(['--url', url, 'set', 'vm/web1/cpus', '8', '--if-match', '0'.repeat(40)]);
    expect(precondition.code).toBe(4);
    const unreachable = store(['--url', 'http://127.0.0.1:1', 'get', 'x']);
    // REMOTE: unavailable, the same command may work later (exit 6).
    expect(unreachable.code).toBe(6);
    expect(unreachable.stderr).toMatch(
      /^error: cannot reach the store server at http:\/\/127\.0\.0\.1:1 .*store serve/,
    );
    // STORE_URL works like --url.
    const viaEnv = spawnSync(process.execPath, [BIN, 'get', 'vm/web1/memory'], { env: { ...env, STORE_URL: url } });
    expect(viaEnv.stdout.toString()).toBe('4096');
  });
});
