/**
 * Issue 13, defect 12: a store process killed mid-write leaves `refs/heads/<b>.lock` and `objects/pack/tmp_pack_*`
 * behind. The store records itself in what it leaves (src/storage/owner.ts), and removes what a dead process of this
 * machine left at once — at open, on a periodic sweep, and when a writer meets the lock — while a live process's
 * locks and files, and those of unknown owners (plain git's) younger than the age rule, stay.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type StoreError } from '../src/index.js';
import { Files, type FsLike } from '../src/storage/fs.js';
import { Leftovers } from '../src/storage/leftovers.js';
import { lockRecord, type Owner, selfOwner, tempTag } from '../src/storage/owner.js';
import { expectFsckClean, verifyPacks } from './git-packs.js';
import { diskStore, git, runProcess, until } from './helpers.js';
import { put, startServe, stopServe } from './serve.js';

const DIST = new URL('../dist/cli/main.js', import.meta.url);
const files = new Files(fs as unknown as FsLike);

/** A process's start time as /proc/<pid>/stat gives it (the field after the command name's 20th). */
function startOf(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/** An owner record for process `pid` of this machine (the machine as the store computes it). */
async function ownerOf(pid: number, start: string): Promise<Owner> {
  const self = await selfOwner(files);
  return { pid, start, machine: self.machine, host: self.host };
}

/** The owner of a process that ran and has exited (and been reaped): a dead owner. */
async function deadOwner(): Promise<Owner> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await until(() => child.pid !== undefined, 'a pid');
  const start = startOf(child.pid!);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return ownerOf(child.pid!, start);
}

const live: ChildProcess[] = [];
afterEach(() => {
  for (const c of live.splice(0)) c.kill('SIGKILL');
});

/** The owner of a live process that is not a store (a `sleep`), killed after the test. */
async function liveOwner(): Promise<{ owner: Owner; child: ChildProcess }> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  live.push(child);
  await until(() => child.pid !== undefined && fs.existsSync(`/proc/${child.pid}/stat`), 'a pid');
  return { owner: await ownerOf(child.pid!, startOf(child.pid!)), child };
}

/** Writes `<ref>.lock` with `content`, its modification time `ageMs` in the past. */
function lockFile(repo: string, ref: string, content: string, ageMs = 0): string {
  const lock = path.join(repo, `${ref}.lock`);
  fs.writeFileSync(lock, content);
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(lock, t, t);
  return lock;
}

function tempFile(repo: string, name: string, ageMs = 0): string {
  const file = path.join(repo, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'PACK partial');
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(file, t, t);
  return file;
}

/** A repository with main and the branches `names`, each with one value. */
async function seeded(names: string[]) {
  const store = await diskStore();
  await store.set('seed', '0');
  for (const name of names) await store.createBranch(name);
  await store.close();
  return store.dir;
}

