import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { memfs } from 'memfs';
import { afterEach } from 'vitest';
import { type FsLike, type OpenOptions, openStore, Store, StoreClient } from '../../src/index.js';
import { cliEnv, tempDir } from '../helpers.js';

/**
 * What a test may need beyond the API every factory offers:
 * - `internals`: the Store object itself (its files, refs, directory, open-transaction registry);
 * - `clock`: commits dated by a test clock;
 * - `settings`: per-store settings `store serve` does not take (maxValueBytes, refreshMs, transactionIdleMs,
 *   maxTransactionsPerClient, a watchPollMs a test relies on);
 * - `callOrder`: concurrent calls applied in the order they were made (over HTTP each is its own connection, and
 *   the server sees them in whatever order they arrive).
 */
export type Capability = 'internals' | 'clock' | 'settings' | 'callOrder';

export interface Factory {
  name: 'memfs' | 'disk' | 'http';
  /** A new, empty store. */
  open(options?: Partial<OpenOptions>): Promise<Store>;
  /** Another store on the same repository as `s` (over HTTP: another `store serve` process on it). */
  again(s: Store, options?: Partial<OpenOptions>): Promise<Store>;
  /** Whether this factory can run a test that needs all of `caps`; tests say so with `it.runIf`. */
  can(...caps: Capability[]): boolean;
  /** The Store behind `s` when it is one here (null over HTTP): for checks of internals inside a shared test. */
  local(s: Store): Store | null;
}

const local = (s: Store) => (s instanceof Store ? s : null);

function localFactory(name: 'memfs' | 'disk', open: Factory['open']): Factory {
  return {
    name,
    open,
    again: (s, options = {}) => openStore({ fs: s.files.raw, dir: s.dir, ...options }),
    can: () => true,
    local,
  };
}

// ---- over HTTP: a StoreClient against a real `store serve` process ------------------------------------------------

const BIN = fileURLToPath(new URL('../../bin/store.js', import.meta.url));

interface Served {
  child: ChildProcess;
  repo: string;
  stderr: () => string;
}

const servers: Served[] = [];
const repoOf = new WeakMap<object, string>();

// Registered after helpers.ts's (imported above), so it runs before the temporary directories are removed.
afterEach(async () => {
  await Promise.all(servers.splice(0).map(stop));
});

async function stop(server: Served): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const hung = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(hung);
}

/**
 * Starts `store serve` on a repository (created if missing) and waits for the URL it prints. Without the per-address
 * rate limit: the suite checks what the store does, and its crowds of concurrent callers from one address (20
 * conflicting serializable transactions, ~700 requests in a second) would otherwise meet the default 1,000 requests
 * per second. The limit has its own tests (test/limits-http.test.ts).
 */
async function serve(repo: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'serve', '--repo', repo, '--port', '0', '--rate-limit', '0'], {
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  servers.push({ child, repo, stderr: () => stderr });
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const line = out.split('\n').find((l) => l.startsWith('http://'));
      if (line) resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`store serve exited (${code}) before listening: ${stderr}`)));
  });
}

/**
 * OpenOptions a StoreClient can honour: `author` (the client's default author). `watchPollMs` only makes a local
 * store notice other writers sooner, and the server polls every 20 ms anyway, so it is dropped; a test that relies
 * on it needs `settings`. Anything else would be silently different over HTTP, so it is refused loudly.
 */
function clientOptions(options: Partial<OpenOptions>): { author?: OpenOptions['author'] } {
  const { author, watchPollMs: _poll, fs: _fs, dir: _dir, ...rest } = options;
  const unsupported = Object.keys(rest);
  if (unsupported.length > 0) {
    throw new Error(`the http factory cannot set ${unsupported.join(', ')}: mark the test it.runIf(factory.can(…))`);
  }
  return author ? { author } : {};
}

async function httpStore(repo: string, options: Partial<OpenOptions>): Promise<Store> {
  const client = new StoreClient(await serve(repo), clientOptions(options));
  repoOf.set(client, repo);
  // StoreClient has Store's API but for the internals; the tests that need those are marked `internals`.
  return client as unknown as Store;
}

const http: Factory = {
  name: 'http',
  open: (options = {}) => httpStore(path.join(tempDir(), 'store.git'), options),
  again: (s, options = {}) => {
    const repo = repoOf.get(s);
    if (!repo) throw new Error('again(): not a store of the http factory');
    return httpStore(repo, options);
  },
  can: (...caps) => caps.length === 0,
  local,
};

/** Each way a store can be opened; the conformance suite runs every behaviour against all of them. */
export const factories: Factory[] = [
  localFactory('memfs', (options = {}) =>
    openStore({ fs: memfs().fs as unknown as FsLike, dir: '/repo/store.git', create: true, ...options }),
  ),
  localFactory('disk', (options = {}) =>
    openStore({ fs, dir: path.join(tempDir(), 'store.git'), create: true, ...options }),
  ),
  http,
];
