import { spawn } from 'node:child_process';
import { StoreError } from '../errors.js';
import { StderrReader } from './progress.js';
import type { TransferOptions } from './types.js';

/** How long a git command may run before it is stopped, unless the caller says otherwise. */
export const DEFAULT_TIMEOUT_MS = 120_000;

/** How long git gets to exit after SIGTERM before it is killed. */
const KILL_GRACE_MS = 2_000;

/** What a git command left: its exit code (null: killed by a signal), stdout, and stderr's lines but progress. */
export interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string[];
}

export interface GitCall extends TransferOptions {
  /** What is being done, for messages: `fetch from origin`. */
  what: string;
  /** The repository the command runs in (`git --git-dir <dir>`); none for clone. */
  gitDir?: string;
}

/** REMOTE, naming the missing program: remote operations need git, the rest of the store does not. */
export const gitMissing = (what: string) =>
  new StoreError(
    'REMOTE',
    `cannot ${what}: the \`git\` program was not found on PATH, and remote operations run it; install git (everything else in the store works without it)`,
    { program: 'git' },
  );

/** The repository is not one git can open: a store in memory (memfs) has nothing on disk for git to work on. */
export const notOnDisk = (what: string) =>
  new StoreError(
    'INVALID_ARGUMENT',
    `cannot ${what}: remotes need a repository on disk that git can open, and this store's is not (an in-memory store has no remotes)`,
    { program: 'git' },
  );

/**
 * Runs git with an argument list (never a shell), reading its progress into `onProgress`. Resolves with what git
 * left whatever its exit code; rejects with REMOTE when git is missing or runs past the timeout (it is then stopped
 * with the helpers it started: SIGTERM, which lets git remove its lock files, then SIGKILL), and with
 * INVALID_ARGUMENT when git cannot open `gitDir`.
 */
export function runGit(args: string[], call: GitCall): Promise<GitRun> {
  const timeoutMs = call.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new StoreError('INVALID_ARGUMENT', `a timeout is a positive number of milliseconds, not ${timeoutMs}`);
  }
  const argv = call.gitDir === undefined ? args : ['--git-dir', call.gitDir, ...args];
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout stops git and every helper it started (git-remote-http, ssh), which
    // hold its pipes open; and no terminal, so nothing it starts can wait on a prompt there.
    const child = spawn('git', argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: gitEnvironment(call.token),
      detached: true,
    });
    const signal = (name: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, name);
      } catch {
        // the group has exited already
      }
    };
    const stderr = new StderrReader(call.onProgress);
    let stdout = '';
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      signal('SIGTERM');
      killer = setTimeout(() => signal('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => stderr.push(s));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? gitMissing(call.what)
          : new StoreError('REMOTE', `cannot ${call.what}: git could not be started (${e.code ?? e.message})`, {
              program: 'git',
            }),
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(killer);
      stderr.end();
      if (timedOut) {
        reject(
          new StoreError(
            'REMOTE',
            `cannot ${call.what}: git did not finish within ${timeoutMs / 1000} s and was stopped; check that the remote answers, or allow more time (timeout)`,
            { timeoutMs },
          ),
        );
      } else if (
        call.gitDir !== undefined &&
        code !== 0 &&
        stderr.lines.some((l) => /^fatal: not a git repository/.test(l))
      ) {
        reject(notOnDisk(call.what));
      } else {
        resolve({ code, stdout, stderr: stderr.lines });
      }
    });
  });
}

/**
 * git's environment: the caller's (credentials, ssh agent, proxies, PATH), with messages in English because they are
 * parsed here, and no prompt for a password on a terminal: a server must never wait on one (use a credential helper).
 * A token goes in as one more entry of git's environment configuration (GIT_CONFIG_COUNT, git 2.31 and later).
 */
function gitEnvironment(token: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0' };
  if (token !== undefined) {
    if (!/^[\x21-\x7e]+$/.test(token))
      throw new StoreError('INVALID_ARGUMENT', 'a token is printable ASCII without spaces');
    const n = Number(env.GIT_CONFIG_COUNT) || 0;
    env.GIT_CONFIG_COUNT = String(n + 1);
    env[`GIT_CONFIG_KEY_${n}`] = 'http.extraHeader';
    env[`GIT_CONFIG_VALUE_${n}`] = `Authorization: Bearer ${token}`;
  }
  return env;
}

/** git's own words on why it failed: its `fatal:`/`error:` lines (and a remote's), without the hints. */
export function gitReason(run: GitRun): string {
  const lines = run.stderr.filter((l) => !l.startsWith('hint:')).map((l) => l.replace(/^(fatal|error): /, ''));
  const text = lines.join('; ').trim();
  if (text !== '') return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  return run.code === null ? 'git was killed by a signal' : `git exited with ${run.code}`;
}

/** REMOTE for a git command that failed for a reason not handled more precisely. */
export const gitFailed = (what: string, run: GitRun, data: Record<string, unknown> = {}) =>
  new StoreError('REMOTE', `cannot ${what}: ${gitReason(run)}`, { ...data, exitCode: run.code });
