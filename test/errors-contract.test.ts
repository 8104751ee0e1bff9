import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, ERRORS, type ErrorCode, EXIT, openStore } from '../src/index.js';
import { type CliRun, cli, serve } from './cli-process.js';
import { git, sleep } from './helpers.js';

/**
 * The error contract: ONE table (src/errors.ts) gives each error code its exit code and HTTP status. Every code is
 * provoked here through the real `store` binary — on the repository itself and over --url — and through a real
 * `store serve` over HTTP, and each answer is held against the table: exit code, status, and the code in the JSON
 * error body (`--json` on the CLI). Codes that one side cannot produce say why, and the test fails if a code is
 * added to the table without a way through here.
 */

const README = fileURLToPath(new URL('../README.md', import.meta.url));

let dir: string;
let repo: string;
let url: string;
let stop: () => Promise<void>;
let compactedId: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-contract-'));
  repo = path.join(dir, 'store.git');
  // History dated days back (the library's clock), compacted at once: its middle commit then answers COMPACTED.
  const day = (Math.floor(Date.now() / 86_400_000) - 3) * 86_400_000;
  let t: number | null = day;
  const store = await openStore({ fs, dir: repo, create: true, clock: () => new Date(t ?? Date.now()) });
  const old: string[] = [];
  for (let i = 0; i < 3; i++) {
    t = day + i * 600_000;
    old.push((await store.set('old', `v${i}`)).commit);
  }
  t = null;
  await store.compact({
    policy: [
      { within: '1h', keep: 'all' },
      { within: '30d', every: '1d' },
    ],
  });
  compactedId = old[1]!;
  await store.set('a/b', '1');
  await store.set('k', 'v');
  await store.createBranch('dev');
  await store.set('c', 'on dev', { branch: 'dev' });
  await store.set('c', 'on main');
  // Schemas (issue 18): a value under typed/ must be an integer.
  await store.set('.store/schema.json', JSON.stringify({ 'typed/*': { type: 'integer' } }));
  await store.createBranch('locked');
  await store.createBranch('locked2');
  // Remotes: `peer` has a history of its own (a push there is not a fast-forward), `gone` is not there at all.
  const peer = await openStore({ fs, dir: path.join(dir, 'peer.git'), create: true });
  await peer.set('elsewhere', '1');
  await peer.close();
  await store.remotes.add('peer', path.join(dir, 'peer.git'));
  await store.remotes.add('gone', path.join(dir, 'gone.git'));
  await store.close();

  ({ url, stop } = await serve(repo));
});

