/**
 * Pushes to `store serve`'s git server: the pre-receive check (src/remote/receive-check.ts, run by git-hooks/ through
 * `store git-hook`) refuses what the store could not read — invalid keys, invalid `.store/*.json`, refs/store/*,
 * branch names the store refuses — with git's own rejection, leaving the store unchanged; a push racing 50 HTTP
 * writers loses nothing; a non-fast-forward push is refused by git unless forced; a long history goes through.
 * Real git, a real `store serve` (bin/store.js → dist/: `npm run build` first).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { expectFsckClean, gitValues } from './git-packs.js';
import { cliEnv, commitFiles, expectDeclined, git, gitEnv, gitOk, runProcess, tempDir } from './helpers.js';
import { put, type Served, startServe, stopServe } from './serve.js';

const servers: Served[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await stopServe(s);
});

const headOf = (repo: string, ref = 'main') => git(['--git-dir', repo, 'rev-parse', ref]).toString().trim();
const revParse = (work: string, rev = 'HEAD') => git(['-C', work, 'rev-parse', rev]).toString().trim();

/** A served store with one key, and a working clone of it. */
async function setup(): Promise<{ s: Served; repo: string; work: string }> {
  const repo = path.join(tempDir(), 'store.git');
  const s = await startServe(repo);
  servers.push(s);
  expect((await put(s.url, 'vm/1/state', 'running')).status).toBe(201);
  const work = path.join(tempDir(), 'work');
  await gitOk(['clone', '-q', `${s.url}/git`, work]);
  return { s, repo, work };
}

/**
 * 50 HTTP writers, `perWriter` PUTs each, racing plain git pushing to the same branch of one `store serve`: every
 * acknowledged write and every pushed commit ends on the branch, and git fsck --strict stays clean.
 */
async function pushRace(perWriter: number): Promise<void> {
  const { s, repo, work } = await setup();
  const writers = 50;
  const acknowledged = new Map<string, string>();
  let writing = true;
  const puts = (async () => {
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          const key = `http/${w}/${i}`;
          const value = `w${w}-${i}`;
          const r = await put(s.url, key, value);
          if (r.status === 200 || r.status === 201) acknowledged.set(key, value);
          else expect.fail(`PUT ${key}: ${r.status} ${r.body}`);
        }
      }),
    );
    writing = false;
  })();

  // Meanwhile: commits from plain git, pushed; a push that lost the race to a writer is fetched, merged, pushed again.
  const pushed: string[] = [];
  let rejected = 0;
  for (let round = 0; writing || round < 2; round++) {
    pushed.push(await commitFiles(work, { [`git/${round}`]: `round ${round}` }, `round ${round}`));
    for (let attempt = 0; ; attempt++) {
      const r = await runProcess('git', ['-C', work, 'push', 'origin', 'main'], gitEnv);
      if (r.code === 0) break;
      rejected++;
      expect(r.stderr, r.stderr).toMatch(/\(fetch first\)|\(failed to update ref\)|cannot lock ref/);
      expect(attempt, 'a push that never gets through').toBeLessThan(200);
      await gitOk(['-C', work, 'pull', '-q', '--no-rebase', '--no-edit', 'origin', 'main']);
    }
  }
  await puts;
  console.log(`git server race: ${pushed.length} pushes, ${rejected} rejected and retried`);

  // Every acknowledged PUT is in the final tree, every pushed commit in its history.
  const values = gitValues(repo, [...acknowledged.keys()]);
  for (const [key, value] of acknowledged) expect(values.get(key)?.toString(), key).toBe(value);
  expect(acknowledged.size).toBe(writers * perWriter);
  for (const commit of pushed) git(['--git-dir', repo, 'merge-base', '--is-ancestor', commit, 'main']);
  const rounds = gitValues(
    repo,
    pushed.map((_, i) => `git/${i}`),
  );
  expect(rounds.size).toBe(pushed.length);
  expectFsckClean(repo);
}

