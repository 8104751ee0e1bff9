import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneStore, openStore, type Progress } from '../src/index.js';
import { type GitHttpServer, gitHttpBackend } from './git-http-backend.js';
import { codeOf, errorOf, git, tempDir } from './helpers.js';
import { bareRepository, gitAsync, lsRemote, peerStore, type RemoteFixture } from './remotes-peers.js';
import { startServe, stopServe } from './serve.js';

/**
 * Remotes through the library, against real git servers: the same suite over a local path and over `git
 * http-backend`. Two stores on either side of a remote play the peers; the suite touches the remote only through
 * git's transports (push, fetch, `git ls-remote`), so any server whose URL a fixture gives fits — `store serve`'s
 * `/git` is one more entry in `transports` (start a server on a new store, answer `${url}/git`, stop it in `close`).
 */

let server: GitHttpServer;
let serverRoot: string;
const fixtures: RemoteFixture[] = [];
beforeAll(async () => {
  serverRoot = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'gitstore-http-'));
  server = await gitHttpBackend(serverRoot);
});
afterAll(async () => {
  for (const f of fixtures.splice(0)) await f.close();
  await server.close();
  fs.rmSync(serverRoot, { recursive: true, force: true });
});

let served = 0;
const transports: [string, () => Promise<RemoteFixture>][] = [
  ['a local path', async () => ({ url: bareRepository(), close: async () => {} })],
  [
    'git http-backend',
    async () => {
      const name = `r${++served}.git`;
      bareRepository(path.join(serverRoot, name));
      return { url: server.url(name), close: async () => {} };
    },
  ],
  [
    'store serve (its /git)',
    async () => {
      const served = await startServe(path.join(tempDir(), 'served.git'));
      return { url: `${served.url}/git`, close: async () => void (await stopServe(served)) };
    },
  ],
];

/** A new empty remote of a transport, closed after the file's tests. */
async function remoteOf(make: () => Promise<RemoteFixture>): Promise<RemoteFixture> {
  const fixture = await make();
  fixtures.push(fixture);
  return fixture;
}

/** How many loose objects a repository has (a local clone hard-links the remote's). */
const looseObjects = (dir: string) =>
  Number(/^count: (\d+)$/m.exec(git(['--git-dir', dir, 'count-objects', '-v']).toString())![1]);

/** A remote, a store `a` that pushed `k = base` to it as origin, and `b` cloned from it. */
async function clonedPair(makeRemote: () => Promise<RemoteFixture>) {
  const remote = await remoteOf(makeRemote);
  const a = await peerStore('a.git');
  await a.remotes.add('origin', remote.url);
  await a.set('k', 'base');
  await a.push();
  const b = await cloneStore(remote.url, path.join(tempDir(), 'b.git'), { fs });
  return { remote, a, b };
}

