import { StoreError } from '../errors.js';
import { isOid, utf8 } from '../objects/object.js';
import type { Files } from './fs.js';
import { inspectLock, isStale, type LockState, REF_TEMP_DIR, removeStaleLock } from './leftovers.js';
import { lockRecord, selfOwner, tempName } from './owner.js';

/**
 * Branch heads, read and moved the way git does: loose ref files beside `packed-refs`, and every update as a
 * compare-and-swap under `<ref>.lock` (O_EXCL create). Because the lock is git's own, plain git, other store
 * processes and this one all exclude each other.
 *
 * Unlike git, the lock holds its owner (owner.ts), not the new value: the value is written and fsynced in a file of
 * its own (`store/tmp/`, outside refs/ where git would take it for a broken ref) and renamed over the ref while the
 * lock is held, then the lock is removed. So a lock left by a crash names a process that can be found dead, and is
 * removed at once (leftovers.ts) instead of blocking its branch until it is old.
 */

export interface RefOptions {
  /** How long to wait for someone else's lock before giving up with LOCKED. */
  lockTimeoutMs: number;
  /** A lock older than this is from a crashed writer (locks are held for milliseconds) and is removed. */
  staleLockMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Refs {
  constructor(
    private readonly files: Files,
    private readonly gitdir: string,
    private readonly options: RefOptions,
  ) {}

  /**
   * The same refs, updated without fsync: for refs that may be lost in a crash at no cost but a redo (a
   * remote-tracking ref a replica moves every round is fetched again). Its objects must still be durable first.
   */
  volatile(): Refs {
    this.volatileTwin ??= new Refs(this.files.volatile(), this.gitdir, this.options);
    return this.volatileTwin;
  }

  private volatileTwin: Refs | undefined;

  private path(ref: string) {
    return `${this.gitdir}/${ref}`;
  }

  /** The oid a full ref name (`refs/heads/main`) points at, or null when it does not exist. */
  async read(ref: string): Promise<string | null> {
    const loose = await this.files.readText(this.path(ref));
    if (loose !== null) {
      const value = loose.trim();
      if (value.startsWith('ref: ')) return this.read(value.slice(5));
      if (isOid(value)) return value;
      throw new StoreError('CORRUPT', `${this.path(ref)} does not hold an object id`, { ref });
    }
    return (await this.packed()).get(ref) ?? null;
  }

  /**
   * A token that changes whenever `ref` may have moved (see Files.version): its loose file's, or when it has none,
   * `packed-refs`'. Taken before a read of the ref, it lets a reader keep what it read until the token changes.
   */
  async version(ref: string): Promise<string> {
    const loose = await this.files.version(this.path(ref));
    if (loose !== null) return loose;
    return `packed ${await this.files.version(this.path('packed-refs'))}`;
  }

  /** The refs in `packed-refs` (git gc moves refs there). */
  private async packed(): Promise<Map<string, string>> {
    const text = await this.files.readText(this.path('packed-refs'));
    const refs = new Map<string, string>();
    if (text === null) return refs;
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#') || line.startsWith('^')) continue;
      const [oid, name] = line.split(' ');
      if (oid && name) refs.set(name, oid);
    }
    return refs;
  }