describe('a push to store serve', () => {
  it('is refused, store unchanged, when a commit brings a key or a .store/*.json the store refuses', async () => {
    const { s, repo, work } = await setup();
    const before = headOf(repo);
    const cases: [Record<string, string | null>, RegExp][] = [
      [{ 'vm/web\\1': 'x' }, /invalid key "vm\/web\\\\1": segment "web\\\\1" contains a forbidden character \(0x5c\)/],
      [{ 'vm/tab\there': 'x' }, /invalid key .*forbidden character \(0x09\)/],
      [{ 'vm/nel\u0085x': 'x' }, /forbidden character \(0x85\)/],
      [{ [Array.from({ length: 13 }, () => 'a'.repeat(250)).join('/')]: 'x' }, /longer than 3072 bytes/],
      [{ '.store/merge.json': '{"default": "newest"}' }, /\.store\/merge\.json: unknown merge strategy "newest"/],
      [{ '.store/merge.json': '{"default": ' }, /\.store\/merge\.json is not valid JSON/],
      [{ '.store/retention.json': '[{"within": "1h"}]' }, /retention tier 1 needs exactly one of "every"/],
      [{ '.store/replicas.json': 'not json' }, /\.store\/replicas\.json: it is not valid JSON/],
    ];
    for (const [files, reason] of cases) {
      await commitFiles(work, files, 'bad');
      await expectDeclined(work, 'main', reason);
      await gitOk(['-C', work, 'reset', '-q', '--hard', 'origin/main']);
    }
    // A symbolic link is not a value.
    fs.symlinkSync('/etc/passwd', path.join(work, 'link'));
    await commitFiles(work, {}, 'a link');
    await expectDeclined(work, 'main', /"link" is a symbolic link \(mode 120000\); a value is a plain file/);
    await gitOk(['-C', work, 'reset', '-q', '--hard', 'origin/main']);

    // Every new commit is checked, not only the last: an invalid key added and removed again is still refused.
    const bad = await commitFiles(work, { 'a\\b': 'x' }, 'add it');
    await commitFiles(work, { 'a\\b': null }, 'remove it');
    await expectDeclined(work, 'main', new RegExp(`commit ${bad.slice(0, 10)}: invalid key "a\\\\\\\\b"`));
    await gitOk(['-C', work, 'reset', '-q', '--hard', 'origin/main']);

    // A merge is checked for what it brings: here an invalid key from its second parent.
    await gitOk(['-C', work, 'checkout', '-q', '-b', 'side']);
    await commitFiles(work, { 'side\\key': 'x' }, 'on the side');
    await gitOk(['-C', work, 'checkout', '-q', 'main']);
    await commitFiles(work, { 'vm/1/memory': '1024' }, 'on main');
    await gitOk(['-C', work, 'merge', '-q', '--no-edit', 'side']);
    await expectDeclined(work, 'main', /invalid key "side\\\\key"/);
    await gitOk(['-C', work, 'reset', '-q', '--hard', 'origin/main']);

    // Nothing of it reached the store: the same head, a clean repository, and the store reads on.
    expect(headOf(repo)).toBe(before);
    expectFsckClean(repo);
    const read = await fetch(`${s.url}/v1/branches/main/keys/vm/1/state`);
    expect(await read.text()).toBe('running');

    // A valid push of the same kinds of files goes through.
    const good = await commitFiles(
      work,
      { '.store/merge.json': '{"default": "lww", "prefixes": {"stats": "counter"}}', 'vm/web1/state': 'ok' },
      'good',
    );
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    expect(headOf(repo)).toBe(good);
  });

  it('refuses refs/store/*, refs outside heads and tags, branch names the store refuses, deleting the default branch', async () => {
    const { repo, work } = await setup();
    const before = git(['--git-dir', repo, 'for-each-ref']).toString();
    await commitFiles(work, { 'vm/2/state': 'x' }, 'new');
    await expectDeclined(
      work,
      'HEAD:refs/store/x',
      /refs\/store\/x: refs\/store\/\* are the store's own/,
      'HEAD -> refs/store/x',
    );
    await expectDeclined(
      work,
      'HEAD:refs/store/tx/abc',
      /refs\/store\/tx\/abc: refs\/store\/\* are the store's own/,
      'HEAD -> refs/store/tx/abc',
    );
    await expectDeclined(work, 'HEAD:refs/notes/x', /refs\/notes\/x: the store takes branches/, 'HEAD -> refs/notes/x');
    // Names git takes as refs but the store (like `git check-ref-format --branch`) does not as branches.
    await expectDeclined(work, 'HEAD:refs/heads/HEAD', /"HEAD" is reserved/, 'HEAD -> HEAD');
    await expectDeclined(work, 'HEAD:refs/heads/-x', /it may not start with "-"/, 'HEAD -> -x');
    await expectDeclined(work, ':main', /main is the default branch and cannot be deleted/, 'main');
    expect(git(['--git-dir', repo, 'for-each-ref']).toString()).toBe(before);

    // Branches and tags are taken, and another branch can be deleted.
    await gitOk(['-C', work, 'push', '-q', 'origin', 'HEAD:refs/heads/dev', 'HEAD:refs/tags/v1']);
    expect(headOf(repo, 'dev')).toBe(revParse(work));
    expect(headOf(repo, 'v1')).toBe(revParse(work));
    await gitOk(['-C', work, 'push', '-q', 'origin', ':dev']);
    expect(git(['--git-dir', repo, 'branch', '--list', 'dev']).toString()).toBe('');
  });

  it('is refused by git when not a fast-forward, and taken with --force (as git does; see README)', async () => {
    const { s, repo, work } = await setup();
    const other = path.join(tempDir(), 'other');
    await gitOk(['clone', '-q', `${s.url}/git`, other]);
    const first = await commitFiles(work, { 'vm/1/state': 'halted' }, 'first');
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    const second = await commitFiles(other, { 'vm/1/state': 'paused' }, 'second');
    const r = await runProcess('git', ['-C', other, 'push', 'origin', 'main'], gitEnv);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/! \[rejected\] +main -> main \(fetch first\)/);
    expect(headOf(repo)).toBe(first);
    await gitOk(['-C', other, 'push', '-q', '--force', 'origin', 'main']);
    expect(headOf(repo)).toBe(second);
    expectFsckClean(repo);
  });

  // 400 writes racing the pushes is a long simulation (each push runs the pre-receive check in a new process): test:slow.
  it('racing 50 HTTP writers on the same branch loses nothing, and git fsck --strict stays clean', () => pushRace(2));
  it('racing 50 HTTP writers, 8 writes each, loses nothing either', { tags: ['slow'] }, () => pushRace(8));

  it('takes a 2,000-commit history in one push', { tags: ['slow'] }, async () => {
    const { s, repo, work } = await setup();
    // fast-import: 2,000 commits on a new root, each changing one key.
    const commits = 2000;
    const lines: string[] = [];
    for (let i = 1; i <= commits; i++) {
      const message = `commit ${i}\n`;
      const value = `value ${i}\n`;
      lines.push(
        `commit refs/heads/history\nmark :${i}\ncommitter Plain Git <plain@git.test> ${1_700_000_000 + i} +0000\n`,
        `data ${message.length}\n${message}`,
        i > 1 ? `from :${i - 1}\n` : '',
        `M 100644 inline vm/${i % 300}/k${i % 7}\ndata ${value.length}\n${value}\n`,
      );
    }
    git(['-C', work, 'fast-import', '--quiet'], { input: lines.join(''), stdio: ['pipe', 'pipe', 'pipe'] });
    const started = Date.now();
    await gitOk(['-C', work, 'push', '-q', 'origin', 'history']);
    console.log(`git server: push of a ${commits}-commit history took ${Date.now() - started} ms`);
    expect(git(['--git-dir', repo, 'rev-list', '--count', 'history']).toString().trim()).toBe(String(commits));
    const read = await fetch(`${s.url}/v1/branches/history/keys/vm/${commits % 300}/k${commits % 7}`);
    expect(await read.text()).toBe(`value ${commits}\n`);
    expectFsckClean(repo);
  });

  it('declines when the check itself fails, telling the pusher no path and the server log the details', async () => {
    // A repository whose pushed commit's parent is missing: git rev-list fails inside the check.
    const repo = path.join(tempDir(), 'broken.git');
    git(['init', '-q', '--bare', repo]);
    const piped = (input: string) => ({ input, stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'] });
    const blob = git(['--git-dir', repo, 'hash-object', '-w', '--stdin'], piped('v')).toString().trim();
    const tree = git(['--git-dir', repo, 'mktree'], piped(`100644 blob ${blob}\tk\n`))
      .toString()
      .trim();
    const missing = 'f'.repeat(40);
    const body = `tree ${tree}\nparent ${missing}\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nx\n`;
    const commit = git(['--git-dir', repo, 'hash-object', '-w', '-t', 'commit', '--stdin'], piped(body))
      .toString()
      .trim();
    // The hook as git runs it: in the repository, the update on stdin, fd 3 the server's log pipe.
    const hook = fileURLToPath(new URL('../git-hooks/pre-receive', import.meta.url));
    const child = spawn(hook, [], {
      cwd: repo,
      env: { ...cliEnv(), GIT_DIR: '.', GITSTORE_NODE: process.execPath, GITSTORE_HOOK_LOG_FD: '3' },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const read = (i: number) =>
      new Promise<string>((resolve) => {
        let text = '';
        (child.stdio[i] as NodeJS.ReadableStream).setEncoding('utf8');
        child.stdio[i]!.on('data', (s: string) => {
          text += s;
        });
        child.stdio[i]!.on('end', () => resolve(text));
      });
    const [stderr, log] = [read(2), read(3)];
    child.stdin!.end(`${'0'.repeat(40)} ${commit} refs/heads/main\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).not.toBe(0);
    expect(await stderr).toMatch(/the store could not check this push; the server log has the details/);
    expect(await stderr).not.toContain(repo);
    expect(await log).toMatch(/pre-receive check of .* failed: Error: git rev-list failed/);
  });
});
