import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, StoreClient } from '../src/index.js';
import { BIN, cli } from './cli-process.js';
import { cliEnv, git, runProcess, tempDir } from './helpers.js';
import { bareRepository, lsRemote } from './remotes-peers.js';
import { type Served, startServe, stopServe } from './serve.js';

/**
 * Remotes through the real `store` binary (on a repository, and over --url through `store serve`) and over HTTP:
 * the commands' output, their exit codes, and the routes' statuses.
 */

const json = (body: unknown) => ({
  method: 'POST',
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

/**
 * A remote with one commit (k = base), and two stores cloned from it that then diverge on k; in `dir` (default: a
 * temporary directory removed after the test).
 */
async function divergedPeers(dir = tempDir()) {
  const remote = bareRepository(path.join(dir, 'remote.git'));
  const a = path.join(dir, 'a.git');
  const b = path.join(dir, 'b.git');
  const seed = await openStore({ fs, dir: a, create: true });
  await seed.set('k', 'base');
  await seed.remotes.add('origin', remote);
  await seed.push();
  await seed.close();
  expect((await cli(['clone', remote, b])).code).toBe(0);
  expect((await cli(['--repo', a, 'set', 'k', 'from a'])).code).toBe(0);
  expect((await cli(['--repo', a, 'push'])).code).toBe(0);
  expect((await cli(['--repo', b, 'set', 'k', 'from b'])).code).toBe(0);
  return { remote, a, b, dir };
}

describe('store remote, clone, fetch, pull and push on a repository', () => {
  it('remote add, list (NAME<TAB>URL, --json) and remove, as git sees them; bad names are usage errors', async () => {
    const repo = path.join(tempDir(), 'store.git');
    expect((await cli(['init', repo])).code).toBe(0);
    const added = await cli(['--repo', repo, 'remote', 'add', 'origin', 'https://git.example.com/config.git']);
    expect(added.code, added.stderr).toBe(0);
    expect((await cli(['--repo', repo, 'remote', 'add', 'backup', '/srv/backup.git'])).code).toBe(0);
    const listed = await cli(['--repo', repo, 'remote', 'list']);
    expect(listed.stdout).toBe('backup\t/srv/backup.git\norigin\thttps://git.example.com/config.git\n');
    expect((await cli(['--repo', repo, 'remote'])).stdout).toBe(listed.stdout);
    expect(JSON.parse((await cli(['--repo', repo, '--json', 'remote', 'list'])).stdout)).toEqual([
      { name: 'backup', url: '/srv/backup.git' },
      { name: 'origin', url: 'https://git.example.com/config.git' },
    ]);
    expect(git(['--git-dir', repo, 'remote']).toString()).toBe('backup\norigin\n');

    const exists = await cli(['--repo', repo, '--json', 'remote', 'add', 'origin', '/elsewhere.git']);
    expect(exists.code).toBe(4);
    expect(JSON.parse(exists.stdout).error.code).toBe('REMOTE_EXISTS');
    const injected = await cli(['--repo', repo, 'remote', 'add', 'evil', '--', '--upload-pack=touch /tmp/pwned']);
    expect(injected.code).toBe(2);
    expect(injected.stderr).toMatch(/invalid remote URL .*may not start with "-"/);
    expect((await cli(['--repo', repo, 'remote', 'add', 'a..b', '/x.git'])).code).toBe(2);
    expect((await cli(['--repo', repo, 'remote', 'bogus'])).code).toBe(2);

    expect((await cli(['--repo', repo, 'remote', 'remove', 'backup'])).stdout).toBe('removed remote backup\n');
    const gone = await cli(['--repo', repo, 'remote', 'rm', 'backup']);
    expect(gone.code).toBe(3);
    expect(git(['--git-dir', repo, 'remote']).toString()).toBe('origin\n');
  });

  it('clone makes <name>.git by default and refuses a directory that is not empty; --url is refused', async () => {
    const remote = bareRepository(path.join(tempDir(), 'hub.git'));
    const seed = await openStore({ fs, dir: path.join(tempDir(), 'seed.git'), create: true });
    await seed.set('vm/web1/memory', '2048');
    await seed.push(remote);
    await seed.close();
    const cwd = tempDir();
    const r = await cli(['clone', remote], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`cloned ${remote} into hub.git (default branch main)\n`);
    // Not a terminal: no progress bar on stderr.
    expect(r.stderr).toBe('');
    expect((await cli(['--repo', path.join(cwd, 'hub.git'), 'get', 'vm/web1/memory'])).stdout).toBe('2048');
    const again = await cli(['--json', 'clone', remote], { cwd });
    expect(again.code).toBe(4);
    expect(JSON.parse(again.stdout).error.code).toBe('REPOSITORY_EXISTS');
    const remoteUrl = await cli(['--url', 'http://127.0.0.1:9', 'clone', remote, path.join(cwd, 'x.git')]);
    expect(remoteUrl.code).toBe(2);
    expect(remoteUrl.stderr).toMatch(/clone creates a repository on this machine/);
    expect(fs.existsSync(path.join(cwd, 'x.git'))).toBe(false);
  });

  it('draws a progress bar on stderr when it is a terminal (util-linux `script` gives the command one)', async () => {
    const source = await openStore({ fs, dir: path.join(tempDir(), 'source.git'), create: true });
    for (let i = 0; i < 20; i++) await source.set(`k${i}`, `v${i}`);
    await source.close();
    const into = path.join(tempDir(), 'c.git');
    const command = [process.execPath, BIN, 'clone', `file://${source.dir}`, into].map((a) => `'${a}'`).join(' ');
    const r = await runProcess('script', ['-qec', command, '/dev/null'], cliEnv());
    expect(r.code, r.stderr).toBe(0);
    // Redrawn in place: carriage return, erase the line, the phase and its bar.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequence is what is checked
    expect(r.stdout).toMatch(/\r\u001b\[K(Counting|Receiving) objects \[#+\.*\] \d+\/\d+/);
    expect(r.stdout).toContain(`cloned file://${source.dir} into ${into} (default branch main)`);
  });

  it('fetch --json gives the refs that moved; a conflicting pull lists the keys and exits 4; a non-fast-forward push exits 4 saying to pull first', async () => {
    const { remote, b } = await divergedPeers();
    const fetched = await cli(['--repo', b, '--json', 'fetch']);
    expect(fetched.code, fetched.stderr).toBe(0);
    const head = (await lsRemote(remote))['refs/heads/main'];
    expect(JSON.parse(fetched.stdout)).toMatchObject({
      remote: 'origin',
      updated: [{ ref: 'refs/remotes/origin/main', old: null, new: head }],
    });
    expect((await cli(['--repo', b, 'fetch'])).stdout).toBe('origin: up to date\n');

    const pulled = await cli(['--repo', b, 'pull']);
    expect(pulled.code).toBe(4);
    expect(pulled.stdout).toMatch(/both-modified\s+k\s/);
    expect(pulled.stderr).toMatch(/^error: merging refs\/remotes\/origin\/main into main: 1 conflicting key/);
    const asJson = JSON.parse((await cli(['--repo', b, '--json', 'pull'])).stdout);
    expect(asJson.error.code).toBe('CONFLICT');
    expect(asJson.error.data.conflicts).toMatchObject([{ key: 'k', kind: 'both-modified' }]);
    expect((await cli(['--repo', b, 'get', 'k'])).stdout).toBe('from b');

    const pushed = await cli(['--repo', b, 'push']);
    expect(pushed.code).toBe(4);
    expect(pushed.stderr).toBe(
      'error: push to origin rejected: main has commits you do not have; pull first (store pull origin), or push --force\n',
    );
    expect((await lsRemote(remote))['refs/heads/main']).toBe(head);

    const resolved = await cli(['--repo', b, '--json', 'pull', '--strategy', 'ours', '-m', 'keep ours']);
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(JSON.parse(resolved.stdout).merge.outcome).toBe('merged');
    const ok = await cli(['--repo', b, 'push']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^[0-9a-f]{10}\.\.[0-9a-f]{10} +refs\/heads\/main\n$/);
    expect((await cli(['--repo', b, 'push'])).stdout).toBe('origin: everything up to date\n');
  });

  it('push --force replaces a branch that diverged', async () => {
    const { remote, b } = await divergedPeers();
    const forced = await cli(['--repo', b, '--json', 'push', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    const mine = git(['--git-dir', b, 'rev-parse', 'main']).toString().trim();
    expect(JSON.parse(forced.stdout).updated).toMatchObject([{ ref: 'refs/heads/main', new: mine, forced: true }]);
    expect((await lsRemote(remote))['refs/heads/main']).toBe(mine);
  });

  it('without git on PATH, remote commands fail naming the missing program (exit 6); the rest works', async () => {
    const repo = path.join(tempDir(), 'store.git');
    expect((await cli(['init', repo])).code).toBe(0);
    expect((await cli(['--repo', repo, 'set', 'k', 'v'])).code).toBe(0);
    const noGit = { PATH: tempDir() };
    for (const args of [
      ['fetch', '/srv/x.git'],
      ['remote', 'list'],
      ['push'],
      ['clone', '/srv/x.git', path.join(tempDir(), 'c.git')],
    ]) {
      const r = await cli(['--repo', repo, '--json', ...args], { env: noGit });
      expect(r.code, args.join(' ')).toBe(6);
      expect(r.stderr).toMatch(/the `git` program was not found on PATH/);
      expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'REMOTE', data: { program: 'git' } });
    }
    const get = await cli(['--repo', repo, 'get', 'k'], { env: noGit });
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toBe('v');
    expect((await cli(['--repo', repo, 'set', 'k', 'w'], { env: noGit })).code).toBe(0);
  });
});

describe('remotes through store serve: over --url, and HTTP', () => {
  let served: Served;
  let peers: Awaited<ReturnType<typeof divergedPeers>>;
  let root: string;
  beforeAll(async () => {
    // Not tempDir(): that is removed after each test, and these outlive one.
    root = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'gitstore-remotes-'));
    peers = await divergedPeers(root);
    // b's remote is set up by clone; the server works on b.
    git(['--git-dir', peers.b, 'remote', 'remove', 'origin']);
    served = await startServe(peers.b);
  });
  afterAll(async () => {
    await stopServe(served);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('manages the server’s remotes: PUT 201, the same again 200, another URL 409; DELETE 204 then 404', async () => {
    const url = `${served.url}/v1/remotes/origin`;
    const put = (u: string) => fetch(url, { ...json({ url: u }), method: 'PUT' });
    const created = await put(peers.remote);
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ name: 'origin', url: peers.remote });
    expect((await put(peers.remote)).status).toBe(200);
    const clash = await put('/elsewhere.git');
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as { error: { code: string } }).error.code).toBe('REMOTE_EXISTS');
    expect((await fetch(`${served.url}/v1/remotes/-x`, { ...json({ url: '/x.git' }), method: 'PUT' })).status).toBe(
      400,
    );
    expect(
      (await fetch(`${served.url}/v1/remotes/x`, { ...json({ url: '--upload-pack=x' }), method: 'PUT' })).status,
    ).toBe(400);
    const scratch = `${served.url}/v1/remotes/scratch`;
    expect((await fetch(scratch, { ...json({ url: '/x.git' }), method: 'PUT' })).status).toBe(201);
    expect((await fetch(scratch, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(scratch, { method: 'DELETE' })).status).toBe(404);
    expect(await (await fetch(`${served.url}/v1/remotes`)).json()).toEqual([{ name: 'origin', url: peers.remote }]);
    // The CLI over --url sees the same.
    expect((await cli(['--url', served.url, 'remote', 'list'])).stdout).toBe(`origin\t${peers.remote}\n`);
  });

  it('fetches, pulls (409 with data.conflicts) and pushes (409 PUSH_REJECTED) over HTTP and over --url', async () => {
    await fetch(`${served.url}/v1/remotes/origin`, { ...json({ url: peers.remote }), method: 'PUT' });
    const fetched = await fetch(`${served.url}/v1/remotes/origin/fetch`, { method: 'POST' });
    expect(fetched.status).toBe(200);
    expect(((await fetched.json()) as { updated: unknown[] }).updated).toHaveLength(1);
    // Only configured remotes over HTTP: a path in the name's place is refused.
    const byPath = await fetch(`${served.url}/v1/remotes/${encodeURIComponent(peers.remote)}/fetch`, {
      method: 'POST',
    });
    expect(byPath.status).toBe(400);

    const pull = await fetch(`${served.url}/v1/remotes/origin/pull`, json({}));
    expect(pull.status).toBe(409);
    const body = (await pull.json()) as { error: { code: string; data: { conflicts: { key: string }[] } } };
    expect(body.error.code).toBe('CONFLICT');
    expect(body.error.data.conflicts.map((c) => c.key)).toEqual(['k']);
    const viaUrl = await cli(['--url', served.url, 'pull']);
    expect(viaUrl.code).toBe(4);
    expect(viaUrl.stdout).toMatch(/both-modified\s+k\s/);

    const push = await fetch(`${served.url}/v1/remotes/origin/push`, json({ branch: 'main' }));
    expect(push.status).toBe(409);
    const rejected = (await push.json()) as { error: { code: string; message: string; data: { rejected: unknown[] } } };
    expect(rejected.error.code).toBe('PUSH_REJECTED');
    expect(rejected.error.message).toMatch(/pull first \(store pull origin\)/);

    const client = new StoreClient(served.url);
    const merged = await client.pull('origin', { strategy: 'theirs' });
    expect(merged).toMatchObject({ remote: 'origin', branch: 'main', fetched: [], merge: { outcome: 'merged' } });
    expect(await client.getText('k')).toBe('from a');
    const pushed = await client.push();
    expect(pushed.updated).toMatchObject([{ ref: 'refs/heads/main', new: merged.merge.commit }]);
    expect((await lsRemote(peers.remote))['refs/heads/main']).toBe(merged.merge.commit);
    expect(await client.fetch()).toEqual({ remote: 'origin', updated: [] });
    expect(await client.remotes.list()).toEqual([{ name: 'origin', url: peers.remote }]);
    await client.close();
  });
});
