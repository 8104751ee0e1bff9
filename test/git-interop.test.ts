import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/index.js';
import { diskStore, git, gitEnv, gitSubjects, sleep, tempDir } from './helpers.js';

/** `git fsck --strict` on a bare repository: its exit status and what it printed. */
function fsck(dir: string): { status: number | null; output: string } {
  const r = spawnSync('git', ['--git-dir', dir, 'fsck', '--strict'], { env: gitEnv, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function expectFsckClean(dir: string) {
  const { status, output } = fsck(dir);
  expect(status, output).toBe(0);
  // --strict problems are reported as errors or warnings; dangling objects are not problems.
  expect(output).not.toMatch(/^(error|warning|missing|broken)/im);
}

const rev = (dir: string, revision: string) => git(['--git-dir', dir, 'rev-parse', revision]).toString().trim();
const show = (dir: string, spec: string) => git(['--git-dir', dir, 'show', spec]);
const gitBranches = (dir: string) =>
  git(['--git-dir', dir, 'branch', '--format=%(refname:short)']).toString().trim().split('\n').filter(Boolean);
const lsTree = (dir: string, revision = 'main') =>
  git(['--git-dir', dir, 'ls-tree', '-r', '-z', '--name-only', revision]).toString().split('\0').filter(Boolean).sort();

/** Every value of `expected` is in git at `revision`, byte for byte. */
function expectGitValues(dir: string, expected: Record<string, Uint8Array | string>, revision = 'main') {
  for (const [key, value] of Object.entries(expected)) {
    expect(show(dir, `${revision}:${key}`), key).toEqual(Buffer.from(value));
  }
}

describe('a store is a git repository plain git understands', () => {
  it('records a mixed workload as one commit per operation, readable by git', async () => {
    const store = await diskStore();
    const dir = store.dir;
    const binary = Uint8Array.from([0x00, 0xff, 0x00, 0x0a, 0x0d, 0xfe, 0x80, 0xff, 0x00]);
    const expectedSubjects: string[] = [];

    await store.set('greeting', 'hello');
    expectedSubjects.push('set greeting');
    await store.set('bin', binary);
    expectedSubjects.push('set bin');
    await store.set('/cfg/db/host', 'db1');
    expectedSubjects.push('set cfg/db/host');
    const tmp = await store.set('tmp', 'temporary');
    expectedSubjects.push('set tmp');
    await store.set('cfg/db/port', '5432');
    expectedSubjects.push('set cfg/db/port');
    await store.delete('cfg/db/port');
    expectedSubjects.push('delete cfg/db/port');
    await store.batch([
      { op: 'set', key: 'cfg/a', value: '1' },
      { op: 'set', key: 'cfg/b', value: '2' },
      { op: 'delete', key: 'greeting' },
    ]);
    expectedSubjects.push('batch: 3 changes');

    const branchPoint = await store.resolve('main');
    const created = await store.createBranch('feature');
    expect(created.head).toBe(branchPoint);
    await store.set('feature/flag', 'on', { branch: 'feature' });
    await store.set('cfg/db/host', 'db2', { branch: 'feature' });
    const featureHead = await store.resolve('feature');
    expect(rev(dir, 'feature')).toBe(featureHead);

    // main moves on too, so the merge is a real two-parent merge.
    await store.set('ünï/κλειδί', 'värde ✓');
    expectedSubjects.push('set ünï/κλειδί');
    const merged = await store.merge('feature');
    expect(merged.outcome).toBe('merged');
    expectedSubjects.push('merge feature into main');
    const reverted = await store.revert(tmp.commit);
    expectedSubjects.push(`revert ${tmp.commit}`);
    expect(tmp.commit).toMatch(/^[0-9a-f]{40}$/);
    await store.close();

    expectFsckClean(dir);

    // One first-parent commit per operation, newest first, with the store's messages.
    expect(gitSubjects(dir)).toEqual([...expectedSubjects].reverse());
    expect((await store.log()).commits.map((c) => c.subject)).toEqual([...expectedSubjects].reverse());
    expect(rev(dir, 'main')).toBe(reverted.commit);
    expect(rev(dir, 'main^')).toBe(merged.commit);
    expect(rev(dir, `${merged.commit}^2`)).toBe(featureHead);
    // The branch's own commits are on its side of the merge, not on main's first-parent line.
    expect(gitSubjects(dir, 'feature').slice(0, 2)).toEqual(['set cfg/db/host', 'set feature/flag']);

    const expected: Record<string, Uint8Array | string> = {
      bin: binary,
      'cfg/a': '1',
      'cfg/b': '2',
      'cfg/db/host': 'db2',
      'feature/flag': 'on',
      'ünï/κλειδί': 'värde ✓',
    };
    expectGitValues(dir, expected);
    expect(lsTree(dir)).toEqual(Object.keys(expected).sort());
    for (const [key, value] of Object.entries(expected)) {
      expect(Buffer.from(await store.get(key)), key).toEqual(Buffer.from(value));
    }
    // The reverted and deleted keys are gone for git too.
    for (const gone of ['tmp', 'greeting', 'cfg/db/port']) {
      expect(() => show(dir, `main:${gone}`), gone).toThrow();
    }
    // ... but still in history.
    expect(show(dir, `${tmp.commit}:tmp`).toString()).toBe('temporary');

    expect(gitBranches(dir)).toEqual(['feature', 'main']);
    expect((await store.branches()).map((b) => b.name)).toEqual(gitBranches(dir));
    for (const b of await store.branches()) expect(rev(dir, b.name)).toBe(b.head);
  });

  it('sees commits pushed by plain git, and builds on them', async () => {
    const store = await diskStore();
    const dir = store.dir;
    await store.set('cfg/a', 'store a');
    await store.set('cfg/b', 'store b');
    const storeHead = (await store.set('other', 'x')).commit;
    expect(await store.getText('cfg/a')).toBe('store a');

    const work = path.join(tempDir(), 'work');
    git(['clone', '--quiet', dir, work]);
    expect(fs.readFileSync(path.join(work, 'cfg/a'), 'utf8')).toBe('store a');
    fs.writeFileSync(path.join(work, 'cfg/a'), 'edited by git');
    fs.writeFileSync(path.join(work, 'cfg/new'), 'added by git');
    git(['-C', work, 'add', '-A']);
    git(['-C', work, 'commit', '--quiet', '-m', 'plain git edit']);
    git(['-C', work, 'push', '--quiet', 'origin', 'main']);
    const pushed = rev(dir, 'main');
    expect(pushed).not.toBe(storeHead);
    expect(rev(dir, 'main^')).toBe(storeHead);

    await sleep(25); // past the default refreshMs (10 ms)
    expect(await store.getText('cfg/a')).toBe('edited by git');
    expect(await store.getText('cfg/new')).toBe('added by git');
    expect(await store.getText('cfg/b')).toBe('store b');
    const log = await store.log();
    expect(log.commits[0]!.id).toBe(pushed);
    expect(log.commits[0]!.subject).toBe('plain git edit');
    expect(log.commits[0]!.author.name).toBe('Plain Git');
    expect(log.commits[1]!.id).toBe(storeHead);

    const next = await store.set('cfg/b', 'store again');
    expect(rev(dir, 'main')).toBe(next.commit);
    expect(rev(dir, 'main^')).toBe(pushed);
    expectGitValues(dir, { 'cfg/a': 'edited by git', 'cfg/new': 'added by git', 'cfg/b': 'store again' });
    expectFsckClean(dir);

    // The clone pulls the store's commit back without trouble.
    git(['-C', work, 'pull', '--quiet', '--ff-only']);
    expect(fs.readFileSync(path.join(work, 'cfg/b'), 'utf8')).toBe('store again');
  });

  it('opens a repository made and filled only by plain git', async () => {
    const root = tempDir();
    const dir = path.join(root, 'plain.git');
    git(['init', '--quiet', '--bare', '--initial-branch=main', dir]);
    const work = path.join(root, 'work');
    git(['clone', '--quiet', dir, work], { stdio: ['ignore', 'pipe', 'ignore'] });
    fs.mkdirSync(path.join(work, 'vm/web1'), { recursive: true });
    fs.writeFileSync(path.join(work, 'vm/web1/memory'), '2048');
    fs.writeFileSync(path.join(work, 'vm/web1/cpus'), '4');
    fs.writeFileSync(path.join(work, 'top'), Buffer.from([0xff, 0x00, 0xfe]));
    git(['-C', work, 'add', '-A']);
    git(['-C', work, 'commit', '--quiet', '-m', 'first from git']);
    git(['-C', work, 'push', '--quiet', 'origin', 'HEAD:main']);
    const head = rev(dir, 'main');

    const store = await openStore({ fs, dir });
    expect(store.defaultBranch).toBe('main');
    expect(await store.getText('vm/web1/memory')).toBe('2048');
    expect(await store.getText('vm/web1/cpus')).toBe('4');
    expect(Buffer.from(await store.get('top'))).toEqual(Buffer.from([0xff, 0x00, 0xfe]));
    expect((await store.list('vm/web1')).entries.map((e) => e.key)).toEqual(['vm/web1/cpus', 'vm/web1/memory']);
    expect(await store.resolve('main')).toBe(head);
    expect((await store.log()).commits.map((c) => c.subject)).toEqual(['first from git']);

    const written = await store.set('vm/web1/memory', '4096');
    expect(rev(dir, 'main^')).toBe(head);
    expect(rev(dir, 'main')).toBe(written.commit);
    expectGitValues(dir, { 'vm/web1/memory': '4096', 'vm/web1/cpus': '4' });
    expectFsckClean(dir);
  });

  it('works with packed refs: reads, writes and deletes packed branches', async () => {
    const store = await diskStore();
    const dir = store.dir;
    await store.set('a', 'one');
    await store.set('b', 'two');
    await store.createBranch('b1');
    await store.createBranch('b2');
    await store.createBranch('team/b3');
    await store.set('on-b2', 'yes', { branch: 'b2' });
    const heads = Object.fromEntries((await store.branches()).map((b) => [b.name, b.head]));

    git(['--git-dir', dir, 'pack-refs', '--all']);
    const packedRefs = () => fs.readFileSync(path.join(dir, 'packed-refs'), 'utf8');
    // The refs really are packed now: no loose files left.
    for (const name of ['main', 'b1', 'b2', 'team/b3']) {
      expect(fs.existsSync(path.join(dir, 'refs/heads', name)), name).toBe(false);
      expect(packedRefs()).toContain(`${heads[name]} refs/heads/${name}\n`);
    }

    // The store opened before packing and one opened after both read through packed-refs.
    await new Promise((r) => setTimeout(r, 20));
    const fresh = await openStore({ fs, dir });
    for (const s of [store, fresh]) {
      expect(await s.getText('a')).toBe('one');
      expect(await s.getText('on-b2', { branch: 'b2' })).toBe('yes');
      expect(Object.fromEntries((await s.branches()).map((b) => [b.name, b.head]))).toEqual(heads);
    }

    // Writes move packed branches (loose ref over the packed one, as git does).
    const w1 = await fresh.set('c', 'three');
    expect(rev(dir, 'main')).toBe(w1.commit);
    expect(rev(dir, 'main^')).toBe(heads.main);
    const w2 = await fresh.set('b2-key', 'v', { branch: 'b2' });
    expect(rev(dir, 'b2')).toBe(w2.commit);
    expect(rev(dir, 'b2^')).toBe(heads.b2);
    expectGitValues(dir, { c: 'three' });
    expectGitValues(dir, { 'b2-key': 'v', 'on-b2': 'yes' }, 'b2');

    // Deleting a packed-only branch removes it from packed-refs.
    await fresh.deleteBranch('b1');
    expect(gitBranches(dir)).toEqual(['b2', 'main', 'team/b3']);
    expect(packedRefs()).not.toContain('refs/heads/b1');
    // Deleting a branch that is both loose (after the write) and packed removes both.
    await fresh.deleteBranch('b2');
    expect(gitBranches(dir)).toEqual(['main', 'team/b3']);
    expect(packedRefs()).not.toContain('refs/heads/b2');
    expect(fs.existsSync(path.join(dir, 'refs/heads/b2'))).toBe(false);
    await fresh.deleteBranch('team/b3');
    expect(gitBranches(dir)).toEqual(['main']);
    expect((await fresh.branches()).map((b) => b.name)).toEqual(['main']);
    // The other branches' packed entries survive the rewrite of packed-refs.
    expect(packedRefs()).toContain(`${heads.main} refs/heads/main\n`);
    await expect(fresh.getText('on-b2', { branch: 'b2' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expectFsckClean(dir);
  });

  it('reads and writes after git gc repacks everything with deltas', async () => {
    const store = await diskStore();
    const dir = store.dir;
    const expected: Record<string, string> = {};
    const history: { commit: string; key: string; value: string }[] = [];
    // Large, similar values: git gc stores the older versions as deltas of the newer ones.
    const base = Array.from({ length: 400 }, (_, i) => `line ${i}: ${'abcdefghij'.repeat(4)}`).join('\n');
    for (let version = 0; version < 8; version++) {
      for (const key of ['docs/one', 'docs/two', 'docs/three']) {
        const value = `${base}\n${key} version ${version}\n`;
        const { commit } = await store.set(key, value);
        history.push({ commit, key, value });
        expected[key] = value;
      }
    }
    await store.createBranch('side');
    await store.set('side/only', 'side value', { branch: 'side' });
    await store.close();

    git(['--git-dir', dir, 'gc', '--quiet', '--prune=now']);
    const packDir = path.join(dir, 'objects/pack');
    const idx = fs.readdirSync(packDir).filter((n) => n.endsWith('.idx'));
    expect(idx).toHaveLength(1);
    const verify = git(['verify-pack', '-v', path.join(packDir, idx[0]!)]).toString();
    expect(verify).toMatch(/chain length = [1-9]\d*: \d+ objects?/);
    expect(fs.existsSync(path.join(dir, 'packed-refs'))).toBe(true);

    await new Promise((r) => setTimeout(r, 20));
    const fresh = await openStore({ fs, dir });
    for (const s of [fresh, store]) {
      for (const [key, value] of Object.entries(expected)) expect(await s.getText(key), key).toBe(value);
      expect(await s.getText('side/only', { branch: 'side' })).toBe('side value');
    }
    // Old versions (the ones git stored as deltas) read back exactly.
    for (const { commit, key, value } of history) expect(await fresh.getText(key, { at: commit }), key).toBe(value);
    expect((await fresh.log({ limit: 1000 })).commits).toHaveLength(history.length);

    const before = rev(dir, 'main');
    const w = await fresh.set('docs/one', 'after gc');
    expect(rev(dir, 'main')).toBe(w.commit);
    expect(rev(dir, 'main^')).toBe(before);
    const w2 = await store.set('docs/two', 'after gc, old store');
    expect(rev(dir, 'main^')).toBe(w.commit);
    expect(rev(dir, 'main')).toBe(w2.commit);
    expectGitValues(dir, {
      'docs/one': 'after gc',
      'docs/two': 'after gc, old store',
      'docs/three': expected['docs/three']!,
    });
    expectFsckClean(dir);
  });
});