describe('locks and temporary files of dead store processes', () => {
  beforeAll(() => {
    if (!fs.existsSync(DIST)) throw new Error('dist/ is missing: run `npm run build` first');
  });

  it('store serve removes them at open; live and unknown owners keep theirs; writes and git work at once', async () => {
    const repo = await seeded(['idle', 'busy', 'reused', 'gitlocked', 'oldgit']);
    const dead = await deadOwner();
    const { owner: alive, child } = await liveOwner();
    const headOfMain = git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim();
    const removed = [
      lockFile(repo, 'refs/heads/main', lockRecord(dead)),
      // A branch nobody writes to.
      lockFile(repo, 'refs/heads/idle', lockRecord(dead)),
      // A live pid, but not the process that took the lock: its start time differs (the pid was reused).
      lockFile(repo, 'refs/heads/reused', lockRecord({ ...alive, start: String(Number(alive.start) - 1) })),
      // Plain git's lock (it holds the new value), older than the age rule.
      lockFile(repo, 'refs/heads/oldgit', `${headOfMain}\n`, 5 * 60_000),
      tempFile(repo, `objects/pack/tmp_pack_${tempTag(dead)}_0a1b2c`),
      tempFile(repo, `objects/pack/tmp_pack_${tempTag(dead)}_0a1b2c.idx`),
      tempFile(repo, `store/tmp/ref_${tempTag(dead)}_3d4e5f`),
      // git's own temporary pack, two days old.
      tempFile(repo, 'objects/pack/tmp_pack_Xy12Ab', 48 * 3600_000),
    ];
    // A writer killed between installing a pack and its idx (pack.ts writePack renames the pack first): a pack
    // nothing refers to, whose idx is still the dead owner's temporary file. Both go.
    const blob = execFileSync('git', ['--git-dir', repo, 'hash-object', '-w', '--stdin'], { input: 'half' });
    const sum = execFileSync('git', ['--git-dir', repo, 'pack-objects', '-q', path.join(repo, 'objects/pack/pack')], {
      input: blob,
    })
      .toString()
      .trim();
    const halfIdx = path.join(repo, `objects/pack/tmp_pack_${tempTag(dead)}_9f8e7d.idx`);
    fs.renameSync(path.join(repo, `objects/pack/pack-${sum}.idx`), halfIdx);
    removed.push(halfIdx, path.join(repo, `objects/pack/pack-${sum}.pack`));
    const kept = [
      lockFile(repo, 'refs/heads/busy', lockRecord(alive)),
      lockFile(repo, 'refs/heads/gitlocked', `${headOfMain}\n`),
      tempFile(repo, `objects/pack/tmp_pack_${tempTag(alive)}_6a7b8c`),
      tempFile(repo, 'objects/pack/tmp_pack_Qw34Er'),
    ];

    const server = await startServe(repo);
    try {
      // Open is done once the server answers: what dead owners left is gone, the rest is not.
      for (const file of removed) expect(fs.existsSync(file), path.relative(repo, file)).toBe(false);
      for (const file of kept) expect(fs.existsSync(file), path.relative(repo, file)).toBe(true);
      // A lock left would make this wait 10 s and answer 423.
      expect((await put(server.url, 'after', 'open')).status).toBe(201);
      expect((await put(server.url, 'x', '1', 'reused')).status).toBe(201);
      // git can move the branch nobody wrote to.
      git(['--git-dir', repo, 'update-ref', 'refs/heads/idle', headOfMain]);
    } finally {
      expect(await stopServe(server)).toEqual({ code: 0, signal: null });
    }

    // The live process's lock: LOCKED, saying which ref, since when and by whom — and no server path.
    const store = await openStore({ fs, dir: repo, lockTimeoutMs: 200 });
    for (const [branch, by] of [
      ['busy', `process ${alive.pid}`],
      ['gitlocked', 'another program'],
    ] as const) {
      const e = (await store.set('k', 'v', { branch }).then(
        () => null,
        (err: unknown) => err,
      )) as StoreError | null;
      expect(e?.code, branch).toBe('LOCKED');
      expect(e!.message).toContain(`refs/heads/${branch} is locked since`);
      expect(e!.message).toContain(by);
      expect(e!.message).not.toContain(repo);
      expect(JSON.stringify(e!.data)).not.toContain(repo);
      expect(e!.data).toMatchObject({ ref: `refs/heads/${branch}` });
    }
    // Once that process is gone, the next writer removes its lock at once (the age rule would take 30 s).
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await store.set('k', 'v', { branch: 'busy' });
    expect(fs.existsSync(path.join(repo, 'refs/heads/busy.lock'))).toBe(false);
    await store.close();
    fs.rmSync(path.join(repo, 'refs/heads/gitlocked.lock'));
    fs.rmSync(kept[2]!);
    fs.rmSync(kept[3]!);
    verifyPacks(repo);
    expectFsckClean(repo);
  });

  it('a writer meeting a dead process lock removes it at once; the periodic sweep finds one nobody writes to', async () => {
    const repo = await seeded(['quiet']);
    // Locks of unknown owners would hold for a minute: only the owner record can free these.
    const store = await openStore({ fs, dir: repo, lockTimeoutMs: 200, staleLockMs: 60_000 });
    const dead = await deadOwner();
    const lock = lockFile(repo, 'refs/heads/main', lockRecord(dead));
    await store.set('a', '1');
    expect(fs.existsSync(lock)).toBe(false);

    const sweeper = new Leftovers(files, repo, 60_000, 20);
    await sweeper.open();
    try {
      const quiet = lockFile(repo, 'refs/heads/quiet', lockRecord(dead));
      const temp = tempFile(repo, `objects/pack/tmp_pack_${tempTag(dead)}_9f8e7d`);
      await until(() => !fs.existsSync(quiet) && !fs.existsSync(temp), 'the periodic sweep');
    } finally {
      sweeper.close();
    }
    await store.close();
    expectFsckClean(repo);
  });

  it('store serve killed with SIGKILL under write load, three times: each restart writes at once, leaves no leftovers', async () => {
    const repo = await seeded([]);
    let n = 0;
    for (let round = 0; round < 3; round++) {
      const server = await startServe(repo);
      let acked = 0;
      let stop = false;
      const writers = Array.from({ length: 8 }, async () => {
        while (!stop) {
          const r = await put(server.url, `load/k${n++ % 50}`, `v${n}`);
          if (r.status === 0) return;
          expect(r.status, r.body).toBeLessThan(300);
          acked++;
        }
      });
      await until(() => acked >= 40 + round * 10, 'acknowledged writes', 60_000);
      server.child.kill('SIGKILL');
      await server.exited;
      stop = true;
      await Promise.all(writers);
      // Whatever the kill left (a lock, a temporary pack: it varies), the restarted server has removed it.
      const restarted = await startServe(repo);
      try {
        const leftovers = [
          ...fs.readdirSync(path.join(repo, 'refs/heads')).filter((f) => f.endsWith('.lock')),
          ...fs.readdirSync(path.join(repo, 'objects/pack')).filter((f) => f.startsWith('tmp_')),
          ...(fs.existsSync(path.join(repo, 'store/tmp')) ? fs.readdirSync(path.join(repo, 'store/tmp')) : []),
        ];
        expect(leftovers).toEqual([]);
        expect((await put(restarted.url, 'after', `kill ${round}`)).status).toBeLessThan(300);
      } finally {
        expect(await stopServe(restarted)).toEqual({ code: 0, signal: null });
      }
    }
    verifyPacks(repo);
    expectFsckClean(repo);
    expect((await runProcess('git', ['--git-dir', repo, 'show', 'main:after'])).stdout).toBe('kill 2');
  });
});
