/**
 * Access over git (issue 15): `store serve`'s git server with auth on, driven by real git. A branch is served only to
 * a token that may read all of it (the others are hidden, and their commits cannot be fetched by id either, whatever
 * protocol the client asks for); a push needs write on every key its commits change, write on all of a branch it
 * creates, admin for a branch it deletes or a tag. git sends the token as a password (Basic), as with git hosts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessRepo } from './access-fixture.js';
import { expectFsckClean } from './git-packs.js';
import { git, gitEnv, runProcess } from './helpers.js';
import { type Served, startServe, stopServe } from './serve.js';

const ACCESS = {
  roles: {
    // Reads app/web/ on main: not all of any branch.
    web: { rules: [{ branch: 'main', prefix: 'app/web/', access: 'read' }] },
    // Reads all of main, writes app/ there.
    appw: {
      rules: [
        { branch: 'main', prefix: '', access: 'read' },
        { branch: 'main', prefix: 'app/', access: 'write' },
      ],
    },
    // Writes all of the dev* branches, reads main.
    devw: {
      rules: [
        { branch: 'dev*', prefix: '', access: 'write' },
        { branch: 'main', prefix: '', access: 'read' },
      ],
    },
  },
};

type Who = 'web' | 'appw' | 'devw' | 'admin';
const tokens = {} as Record<Who, string>;
let server: Served;
let repo: string;
let root: string;

beforeAll(async () => {
  const made = await accessRepo({
    name: 'git-access',
    access: ACCESS,
    keys: { 'app/web/port': '8080', 'secret/key': 'top secret value' },
    roles: ['web', 'appw', 'devw', 'admin'],
    more: async (store) => {
      await store.createBranch('dev');
      await store.set('secret/key', 'changed on dev', { branch: 'dev' });
    },
    identity: (who) => `${who} <${who}@git.test>`,
  });
  repo = made.repo;
  root = path.dirname(repo);
  Object.assign(tokens, made.tokens);
  server = await startServe(repo, ['--port', '0', '--rate-limit', '0']);
});

afterAll(async () => {
  if (server) await stopServe(server);
  fs.rmSync(root, { recursive: true, force: true });
});

/** The git URL with the token as the password, as a credential helper would give it. */
const urlAs = (who: Who | null) => {
  const url = new URL(`${server.url}/git`);
  if (who) {
    url.username = who;
    url.password = tokens[who];
  }
  return url.href;
};

/** git as a person: commits it makes are signed with `who`'s identity (the token's), else with gitEnv's. */
const run = (args: string[], protocol = 2, who?: Who) =>
  runProcess('git', ['-c', `protocol.version=${protocol}`, ...args], {
    ...gitEnv,
    GIT_TERMINAL_PROMPT: '0',
    ...(who ? identityEnv(who) : {}),
  });

const identityEnv = (who: Who) => ({
  GIT_AUTHOR_NAME: who,
  GIT_AUTHOR_EMAIL: `${who}@git.test`,
  GIT_COMMITTER_NAME: who,
  GIT_COMMITTER_EMAIL: `${who}@git.test`,
});

async function gitOk(args: string[], who?: Who): Promise<string> {
  const r = await run(args, 2, who);
  expect(r.code, `git ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

const head = (ref: string) => git(['--git-dir', repo, 'rev-parse', ref]).toString().trim();
const refsOf = (out: string) =>
  out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t')[1])
    .sort();

/** A clone as `who` with a commit on top changing `files`; returns the working directory. */
async function cloneAndCommit(
  who: Who,
  branch: string,
  files: Record<string, string>,
  signer: Who | null = who,
): Promise<string> {
  const work = fs.mkdtempSync(path.join(root, `work-${who}-`));
  await gitOk(['clone', '-q', '--branch', branch, urlAs(who), work]);
  for (const [key, value] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(work, key)), { recursive: true });
    fs.writeFileSync(path.join(work, key), value);
  }
  await gitOk(['-C', work, 'add', '-A']);
  await gitOk(['-C', work, 'commit', '-q', '--allow-empty', '-m', `change by ${who}`], signer ?? undefined);
  return work;
}

describe('reading over git', () => {
  it('asks for a token (offering Basic, so git can ask its credential helper) and takes one as the password', async () => {
    const res = await fetch(`${server.url}/git/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/Basic realm="gitstore"/);
    const anonymous = await run(['ls-remote', urlAs(null)]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/Authentication failed|could not read Username/);
    const wrong = new URL(urlAs('admin'));
    wrong.password = 'gst_000000000000_nope';
    expect((await run(['ls-remote', wrong.href])).code).not.toBe(0);
    expect(refsOf(await gitOk(['ls-remote', urlAs('admin')]))).toEqual(['HEAD', 'refs/heads/dev', 'refs/heads/main']);
  });

  it('serves only the branches a token may read whole, in protocol v0 and v2 alike', async () => {
    for (const protocol of [0, 2]) {
      const listed = async (who: Who) => refsOf((await run(['ls-remote', urlAs(who)], protocol)).stdout);
      expect(await listed('appw')).toEqual(['HEAD', 'refs/heads/main']);
      expect(await listed('devw')).toEqual(['HEAD', 'refs/heads/dev', 'refs/heads/main']);
      // app/web/ is not all of main: nothing is served.
      expect(await listed('web')).toEqual([]);
    }
  });

  it('refuses a hidden branch fetched by commit id, whatever protocol the client asks for', async () => {
    const dev = head('dev');
    for (const protocol of [0, 2]) {
      const into = fs.mkdtempSync(path.join(root, 'fetch-'));
      await gitOk(['init', '-q', '--bare', into]);
      const got = await run(['--git-dir', into, 'fetch', urlAs('appw'), dev], protocol);
      expect(got.code, got.stderr).not.toBe(0);
      expect(got.stderr).toMatch(/not our ref|unadvertised object|couldn't find remote ref/i);
      expect(fs.readdirSync(path.join(into, 'objects', 'pack'))).toEqual([]);
    }
    // The admin gets it.
    const into = fs.mkdtempSync(path.join(root, 'fetch-'));
    await gitOk(['init', '-q', '--bare', into]);
    await gitOk(['--git-dir', into, 'fetch', urlAs('admin'), dev]);
  });
});