describe.each(transports)('remotes over %s', (_name, makeRemote) => {
  it('adds, lists and removes remotes in the config, as `git remote -v` shows them', async () => {
    const remote = await remoteOf(makeRemote);
    const store = await peerStore();
    expect(await store.remotes.list()).toEqual([]);
    expect(await store.remotes.add('origin', remote.url)).toEqual({ name: 'origin', url: remote.url });
    await store.remotes.add('peers/b', '/srv/b.git');
    expect(await store.remotes.list()).toEqual([
      { name: 'origin', url: remote.url },
      { name: 'peers/b', url: '/srv/b.git' },
    ]);
    const gitSays = git(['--git-dir', store.dir, 'remote', '-v']).toString();
    expect(gitSays).toContain(`origin\t${remote.url} (fetch)`);
    expect(gitSays).toContain('peers/b\t/srv/b.git (push)');
    // git's default refspec, as `git remote add` writes it.
    expect(git(['--git-dir', store.dir, 'config', 'remote.origin.fetch']).toString().trim()).toBe(
      '+refs/heads/*:refs/remotes/origin/*',
    );
    // The same again changes nothing; another URL under the name is refused.
    expect(await store.remotes.add('origin', remote.url)).toEqual({ name: 'origin', url: remote.url });
    const exists = await errorOf(store.remotes.add('origin', '/elsewhere.git'));
    expect(exists.code).toBe('REMOTE_EXISTS');
    expect(exists.message).toMatch(/remote origin exists already/);
    await store.remotes.remove('peers/b');
    expect(await store.remotes.list()).toEqual([{ name: 'origin', url: remote.url }]);
    const gone = await errorOf(store.remotes.remove('peers/b'));
    expect(gone.code).toBe('NOT_FOUND');
    expect(gone.data).toMatchObject({ kind: 'remote', name: 'peers/b' });
    expect(await codeOf(store.fetch('nosuch'))).toBe('NOT_FOUND');
    await store.close();
  });

  it('pushes to an empty remote, clones it, and fetch reports the refs that moved', async () => {
    const remote = await remoteOf(makeRemote);
    const a = await peerStore('a.git');
    await a.remotes.add('origin', remote.url);
    await a.set('vm/web1/memory', '2048');
    const first = (await a.set('vm/web1/cpus', '2')).commit;
    expect(await a.push()).toEqual({
      remote: 'origin',
      updated: [{ ref: 'refs/heads/main', old: null, new: first }],
    });
    expect((await lsRemote(remote.url))['refs/heads/main']).toBe(first);
    // Pushing again moves nothing.
    expect((await a.push('origin')).updated).toEqual([]);

    const dir = path.join(tempDir(), 'b.git');
    const progress: Progress[] = [];
    const b = await cloneStore(remote.url, dir, { fs, onProgress: (p) => progress.push(p) });
    expect(b.defaultBranch).toBe('main');
    expect(await b.getText('vm/web1/memory')).toBe('2048');
    expect((await b.tip()).commit).toBe(first);
    expect(await b.remotes.list()).toEqual([{ name: 'origin', url: remote.url }]);
    // The clone's first fetch fills refs/remotes/origin/*, then nothing moves until the remote does.
    expect((await b.fetch()).updated).toEqual([{ ref: 'refs/remotes/origin/main', old: null, new: first }]);
    expect((await b.fetch()).updated).toEqual([]);

    // Two new commits and a new branch on the remote.
    await a.set('vm/web1/memory', '4096');
    const second = (await a.set('vm/web2/memory', '1024')).commit;
    await a.createBranch('dev');
    await a.push();
    await a.push('origin', { branch: 'dev' });
    const loose = looseObjects(b.dir);
    expect(await b.fetch('origin')).toEqual({
      remote: 'origin',
      updated: [
        { ref: 'refs/remotes/origin/dev', old: null, new: second },
        { ref: 'refs/remotes/origin/main', old: first, new: second },
      ],
    });
    // Fetching moves no branch of the store itself; what it brought is a pack, not loose objects.
    expect((await b.tip()).commit).toBe(first);
    expect(looseObjects(b.dir)).toBe(loose);

    // A forced push rewrites main; a branch deleted on the remote is pruned from the tracking refs.
    await a.createBranch('other', { from: first });
    const rewritten = (await a.set('x', 'another history', { branch: 'other' })).commit;
    await gitAsync(['--git-dir', a.dir, 'push', '--quiet', '--force', remote.url, 'other:main', ':dev']);
    expect((await b.fetch()).updated).toEqual([
      { ref: 'refs/remotes/origin/dev', old: second, new: null },
      { ref: 'refs/remotes/origin/main', old: second, new: rewritten, forced: true },
    ]);
    await a.close();
    await b.close();
  });

  it('pulls with the repository’s strategies: counters incremented on both sides add up', async () => {
    const remote = await remoteOf(makeRemote);
    const a = await peerStore('a.git');
    await a.remotes.add('origin', remote.url);
    await a.set('.store/merge.json', JSON.stringify({ default: 'conflict', prefixes: { stats: 'counter' } }));
    await a.set('stats/boots', '10');
    await a.push();
    const b = await cloneStore(remote.url, path.join(tempDir(), 'b.git'), { fs });

    // Nothing of its own here: the pull fast-forwards, as git pull does.
    await a.set('vm/web1/memory', '2048');
    const ahead = (await a.push()).updated[0]!.new!;
    const ff = await b.pull();
    expect(ff).toEqual({
      remote: 'origin',
      branch: 'main',
      fetched: [{ ref: 'refs/remotes/origin/main', old: null, new: ahead }],
      merge: { commit: ahead, outcome: 'fast-forward' },
    });

    // Both sides count: +5 there, +3 here; the pull merges them into 18 with one merge commit.
    await a.set('stats/boots', '15');
    await a.push();
    await b.set('stats/boots', '13');
    await b.set('vm/web2/memory', '512');
    const pulled = await b.pull('origin', { message: 'sync with origin' });
    expect(pulled.merge.outcome).toBe('merged');
    expect(await b.getText('stats/boots')).toBe('18');
    expect(await b.getText('vm/web1/memory')).toBe('2048');
    expect(await b.getText('vm/web2/memory')).toBe('512');
    const commit = await b.commit(pulled.merge.commit);
    expect(commit.parents).toHaveLength(2);
    expect(commit.message).toBe('merge refs/remotes/origin/main into main\n\nsync with origin\n');
    // Nothing new there: up to date, nothing fetched.
    expect(await b.pull()).toMatchObject({ fetched: [], merge: { outcome: 'up-to-date' } });

    // Pushed back, the remote has the merge; a's pull is a fast-forward to it and it counts 18 too.
    await b.push();
    expect((await a.pull()).merge).toEqual({ commit: pulled.merge.commit, outcome: 'fast-forward' });
    expect(await a.getText('stats/boots')).toBe('18');

    // A branch only the remote has is created here at its commit.
    await a.createBranch('dev');
    const dev = (await a.set('feature', 'on', { branch: 'dev' })).commit;
    await a.push('origin', { branch: 'dev' });
    expect((await b.pull('origin', { branch: 'dev' })).merge).toEqual({ commit: dev, outcome: 'fast-forward' });
    expect(await b.getText('feature', { branch: 'dev' })).toBe('on');
    expect((await b.branches()).map((x) => x.name)).toEqual(['dev', 'main']);
    await a.close();
    await b.close();
  });

  it('a pull that conflicts is CONFLICT with data.conflicts, exactly as a merge, and writes nothing', async () => {
    const { a, b } = await clonedPair(makeRemote);
    await a.set('k', 'theirs');
    await a.push();
    const ours = (await b.set('k', 'ours')).commit;
    const e = await errorOf(b.pull());
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toMatch(/merging refs\/remotes\/origin\/main into main: 1 conflicting key; nothing was written/);
    expect((e.data as { conflicts: { key: string; kind: string }[] }).conflicts).toMatchObject([
      { key: 'k', kind: 'both-modified' },
    ]);
    expect((await b.tip()).commit).toBe(ours);
    // The same merge, by hand, says the same.
    const byHand = await errorOf(b.merge('refs/remotes/origin/main'));
    expect(byHand.code).toBe('CONFLICT');
    expect(byHand.data).toEqual(e.data);
    // A strategy for the pull resolves it.
    expect((await b.pull('origin', { strategy: 'theirs' })).merge.outcome).toBe('merged');
    expect(await b.getText('k')).toBe('theirs');
    // A branch the remote does not have.
    const missing = await errorOf(b.pull('origin', { branch: 'nosuch' }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toMatch(/branch nosuch not found on origin/);
    await a.close();
    await b.close();
  });

  it('refuses a push that is not a fast-forward (pull first), leaves the remote as it was, and --force replaces it', async () => {
    const { remote, a, b } = await clonedPair(makeRemote);
    await a.set('k', 'from a');
    await a.push();
    const before = await lsRemote(remote.url);
    const mine = (await b.set('k', 'from b')).commit;
    const e = await errorOf(b.push());
    expect(e.code).toBe('PUSH_REJECTED');
    expect(e.message).toBe(
      'push to origin rejected: main has commits you do not have; pull first (store pull origin), or push --force',
    );
    expect(e.data).toMatchObject({ remote: 'origin', rejected: [{ ref: 'refs/heads/main' }] });
    expect((e.data as { rejected: { reason: string }[] }).rejected[0]!.reason).toMatch(/non-fast-forward|fetch first/);
    expect(await lsRemote(remote.url)).toEqual(before);

    const forced = await b.push('origin', { force: true });
    expect(forced).toEqual({
      remote: 'origin',
      updated: [{ ref: 'refs/heads/main', old: before['refs/heads/main'], new: mine, forced: true }],
    });
    expect((await lsRemote(remote.url))['refs/heads/main']).toBe(mine);
    await a.close();
    await b.close();
  });

  it('takes a URL in place of a remote name: its tracking refs go below refs/remotes/<host and path>-<hash>/', async () => {
    const remote = await remoteOf(makeRemote);
    const a = await peerStore('a.git');
    await a.set('k', 'v');
    const head = (await a.push(remote.url)).updated[0]!.new;
    expect(await a.remotes.list()).toEqual([]);
    const b = await peerStore('b.git');
    const fetched = await b.fetch(remote.url);
    expect(fetched.remote).toBe(remote.url);
    expect(fetched.updated).toHaveLength(1);
    expect(fetched.updated[0]).toMatchObject({ old: null, new: head });
    expect(fetched.updated[0]!.ref).toMatch(/^refs\/remotes\/[A-Za-z0-9_.-]+-[0-9a-f]{8}\/main$/);
    // b's main has no commit yet: the pull takes the remote's.
    expect((await b.pull(remote.url)).merge).toEqual({ commit: head, outcome: 'fast-forward' });
    expect(await b.getText('k')).toBe('v');
    await a.close();
    await b.close();
  });
});

describe('remote operations that fail, and why', () => {
  it('refuses bad remote names and URLs (option-like, helpers, control characters) and writes nothing', async () => {
    const store = await peerStore();
    for (const name of ['-x', '--upload-pack=x', 'a..b', 'a/', '/a', '.a', 'a b', 'a:b', 'x.lock', '']) {
      const e = await errorOf(store.remotes.add(name, '/srv/x.git'));
      expect(e.code, name).toBe('INVALID_ARGUMENT');
    }
    for (const url of [
      '--upload-pack=touch /tmp/pwned',
      '-u',
      'ext::sh -c touch% /tmp/pwned',
      'fd::3',
      'a\nb',
      's3://bucket/x',
      '',
    ]) {
      const e = await errorOf(store.remotes.add('origin', url));
      expect(e.code, url).toBe('INVALID_ARGUMENT');
      expect(e.message, url).toMatch(/remote URL/);
    }
    // Given to fetch, pull and push in place of a name, an option-like argument is refused before git runs.
    for (const p of [store.fetch('--upload-pack=touch /tmp/pwned'), store.pull('-x'), store.push('ext::sh')]) {
      expect(await codeOf(p)).toBe('INVALID_ARGUMENT');
    }
    expect(await store.remotes.list()).toEqual([]);
    expect(git(['--git-dir', store.dir, 'remote', '-v']).toString()).toBe('');
    await store.close();
  });

  it('an in-memory store has no remotes: a clear error saying they need a repository on disk', async () => {
    const store = await openStore({ memory: true });
    for (const p of [
      store.remotes.list(),
      store.remotes.add('origin', '/srv/x.git'),
      store.fetch(),
      store.pull(),
      store.push(),
    ]) {
      const e = await errorOf(p);
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toMatch(/remotes need a repository on disk/);
    }
    await store.set('k', 'still works');
    expect(await store.getText('k')).toBe('still works');
    await store.close();
  });

  it('a remote that does not answer in time: git is stopped and the error says so', async () => {
    const store = await peerStore();
    const name = `slow${++served}.git`;
    bareRepository(path.join(serverRoot, name));
    await store.remotes.add('slow', server.url(name));
    server.hang();
    try {
      const e = await errorOf(store.fetch('slow', { timeoutMs: 1000 }));
      expect(e.code).toBe('REMOTE');
      expect(e.message).toMatch(/did not finish within 1 s and was stopped/);
    } finally {
      server.answer();
    }
    // Answering again, the same fetch works.
    expect(await store.fetch('slow')).toEqual({ remote: 'slow', updated: [] });
    await store.close();
  });

  it('a remote that cannot be reached is REMOTE with git’s reason; a push a hook declines carries its message', async () => {
    const store = await peerStore();
    await store.set('k', 'v');
    const gone = await errorOf(store.fetch(path.join(tempDir(), 'nothing-here.git')));
    expect(gone.code).toBe('REMOTE');
    expect(gone.message).toMatch(/does not appear to be a git repository/);

    const strict = bareRepository();
    fs.writeFileSync(
      path.join(strict, 'hooks', 'pre-receive'),
      '#!/bin/sh\necho "no pushes on Fridays" >&2\nexit 1\n',
      {
        mode: 0o755,
      },
    );
    await store.remotes.add('strict', strict);
    const e = await errorOf(store.push('strict'));
    expect(e.code).toBe('PUSH_REJECTED');
    expect(e.message).toMatch(
      /^push to strict rejected: main: pre-receive hook declined — the remote said: no pushes on Fridays/,
    );
    expect(e.data).toMatchObject({ rejected: [{ ref: 'refs/heads/main', reason: 'pre-receive hook declined' }] });
    await store.close();
  });

  it('a clone of a remote whose HEAD names a branch it lacks takes main as its default branch', async () => {
    // `git init --bare` on a machine whose default is master, then pushed main: HEAD names a branch that is not there.
    const remote = path.join(tempDir(), 'hub.git');
    git(['init', '--quiet', '--bare', '--initial-branch=master', remote]);
    const a = await peerStore('a.git');
    await a.set('k', 'v');
    await a.createBranch('dev');
    await a.push(remote);
    await a.push(remote, { branch: 'dev' });
    const b = await cloneStore(remote, path.join(tempDir(), 'b.git'), { fs });
    expect(b.defaultBranch).toBe('main');
    expect(await b.getText('k')).toBe('v');
    expect(git(['--git-dir', b.dir, 'symbolic-ref', 'HEAD']).toString().trim()).toBe('refs/heads/main');
    await a.close();
    await b.close();
  });

  it('clone refuses a directory that is not empty, and reports progress', async () => {
    const a = await peerStore('a.git');
    for (let i = 0; i < 30; i++) await a.set(`k${i}`, `v${i}`);
    const into = tempDir();
    fs.writeFileSync(path.join(into, 'precious'), 'keep me');
    const e = await errorOf(cloneStore(a.dir, into, { fs }));
    expect(e.code).toBe('REPOSITORY_EXISTS');
    expect(fs.readFileSync(path.join(into, 'precious'), 'utf8')).toBe('keep me');
    const progress: Progress[] = [];
    const b = await cloneStore(`file://${a.dir}`, path.join(tempDir(), 'b.git'), {
      fs,
      onProgress: (p) => progress.push(p),
    });
    expect(await b.getText('k29')).toBe('v29');
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(p.phase).toMatch(/^[A-Z][a-z]+( [a-z]+)*$/);
      expect(p.done).toBeGreaterThanOrEqual(0);
      if (p.total !== undefined) expect(p.done).toBeLessThanOrEqual(p.total);
    }
    expect(progress.some((p) => p.total !== undefined && p.done === p.total)).toBe(true);
    await a.close();
    await b.close();
  });
});