  /**
   * All refs below `prefix` (e.g. `refs/heads/`) with their oids, loose ones overriding packed ones. A loose ref that
   * holds no object id is left out, and told to `onUnreadable` (`store fsck` reports it).
   */
  async list(prefix: string, onUnreadable?: (ref: string, error: unknown) => void): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const [name, oid] of await this.packed()) if (name.startsWith(prefix)) found.set(name, oid);
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await this.files.list(this.path(dir))) {
        const name = `${dir}/${entry}`;
        const stat = await this.files.stat(this.path(name));
        if (!stat) continue;
        if (stat.isDirectory()) await walk(name);
        else if (!entry.endsWith('.lock')) {
          const oid = await this.read(name).catch((e: unknown) => {
            onUnreadable?.(name, e);
            return null;
          });
          if (oid) found.set(name, oid);
        }
      }
    };
    await walk(prefix.replace(/\/$/, ''));
    return new Map([...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** The branch HEAD names (`ref: refs/heads/<b>`). */
  async headBranch(): Promise<string | null> {
    const head = await this.files.readText(this.path('HEAD'));
    const m = head && /^ref: refs\/heads\/(.+)$/.exec(head.trim());
    return m ? m[1]! : null;
  }

  /** A ref or file's name inside the repository, for messages: never the server's path. */
  private relative(file: string) {
    return file.slice(this.gitdir.length + 1);
  }

  /**
   * Takes `<file>.lock`, waiting for another holder to finish; LOCKED if it does not within the timeout. Returns the
   * lock path; the caller removes it once the file is in place. A lock whose owner died is removed at once, one of
   * unknown owner (git's) once it is far older than any write holds one: a writer killed mid-write does not block
   * the branch. The owner record is not fsynced: after a machine crash every owner is dead, and an empty lock is
   * judged by its age.
   */
  private async lock(file: string): Promise<string> {
    const lock = `${file}.lock`;
    // The lock is its owner record written in full elsewhere and then linked into place: a lock is never seen (or
    // left by a kill) empty, so a dead owner's is always recognised at once. The staged file is named by its owner.
    const volatile = this.files.volatile();
    const staged = `${this.gitdir}/${REF_TEMP_DIR}/${await tempName(this.files, 'lock_')}`;
    await volatile.createExclusive(staged, [utf8.encode(lockRecord(await selfOwner(this.files)))]);
    try {
      return await this.lockWith(file, lock, staged);
    } finally {
      await volatile.remove(staged);
    }
  }

  /**
   * The timeout is for a holder that does not let go: it runs from when the current holder's lock appeared, and
   * starts again each time the lock changes hands. A busy ref (other processes committing one after another) is
   * progress, not a stuck writer: measured under two CPU hogs with three processes writing one branch, a writer
   * could wait 10 s in all while no single holder kept the lock more than a second. Waiting in all is still bounded
   * (six timeouts), so a caller is never held forever.
   */
  private async lockWith(file: string, lock: string, staged: string): Promise<string> {
    const started = Date.now();
    let holder = '';
    let heldSince = started;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      if (await this.files.volatile().linkExclusive(staged, lock)) return lock;
      const state = await inspectLock(this.files, lock);
      if (!state) continue;
      if (isStale(state, this.options.staleLockMs)) {
        await removeStaleLock(this.files, lock, state);
        continue;
      }
      const now = Date.now();
      const seen = `${state.mtimeMs} ${state.content}`;
      if (seen !== holder) {
        holder = seen;
        heldSince = now;
      }
      const timeout = this.options.lockTimeoutMs;
      if (now - heldSince > timeout || now - started > 6 * timeout) throw this.locked(file, state);
      await sleep(wait * (0.5 + Math.random()));
    }
  }

  /** LOCKED, saying which ref, since when, by whom, and what to do — without the repository's path. */
  private locked(file: string, state: LockState): StoreError {
    const ref = this.relative(file);
    const since = new Date(state.mtimeMs).toISOString();
    const age = Math.max(0, Math.round((Date.now() - state.mtimeMs) / 1000));
    const by = state.owner
      ? `process ${state.owner.pid} on ${state.owner.host || 'another host'}`
      : 'another program (git, or an older store)';
    const what =
      state.liveness === 'alive'
        ? ', which is still running: retry once its write is done'
        : `; if it crashed, the lock goes once it is ${Math.round(this.options.staleLockMs / 1000)} s old; ` +
          `if no git or store process is writing, remove ${ref}.lock in the repository`;
    return new StoreError('LOCKED', `${ref} is locked since ${since} (${age} s ago) by ${by}${what}`, {
      ref,
      since,
      ...(state.owner ? { pid: state.owner.pid, host: state.owner.host } : {}),
    });
  }

  /** Writes (and fsyncs, when durable) a ref's next content in a file of this process's, to be renamed over it. */
  private async stage(content: Uint8Array, mode?: number): Promise<string> {
    const path = `${this.gitdir}/${REF_TEMP_DIR}/${await tempName(this.files, 'ref_')}`;
    await this.files.createExclusive(path, [content], mode);
    return path;
  }

  /**
   * Takes `file`'s lock and, side by side, stages `content` (when not null); on failure of either, neither is left.
   */
  private async lockAndStage(
    file: string,
    content: Uint8Array | null,
  ): Promise<{ lock: string; staged: string | null }> {
    const [lock, staged] = await Promise.allSettled([
      this.lock(file),
      content ? this.stage(content) : Promise.resolve(null),
    ]);
    if (lock.status === 'fulfilled' && staged.status === 'fulfilled') return { lock: lock.value, staged: staged.value };
    if (lock.status === 'fulfilled') await this.files.remove(lock.value);
    if (staged.status === 'fulfilled' && staged.value) await this.files.remove(staged.value);
    throw lock.status === 'rejected' ? lock.reason : (staged as PromiseRejectedResult).reason;
  }

  /**
   * Moves `ref` from `expected` to `next` atomically (null: absent / delete). Returns false, changing nothing, when
   * the ref no longer holds `expected`.
   */
  async compareAndSwap(ref: string, expected: string | null, next: string | null): Promise<boolean> {
    const swap = await this.prepareSwap(ref, expected, next);
    if (!swap) return false;
    await swap.commit();
    return true;
  }

  /**
   * The first half of a compare-and-swap: takes the lock, stages the new value (fsynced) and checks the ref still
   * holds `expected`; null, with the lock released, when it does not. `commit()` then moves the value into place,
   * `abort()` drops it. Split so a writer can hold the lock while its objects are still being made durable,
   * overlapping the fsyncs; it must not commit before they are.
   */
  async prepareSwap(
    ref: string,
    expected: string | null,
    next: string | null,
  ): Promise<{ commit(): Promise<void>; abort(): Promise<void> } | null> {
    const file = this.path(ref);
    const dir = file.slice(0, file.lastIndexOf('/'));
    await this.files.mkdirp(dir);
    const { lock, staged } = await this.lockAndStage(file, next ? utf8.encode(`${next}\n`) : null);
    const abort = async () => {
      if (staged) await this.files.remove(staged);
      await this.files.remove(lock);
    };
    try {
      if ((await this.read(ref)) !== expected) {
        await abort();
        return null;
      }
    } catch (e) {
      await abort();
      throw e;
    }
    return {
      commit: async () => {
        if (staged) {
          await this.install(staged, lock, file, dir);
        } else {
          try {
            await this.files.remove(file);
            await this.removePacked(ref);
          } finally {
            await this.files.remove(lock);
          }
        }
      },
      abort,
    };
  }

  /**
   * Takes `ref`'s lock and reads the value it holds, for a writer that lost a compare-and-swap race: holding the lock
   * while it rebuilds on that value, it cannot lose again (git's own writers work this way). `commit(next)` stages
   * the new value and moves it into place; `abort()` drops the lock.
   */
  async hold(
    ref: string,
  ): Promise<{ current: string | null; commit(next: string): Promise<void>; abort(): Promise<void> }> {
    const file = this.path(ref);
    const dir = file.slice(0, file.lastIndexOf('/'));
    await this.files.mkdirp(dir);
    const lock = await this.lock(file);
    let current: string | null;
    try {
      current = await this.read(ref);
    } catch (e) {
      await this.files.remove(lock);
      throw e;
    }
    return {
      current,
      commit: async (next) => {
        let staged: string;
        try {
          staged = await this.stage(utf8.encode(`${next}\n`));
        } catch (e) {
          await this.files.remove(lock);
          throw e;
        }
        await this.install(staged, lock, file, dir);
      },
      abort: () => this.files.remove(lock),
    };
  }

  /**
   * Renames a staged value over its file, releases the lock and makes the rename durable; on failure the staged file
   * and the lock are removed.
   */
  private async install(staged: string, lock: string, file: string, dir: string): Promise<void> {
    try {
      await this.files.p.rename(staged, file);
    } catch (e) {
      await this.files.remove(staged);
      await this.files.remove(lock);
      throw e;
    }
    await this.files.remove(lock);
    await this.files.syncDir(dir);
  }

  /**
   * Rewrites a small file of the repository that is not a ref (`auth/tokens.json`) under the same protocol as a ref:
   * its `.lock` (a dead owner's removed at once), the new content written and fsynced beside, renamed over. `change`
   * gets the current content (null: none) and returns the new one. Concurrent updaters, in this process or others,
   * are serialised by the lock. `mode` is the new file's (0600 for secrets).
   */
  async updateFile(name: string, change: (current: Uint8Array | null) => Uint8Array, mode?: number): Promise<void> {
    const file = this.path(name);
    const dir = file.slice(0, file.lastIndexOf('/'));
    await this.files.mkdirp(dir);
    const lock = await this.lock(file);
    let staged: string;
    try {
      staged = await this.stage(change(await this.files.read(file)), mode);
    } catch (e) {
      await this.files.remove(lock);
      throw e;
    }
    await this.install(staged, lock, file, dir);
  }

  /** Drops `ref` from packed-refs, under packed-refs.lock, as `git branch -d` does. */
  private async removePacked(ref: string): Promise<void> {
    const file = this.path('packed-refs');
    const text = await this.files.readText(file);
    if (text === null || !text.includes(` ${ref}\n`)) return;
    const lines = text.split('\n');
    const kept: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.endsWith(` ${ref}`)) {
        if (lines[i + 1]?.startsWith('^')) i++; // its peeled line goes with it
        continue;
      }
      kept.push(lines[i]!);
    }
    const { lock, staged } = await this.lockAndStage(file, utf8.encode(kept.join('\n')));
    await this.install(staged!, lock, file, this.gitdir);
  }
}
