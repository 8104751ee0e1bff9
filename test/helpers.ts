import { type ChildProcess, type ExecFileSyncOptions, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect } from 'vitest';
import { type OpenOptions, openStore, type Store, type StoreError } from '../src/index.js';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed after the test. */
export function tempDir(prefix = 'gitstore-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A new store on disk in a temporary directory. */
export async function diskStore(options: Partial<OpenOptions> = {}): Promise<Store> {
  return openStore({ fs, dir: path.join(tempDir(), 'store.git'), create: true, ...options });
}

/** Environment for running plain git deterministically in tests. */
export const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Plain Git',
  GIT_AUTHOR_EMAIL: 'plain@git.test',
  GIT_COMMITTER_NAME: 'Plain Git',
  GIT_COMMITTER_EMAIL: 'plain@git.test',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: os.tmpdir(),
};

/** Runs real git and returns its stdout as a Buffer (throws, with stderr, when git fails). */
export function git(args: string[], options: ExecFileSyncOptions = {}): Buffer {
  return execFileSync('git', args, { env: gitEnv, stdio: ['ignore', 'pipe', 'pipe'], ...options }) as Buffer;
}

/** The first-parent commit subjects of a branch, newest first, as plain git prints them. */
export function gitSubjects(dir: string, branch = 'main'): string[] {
  return git(['--git-dir', dir, 'log', '--first-parent', '--format=%s', branch]).toString().trim().split('\n');
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until `cond()` holds; throws (naming `what`) after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Waits until `count()` has not changed for `quietMs` (or `ms` passed): for checks that nothing MORE arrives. */
export async function settle(count: () => number, quietMs = 200, ms = 10_000): Promise<void> {
  const start = Date.now();
  let last = count();
  let since = Date.now();
  while (Date.now() - since < quietMs && Date.now() - start < ms) {
    await sleep(10);
    if (count() !== last) {
      last = count();
      since = Date.now();
    }
  }
}

/** The `code` of the StoreError a promise rejects with, or 'no error'. */
/** The StoreError a promise rejects with; fails the test when it resolves. */
export async function errorOf(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    return e as StoreError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'no error';
}

/** The environment for spawning the `store` binary: git's test identity, no colour, no inherited STORE_* settings. */
export function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...gitEnv, NO_COLOR: '1' };
  delete env.STORE_REPO;
  delete env.STORE_URL;
  delete env.STORE_DEBUG;
  return env;
}

/** A small seeded PRNG (mulberry32), so a failing run can be repeated. */
export function random(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** What a finished process printed, and its exit code. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A process started without waiting: what it printed so far, and its end. */
export function startProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = gitEnv,
): { child: ChildProcess; out: () => string; done: Promise<Run> } {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, out: () => stdout, done };
}

/** Runs a command without blocking the event loop (in-process writers keep writing meanwhile). */
export const runProcess = (command: string, args: string[], env: NodeJS.ProcessEnv = gitEnv): Promise<Run> =>
  startProcess(command, args, env).done;

/** Runs git (the test identity); fails the test, with git's output, unless it exits 0. Resolves with its stdout. */
export async function gitOk(args: string[]): Promise<string> {
  const r = await runProcess('git', args, gitEnv);
  expect(r.code, `git ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Writes `files` (null: delete) in a working clone and commits them; returns the commit id. */
export async function commitFiles(
  work: string,
  files: Record<string, string | null>,
  message: string,
): Promise<string> {
  for (const [key, value] of Object.entries(files)) {
    const file = path.join(work, key);
    if (value === null) fs.rmSync(file);
    else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, value);
    }
  }
  await gitOk(['-C', work, 'add', '-A']);
  await gitOk(['-C', work, 'commit', '-q', '--allow-empty', '-m', message]);
  return git(['-C', work, 'rev-parse', 'HEAD']).toString().trim();
}

/**
 * A push the store's pre-receive hook must decline: git's rejection line, the store's refusal and each of `reasons` on
 * the `remote:` lines — which name refs, commits and keys, never where the repository is.
 */
export async function expectDeclined(
  work: string,
  refspec: string,
  reasons: RegExp | RegExp[],
  shown = `${refspec} -> ${refspec}`,
): Promise<void> {
  const r = await runProcess('git', ['-C', work, 'push', 'origin', refspec], gitEnv);
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.stderr).toContain(`! [remote rejected] ${shown} (pre-receive hook declined)`);
  const remote = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('remote:'))
    .join('\n');
  expect(remote).toMatch(/The store refused this push; nothing was changed/);
  for (const reason of Array.isArray(reasons) ? reasons : [reasons]) expect(remote).toMatch(reason);
  expect(remote).not.toContain(path.dirname(work));
}
