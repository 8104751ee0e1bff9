/**
 * `store serve` as a git server (server/git/): plain git clones, fetches and pushes over smart HTTP under /git, in
 * protocol v0 and v2, with gzip request bodies; a pushed commit is read at once over the API and reaches a watch;
 * a store that cannot be served (in memory, no git) answers in the API's error shape. Real git, a real `store serve`
 * (bin/store.js → dist/: `npm run build` first).
 */
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { type CommitEvents, StoreClient } from '../src/index.js';
import { expectFsckClean } from './git-packs.js';
import { cliEnv, git, gitEnv, runProcess, tempDir, until } from './helpers.js';
import { put, type Served, startServe, stopServe } from './serve.js';

const servers: Served[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await stopServe(s);
});

/** `store serve` on `repo`, with `args` after `--port 0` and `env` instead of cliEnv(); stopped after the test. */
async function serve(repo: string, options: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Served> {
  const s = await startServe(repo, ['--port', '0', ...(options.args ?? [])], options.env);
  servers.push(s);
  return s;
}

/** Plain git, run without blocking this process; fails the test with git's output when it fails. */
async function gitOk(args: string[], env: NodeJS.ProcessEnv = gitEnv): Promise<{ stdout: string; stderr: string }> {
  const r = await runProcess('git', args, env);
  expect(r.code, `git ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

const headOf = (repo: string, ref = 'main') => git(['--git-dir', repo, 'rev-parse', ref]).toString().trim();

/** A commit in a working clone: `files` written (key → value), then committed. Returns its id. */
async function commitFiles(work: string, files: Record<string, string>, message: string): Promise<string> {
  const fs = await import('node:fs');
  for (const [key, value] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(work, key)), { recursive: true });
    fs.writeFileSync(path.join(work, key), value);
  }
  await gitOk(['-C', work, 'add', '-A']);
  await gitOk(['-C', work, 'commit', '-q', '-m', message]);
  return git(['-C', work, 'rev-parse', 'HEAD']).toString().trim();
}

describe('store serve speaks git under /git', () => {
  it('clones, fetches what the store wrote since, and a pushed commit is read at once and reaches a watch', async () => {
    const repo = path.join(tempDir(), 'store.git');
    const s = await serve(repo);
    expect((await put(s.url, 'vm/1/state', 'running')).status).toBe(201);
    const work = path.join(tempDir(), 'work');
    await gitOk(['clone', '-q', `${s.url}/git`, work]);
    expect(git(['-C', work, 'show', 'HEAD:vm/1/state']).toString()).toBe('running');
    expect(git(['-C', work, 'rev-parse', 'HEAD']).toString().trim()).toBe(headOf(repo));

    // The store writes; plain git fetches it.
    expect((await put(s.url, 'vm/1/memory', '2048')).status).toBe(201);
    await gitOk(['-C', work, 'pull', '-q', '--ff-only']);
    expect(git(['-C', work, 'show', 'HEAD:vm/1/memory']).toString()).toBe('2048');
    expect(git(['-C', work, 'rev-parse', 'HEAD']).toString().trim()).toBe(headOf(repo));

    // A watch opened before the push sees the pushed commit as it sees the store's own.
    const client = new StoreClient(s.url);
    const watch = await client.watch({ branch: 'main' });
    const seen: CommitEvents[] = [];
    const following = (async () => {
      for await (const group of watch.commits()) seen.push(group);
    })();
    const pushed = await commitFiles(work, { 'vm/1/state': 'halted', 'vm/2/state': 'running' }, 'from plain git');
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    // Read at once: the push was acknowledged, so the next read sees it.
    const read = await fetch(`${s.url}/v1/branches/main/keys/vm/2/state`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('running');
    expect(read.headers.get('x-store-commit')).toBe(pushed);
    await until(() => seen.some((g) => g.commit === pushed), 'the watch to see the pushed commit');
    expect(
      seen
        .find((g) => g.commit === pushed)!
        .events.map((e) => `${e.kind} ${e.key}`)
        .sort(),
    ).toEqual(['modified vm/1/state', 'added vm/2/state'].sort());
    watch.close();
    await following;
    await client.close();
    // The store keeps writing on top of the pushed commit.
    expect((await put(s.url, 'vm/3/state', 'running')).status).toBe(201);
    expect(git(['--git-dir', repo, 'rev-parse', 'main^']).toString().trim()).toBe(pushed);
    expectFsckClean(repo);
  });

  it('serves protocol v0 and v2, each as asked, and gzip request bodies in both', async () => {
    const repo = path.join(tempDir(), 'store.git');
    const s = await serve(repo);
    expect((await put(s.url, 'k', 'v')).status).toBe(201);
    // Enough branches that a clone's request (a `want` per branch) is over 1 KiB: git then gzips it.
    const head = headOf(repo);
    for (let i = 0; i < 40; i++) git(['--git-dir', repo, 'update-ref', `refs/heads/b${i}`, head]);
    for (const version of [0, 2]) {
      const mirror = path.join(tempDir(), `v${version}.git`);
      const env = { ...gitEnv, GIT_TRACE_PACKET: '1', GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' };
      const r = await gitOk(['-c', `protocol.version=${version}`, 'clone', '--mirror', `${s.url}/git`, mirror], env);
      // The server answered in the version asked for.
      expect(/git< version 2/.test(r.stderr), `protocol v${version}`).toBe(version === 2);
      expect(r.stderr).toMatch(/Send header: Content-Encoding: gzip/i);
      const refs = git(['--git-dir', mirror, 'for-each-ref', '--format=%(refname)', 'refs/heads']).toString();
      expect(refs.trim().split('\n')).toHaveLength(41);
    }
    // And a gzip body sent by hand: http-backend inflates it.
    const wants = `0032want ${head}\n00000009done\n`;
    const answer = await fetch(`${s.url}/git/git-upload-pack`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-git-upload-pack-request',
        'content-encoding': 'gzip',
      },
      body: gzipSync(wants),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/x-git-upload-pack-result');
    const body = Buffer.from(await answer.arrayBuffer());
    expect(body.subarray(0, 8).toString()).toBe('0008NAK\n');
    expect(body.indexOf('PACK')).toBe(8);
  });

  it('answers in the API error shape, without server paths, where it cannot serve git', async () => {
    const dir = tempDir();
    // In memory: there is no repository for git to serve.
    const memory = await serve(path.join(dir, 'unused.git'), { args: ['--memory'] });
    const r1 = await fetch(`${memory.url}/git/info/refs?service=git-upload-pack`);
    expect(r1.status).toBe(404);
    const b1 = (await r1.json()) as { error: { code: string; message: string } };
    expect(b1.error.code).toBe('NOT_FOUND');
    expect(b1.error.message).toMatch(/in memory/);
    const clone = await runProcess('git', ['clone', `${memory.url}/git`, path.join(dir, 'c1')]);
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toMatch(/not found/);

    // No git on the server's PATH.
    const repo = path.join(dir, 'store.git');
    const noGit = await serve(repo, { env: { ...cliEnv(), PATH: path.join(dir, 'empty') } });
    const r2 = await fetch(`${noGit.url}/git/info/refs?service=git-upload-pack`);
    expect(r2.status).toBe(404);
    const text = await r2.text();
    expect(JSON.parse(text).error.message).toMatch(/git is not installed on the server/);
    expect(text).not.toContain(dir);
    // The API itself works without git.
    expect((await put(noGit.url, 'k', 'v')).status).toBe(201);

    // Paths outside git's smart protocol (the repository's raw files) are not served.
    const s = await serve(path.join(dir, 'other.git'));
    for (const p of ['/git/config', '/git/HEAD', '/git/objects/info/packs', '/git/../../etc/passwd']) {
      const r = await fetch(`${s.url}${p}`);
      expect(r.status, p).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code, p).toBe('NOT_FOUND');
    }
    // What http-backend refuses is told in the same shape; what git said (with paths) goes to the server log only.
    const bad = await fetch(`${s.url}/git/git-upload-pack`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(bad.status).toBe(400);
    const badText = await bad.text();
    expect(JSON.parse(badText).error.code).toBe('INVALID_ARGUMENT');
    expect(badText).not.toContain(dir);
    await until(() => /git http-backend answered 415/.test(s.stderr()), 'the server to log the refusal');
  });

  it('refuses a request body over --git-body-limit with 413, and the store is unchanged', async () => {
    const repo = path.join(tempDir(), 'store.git');
    const s = await serve(repo, { args: ['--git-body-limit', '4096'] });
    expect((await put(s.url, 'k', 'v')).status).toBe(201);
    const work = path.join(tempDir(), 'work');
    await gitOk(['clone', '-q', `${s.url}/git`, work]);
    const before = headOf(repo);
    // Incompressible values: the pack is larger than the limit.
    const { randomBytes } = await import('node:crypto');
    await commitFiles(work, { big: randomBytes(16_384).toString('base64') }, 'too big');
    const r = await runProcess('git', ['-C', work, 'push', 'origin', 'main']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/413/);
    expect(headOf(repo)).toBe(before);
  });
});