afterAll(async () => {
  await stop?.();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Asserts a CLI run failed as the table says for `code`: its exit code, and with --json the error body on stdout. */
function expectCli(r: CliRun, code: ErrorCode, where: string): void {
  expect(r.code, `${where}: ${r.stderr}`).toBe(ERRORS[code].exit);
  expect(r.stderr, where).toMatch(/^error: \S/);
  const body = JSON.parse(r.stdout);
  expect(Object.keys(body), where).toEqual(['error']);
  expect(body.error.code, where).toBe(code);
  expect(typeof body.error.message, where).toBe('string');
  expect(body.error.data, where).toBeTypeOf('object');
}

/** Asserts an HTTP answer is the table's status for `code`, with the error body. */
async function expectHttp(response: Response, code: ErrorCode, where: string): Promise<void> {
  const text = await response.text();
  expect(response.status, `${where}: ${text}`).toBe(ERRORS[code].status);
  const body = JSON.parse(text);
  expect(body.error.code, where).toBe(code);
  expect(body.error.data, where).toBeTypeOf('object');
}

const request = (method: string, p: string, init: { body?: string | Buffer; headers?: Record<string, string> } = {}) =>
  fetch(`${url}${p}`, { method, body: init.body, headers: init.headers });
const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

/** One way to provoke a code: CLI arguments (run with --repo and with --url) and an HTTP request. */
interface Scenario {
  /** `remoteInput`: stdin over --url when it differs (the server's body limit is not the library's value limit). */
  cli?: { args: string[]; input?: string | Buffer; remoteInput?: string | Buffer };
  http?: () => Promise<Response>;
}

const BIG = Buffer.alloc((16 << 20) + 1, 120);

const scenarios: Partial<Record<ErrorCode, Scenario>> = {
  INVALID_KEY: {
    cli: { args: ['set', 'a//b', 'x'] },
    http: () => request('PUT', '/v1/branches/main/keys/a//b', { body: 'x' }),
  },
  INVALID_BRANCH: {
    cli: { args: ['-b', 'bad..name', 'get', 'k'] },
    http: () => request('GET', '/v1/branches/bad..name/keys/k'),
  },
  INVALID_ARGUMENT: {
    cli: { args: ['merge', 'main'] },
    http: () => request('POST', '/v1/branches/main/merge', json({ from: 'main' })),
  },
  TOO_LARGE: {
    // The library's 16 MiB value limit on the repository; the server's 1 MiB body limit over --url and HTTP. (Far
    // over the body limit, the server answers 413 and closes while the client still sends: it then sees EPIPE.)
    cli: { args: ['set', 'big'], input: BIG, remoteInput: BIG.subarray(0, (1 << 20) + 1) },
    http: () => request('PUT', '/v1/branches/main/keys/big', { body: BIG.subarray(0, (1 << 20) + 1) }),
  },
  INVALID_VALUE: {
    cli: { args: ['set', 'typed/x', 'abc'] },
    http: () => request('PUT', '/v1/branches/main/keys/typed/x', { body: 'abc' }),
  },
  NOT_FOUND: {
    cli: { args: ['get', 'nosuch'] },
    http: () => request('GET', '/v1/branches/main/keys/nosuch'),
  },
  COMPACTED: {
    cli: { args: ['get', 'old', '--at', '<compacted>'] },
    http: () => request('GET', `/v1/branches/main/keys/old?at=${compactedId}`),
  },
  KEY_IS_DIRECTORY: {
    cli: { args: ['set', 'a', '1'] },
    http: () => request('PUT', '/v1/branches/main/keys/a', { body: '1' }),
  },
  KEY_IS_VALUE: {
    cli: { args: ['ls', 'a/b'] },
    http: () => request('GET', '/v1/branches/main/list/a/b'),
  },
  CONFLICT: {
    cli: { args: ['merge', 'dev'] },
    http: () => request('POST', '/v1/branches/main/merge', json({ from: 'dev' })),
  },
  BRANCH_EXISTS: {
    cli: { args: ['branch', 'dev'] },
    http: () => request('POST', '/v1/branches', json({ name: 'dev' })),
  },
  PRECONDITION_FAILED: {
    cli: { args: ['set', 'k', 'x', '--if-match', '0'.repeat(40)] },
    http: () =>
      request('PUT', '/v1/branches/main/keys/k', { body: 'x', headers: { 'if-match': `"${'0'.repeat(40)}"` } }),
  },
  FORBIDDEN: {
    cli: { args: ['branch', '-d', 'main'] },
    http: () => request('DELETE', '/v1/branches/main'),
  },
  REMOTE_EXISTS: {
    cli: { args: ['remote', 'add', 'peer', '/elsewhere.git'] },
    http: () => request('PUT', '/v1/remotes/peer', json({ url: '/elsewhere.git' })),
  },
  PUSH_REJECTED: {
    cli: { args: ['push', 'peer'] },
    http: () => request('POST', '/v1/remotes/peer/push', json({})),
  },
  // A git remote that is not there (the same code as a store server that does not answer, walked below).
  REMOTE: {
    cli: { args: ['fetch', 'gone'] },
    http: () => request('POST', '/v1/remotes/gone/fetch', json({})),
  },
};

/** Why a code has no way through one side, in words a reader can check. */
const ONLY_ELSEWHERE: Partial<Record<ErrorCode, string>> = {
  REPOSITORY_EXISTS: 'no HTTP route creates a repository (store serve creates its own); walked through `store init`',
  UNAUTHORIZED: 'store serve has no authentication yet; the CLI side is walked against a server answering 401',
  LOCKED: 'walked in its own test: a lock must be waited out (10 s) on both sides',
  QUOTA: 'the per-client cap is on open transactions: walked in its own test, over HTTP and the CLI with --url',
  CORRUPT: 'walked in its own test on a branch whose commit plain git wrote malformed',
  INTERNAL: 'a bug by definition: walked through the CLI (an I/O failure); HTTP in server.test.ts (a failing store)',
};

describe('the error table (src/errors.ts)', () => {
  it('gives every code an exit class and a status, and README carries the same table', () => {
    const exits = new Set<number>(Object.values(EXIT));
    for (const code of ERROR_CODES) {
      expect(exits.has(ERRORS[code].exit), code).toBe(true);
      expect(ERRORS[code].exit, code).not.toBe(EXIT.ok);
      expect(ERRORS[code].status >= 400 && ERRORS[code].status < 600, code).toBe(true);
      expect(ERRORS[code].meaning.length, code).toBeGreaterThan(10);
    }
    // README's copy, between its markers, row by row (alignment may change; content may not).
    const readme = fs.readFileSync(README, 'utf8');
    const section = /<!-- errors:start[^>]*-->\n([\s\S]*?)\n<!-- errors:end -->/.exec(readme);
    expect(section, 'README has the errors:start / errors:end markers').not.toBeNull();
    const rows = section![1]!
      .split('\n')
      .slice(2)
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    expect(rows).toEqual(
      ERROR_CODES.map((code) => [
        `\`${code}\``,
        String(ERRORS[code].exit),
        String(ERRORS[code].status),
        ERRORS[code].meaning,
      ]),
    );
  });

  it('has a way through this test for every code', () => {
    for (const code of ERROR_CODES) {
      const s = scenarios[code];
      const covered = (s?.cli !== undefined && s.http !== undefined) || ONLY_ELSEWHERE[code] !== undefined;
      expect(covered, `${code} has neither a scenario on both sides nor a reason why not`).toBe(true);
    }
  });
});

describe('every error code, through the CLI (--repo and --url) and HTTP (store serve)', () => {
  it('answers each scenario with the exit code and status of the table', async () => {
    const walk = async ([code, s]: [ErrorCode, Scenario]) => {
      const args = s.cli!.args.map((a) => (a === '<compacted>' ? compactedId : a));
      const [local, remote, response] = await Promise.all([
        cli(['--repo', repo, '--json', ...args], { input: s.cli!.input }),
        cli(['--url', url, '--json', ...args], { input: s.cli!.remoteInput ?? s.cli!.input }),
        s.http!(),
      ]);
      expectCli(local, code, `${code} via the CLI on the repository`);
      expectCli(remote, code, `${code} via the CLI over --url`);
      await expectHttp(response, code, `${code} via HTTP`);
    };
    // None of the scenarios writes, so they may run side by side: three at a time (nine processes) on two cores.
    const all = Object.entries(scenarios) as [ErrorCode, Scenario][];
    for (let i = 0; i < all.length; i += 3) await Promise.all(all.slice(i, i + 3).map(walk));
    // None of them wrote anything: main still has the value the setup left.
    expect(git(['--git-dir', repo, 'show', 'main:k']).toString()).toBe('v');
  });

  it('REPOSITORY_EXISTS: init with another default branch on an existing store (init itself is local-only)', async () => {
    expectCli(await cli(['--json', 'init', repo, '--default-branch', 'trunk']), 'REPOSITORY_EXISTS', 'init');
    // Over --url, init is refused as usage: the server makes its own repository.
    expectCli(await cli(['--json', '--url', url, 'init']), 'INVALID_ARGUMENT', 'init --url');
  });

  it('UNAUTHORIZED and REMOTE: what a server (or no server) answers becomes the same exit code', async () => {
    // A server that answers as an authenticating store serve will: 401 with the error body.
    const stub = http.createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'no credentials', data: {} } }));
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    const port = (stub.address() as AddressInfo).port;
    try {
      expectCli(await cli(['--json', '--url', `http://127.0.0.1:${port}`, 'get', 'k']), 'UNAUTHORIZED', 'stub');
    } finally {
      await new Promise((resolve) => stub.close(resolve));
    }
    // The same port, closed now: nobody answers.
    expectCli(await cli(['--json', '--url', `http://127.0.0.1:${port}`, 'get', 'k']), 'REMOTE', 'closed port');
  });

  it('INTERNAL: a failure the store did not raise on purpose (here an I/O error) is exit 1 and code INTERNAL', async () => {
    for (const target of [
      ['--repo', repo],
      ['--url', url],
    ]) {
      const r = await cli([...target, '--json', 'import', dir]);
      expectCli(r, 'INTERNAL', `import of a directory ${target[0]}`);
      expect(r.stderr).not.toMatch(/\bat \S+ \(/);
    }
  });

  it('LOCKED: a branch whose ref lock another writer holds, waited out on both sides', async () => {
    // Locks as git or a crashed writer leaves them, fresh (younger than the 30 s stale age, so they are respected).
    // Two branches: the server queues writes to one branch, so two requests on one would wait one after the other.
    const locks = ['locked', 'locked2'].map((b) => path.join(repo, `refs/heads/${b}.lock`));
    for (const lock of locks) fs.writeFileSync(lock, git(['--git-dir', repo, 'rev-parse', 'locked']));
    try {
      const [local, remote, response] = await Promise.all([
        cli(['--repo', repo, '--json', '-b', 'locked', 'set', 'k', 'x']),
        cli(['--url', url, '--json', '-b', 'locked', 'set', 'k', 'x']),
        request('PUT', '/v1/branches/locked2/keys/k', { body: 'x' }),
      ]);
      expectCli(local, 'LOCKED', 'LOCKED via the CLI on the repository');
      expectCli(remote, 'LOCKED', 'LOCKED via the CLI over --url');
      await expectHttp(response, 'LOCKED', 'LOCKED via HTTP');
    } finally {
      for (const lock of locks) fs.rmSync(lock, { force: true });
    }
  });

  it('QUOTA: a client past its cap of open transactions, over HTTP and the CLI with --url', async () => {
    // Without X-Store-Client a transaction belongs to the caller's address: these and the CLI's are one client.
    const ids: string[] = [];
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () => request('POST', '/v1/branches/main/transactions', json({}))),
      );
      for (const r of batch) {
        expect(r.status).toBe(201);
        ids.push(((await r.json()) as { id: string }).id);
      }
    }
    try {
      await expectHttp(await request('POST', '/v1/branches/main/transactions', json({})), 'QUOTA', 'QUOTA via HTTP');
      expectCli(
        await cli(['--url', url, '--json', 'tx'], { input: 'set q 1\n' }),
        'QUOTA',
        'QUOTA via the CLI over --url',
      );
      // On the repository itself the CLI is one process with one transaction: the cap cannot be reached.
    } finally {
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(ids.slice(i, i + 50).map((id) => request('DELETE', `/v1/transactions/${id}`)));
      }
      // Two thousand requests from this address: the server's rate limit (1,000 a second per address) is waited out,
      // or the next test's requests are refused as over it (QUOTA, exit 6) instead of answering their own code.
      await sleep(1100);
    }
  });

  it('CORRUPT: a branch whose commit plain git wrote with a blob for its tree', async () => {
    // A commit git accepts (it parses, update-ref takes it) whose tree is a blob.
    const piped = { stdio: ['pipe', 'pipe', 'pipe'] as ('pipe' | 'ignore')[] };
    const blob = git(['--git-dir', repo, 'hash-object', '-w', '--stdin'], { ...piped, input: 'not a tree' })
      .toString()
      .trim();
    const who = 'Plain Git <plain@git.test> 1700000000 +0000';
    const bad = git(['--git-dir', repo, 'hash-object', '-t', 'commit', '--literally', '-w', '--stdin'], {
      ...piped,
      input: `tree ${blob}\nauthor ${who}\ncommitter ${who}\n\na tree that is a blob\n`,
    })
      .toString()
      .trim();
    git(['--git-dir', repo, 'update-ref', 'refs/heads/broken', bad]);
    try {
      const [local, remote, response] = await Promise.all([
        cli(['--repo', repo, '--json', '-b', 'broken', 'get', 'k']),
        cli(['--url', url, '--json', '-b', 'broken', 'get', 'k']),
        request('GET', '/v1/branches/broken/keys/k'),
      ]);
      expectCli(local, 'CORRUPT', 'CORRUPT via the CLI on the repository');
      expectCli(remote, 'CORRUPT', 'CORRUPT via the CLI over --url');
      await expectHttp(response, 'CORRUPT', 'CORRUPT via HTTP');
    } finally {
      git(['--git-dir', repo, 'update-ref', '-d', 'refs/heads/broken']);
    }
  });
});