describe('pushing over git', () => {
  it('takes a push whose commits change only keys the token may write', async () => {
    const work = await cloneAndCommit('appw', 'main', { 'app/web/port': '9090' });
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    expect(head('main')).toBe(git(['-C', work, 'rev-parse', 'HEAD']).toString().trim());
    expect(git(['--git-dir', repo, 'show', 'main:app/web/port']).toString()).toBe('9090');
  });

  it('refuses a push that changes a key the token may not write, even in an earlier commit of the push', async () => {
    const before = head('main');
    const work = await cloneAndCommit('appw', 'main', { 'secret/key': 'stolen' });
    // A second commit puts the value back: the net change is only app/, but the history changes secret/key.
    fs.writeFileSync(path.join(work, 'secret', 'key'), 'top secret value');
    fs.writeFileSync(path.join(work, 'app', 'web', 'port'), '7070');
    await gitOk(['-C', work, 'commit', '-q', '-am', 'put it back'], 'appw');
    const pushed = await run(['-C', work, 'push', 'origin', 'main']);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toMatch(/pre-receive hook declined/);
    expect(pushed.stderr).toMatch(/may not write on main: "secret\/key"/);
    expect(head('main')).toBe(before);
  });

  it('a push of commits signed by someone else needs a role with impersonate', async () => {
    const before = head('main');
    // Signed "Plain Git", not appw: the token would be recording another person's authorship.
    const work = await cloneAndCommit('appw', 'main', { 'app/web/port': '6060' }, null);
    const pushed = await run(['-C', work, 'push', 'origin', 'main']);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toMatch(/signed "Plain Git <plain@git.test>".*"appw <appw@git.test>".*impersonate/s);
    expect(head('main')).toBe(before);
    // Signed by the token's identity, the same change goes in.
    await gitOk(['-C', work, 'commit', '-q', '--amend', '--no-edit', '--reset-author'], 'appw');
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    expect(git(['--git-dir', repo, 'show', 'main:app/web/port']).toString()).toBe('6060');
  });

  it("refuses a merge that brings another branch's changes to keys the token may not write", async () => {
    const before = head('main');
    const work = await cloneAndCommit('devw', 'main', {});
    await gitOk(['-C', work, 'fetch', '-q', 'origin', 'dev']);
    await gitOk(['-C', work, 'merge', '-q', '--no-edit', 'FETCH_HEAD'], 'devw');
    // devw may not write main at all; appw may write app/ but not the secret dev changed.
    const pushed = await run(['-C', work, 'push', 'origin', 'HEAD:main']);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toMatch(/secret\/key/);
    expect(head('main')).toBe(before);
  });

  it('creating a branch needs write on all of it, deleting one admin, and a tag admin', async () => {
    const work = await cloneAndCommit('devw', 'main', {});
    // appw may not write all of a new branch.
    await gitOk(['-C', work, 'remote', 'add', 'asappw', urlAs('appw')]);
    const made = await run(['-C', work, 'push', 'asappw', 'HEAD:refs/heads/feature']);
    expect(made.stderr).toMatch(/creating a branch needs write on all of it/);
    // devw writes all of dev*: it creates dev2, but may not delete it.
    await gitOk(['-C', work, 'push', '-q', 'origin', 'HEAD:refs/heads/dev2']);
    expect(head('dev2')).toBe(git(['-C', work, 'rev-parse', 'HEAD']).toString().trim());
    const deleted = await run(['-C', work, 'push', 'origin', ':refs/heads/dev2']);
    expect(deleted.stderr).toMatch(/deleting a branch needs admin/);
    const tagged = await run(['-C', work, 'push', 'origin', 'HEAD:refs/tags/v1']);
    expect(tagged.stderr).toMatch(/pushing a tag needs admin/);
    // The admin may.
    await gitOk(['-C', work, 'remote', 'add', 'asadmin', urlAs('admin')]);
    await gitOk(['-C', work, 'push', '-q', 'asadmin', ':refs/heads/dev2', 'HEAD:refs/tags/v1']);
    expect(git(['--git-dir', repo, 'for-each-ref', '--format=%(refname)']).toString()).not.toMatch(/dev2/);
  });

  it('a token that cannot read all of a branch cannot push to it: git hides it', async () => {
    const before = head('main');
    const work = await cloneAndCommit('admin', 'main', { 'app/web/x': '1' });
    await gitOk(['-C', work, 'remote', 'add', 'asweb', urlAs('web')]);
    const pushed = await run(['-C', work, 'push', 'asweb', 'HEAD:main']);
    expect(pushed.code).not.toBe(0);
    expect(pushed.stderr).toMatch(/hidden ref|creating a branch needs write/);
    expect(head('main')).toBe(before);
    await expectFsckClean(repo);
  });
});
