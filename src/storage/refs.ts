import { StoreError } from '../errors.js';
import { isOid, utf8 } from '../objects/object.js';
import type { Files } from './fs.js';

/**
 * Branch heads, read and moved the way git does: loose ref files beside `packed-refs`, and every update as a
 * compare-and-swap under `<ref>.lock` (O_EXCL create, write, fsync, rename). Because the lock is git's own, plain
 * git, other store processes and this one all exclude each other.
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

  /** All refs below `prefix` (e.g. `refs/heads/`) with their oids, loose ones overriding packed ones. */
  async list(prefix: string): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const [name, oid] of await this.packed()) if (name.startsWith(prefix)) found.set(name, oid);
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await this.files.list(this.path(dir))) {
        const name = `${dir}/${entry}`;
        const stat = await this.files.stat(this.path(name));
        if (!stat) continue;
        if (stat.isDirectory()) await walk(name);
        else if (!entry.endsWith('.lock')) {
          const oid = await this.read(name).catch(() => null);
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

  /**
   * Takes `<file>.lock`, waiting for another holder to finish; LOCKED if it does not within the timeout. Returns the
   * lock path; the caller renames it into place or removes it.
   */
  private async lock(file: string, content: Uint8Array): Promise<string> {
    const lock = `${file}.lock`;
    const started = Date.now();
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      if (await this.files.createExclusive(lock, [content])) return lock;
      const stat = await this.files.stat(lock);
      // Git never removes another's lock; we do once it is far older than any write holds one, so a writer killed
      // mid-write does not block the branch forever. Known gap: two processes judging the same stale lock at once
      // could each remove it and one remove the other's fresh lock — only after a crash, and only within one retry.
      if (stat && Date.now() - stat.mtimeMs > this.options.staleLockMs) {
        await this.files.remove(lock);
        continue;
      }
      if (Date.now() - started > this.options.lockTimeoutMs) {
        throw new StoreError(
          'LOCKED',
          `${lock} exists: another process is writing, or one crashed — remove the file if no store or git process is running`,
          { lock },
        );
      }
      await sleep(wait * (0.5 + Math.random()));
    }
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
   * The first half of a compare-and-swap: takes the lock (its content, the new value, fsynced) and checks the ref
   * still holds `expected`; null, with the lock released, when it does not. `commit()` then renames the lock into
   * place, `abort()` drops it. Split so a writer can hold the lock while its objects are still being made durable,
   * overlapping the two fsyncs; it must not commit before they are.
   */
  async prepareSwap(
    ref: string,
    expected: string | null,
    next: string | null,
  ): Promise<{ commit(): Promise<void>; abort(): Promise<void> } | null> {
    const file = this.path(ref);
    const dir = file.slice(0, file.lastIndexOf('/'));
    await this.files.mkdirp(dir);
    const lock = await this.lock(file, utf8.encode(next ? `${next}\n` : ''));
    try {
      if ((await this.read(ref)) !== expected) {
        await this.files.remove(lock);
        return null;
      }
    } catch (e) {
      await this.files.remove(lock);
      throw e;
    }
    return {
      commit: async () => {
        if (next) {
          await this.install(lock, file, dir);
        } else {
          try {
            await this.files.remove(file);
            await this.removePacked(ref);
          } finally {
            await this.files.remove(lock);
          }
        }
      },
      abort: () => this.files.remove(lock),
    };
  }

  /**
   * Takes `ref`'s lock and reads the value it holds, for a writer that lost a compare-and-swap race: holding the lock
   * while it rebuilds on that value, it cannot lose again (git's own writers work this way). `commit(next)` writes
   * the new value into the lock, fsyncs and renames it into place; `abort()` drops the lock.
   */
  async hold(
    ref: string,
  ): Promise<{ current: string | null; commit(next: string): Promise<void>; abort(): Promise<void> }> {
    const file = this.path(ref);
    const dir = file.slice(0, file.lastIndexOf('/'));
    await this.files.mkdirp(dir);
    const lock = await this.lock(file, new Uint8Array(0));
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
        try {
          await this.files.writeNew(lock, [utf8.encode(`${next}\n`)], false);
        } catch (e) {
          await this.files.remove(lock);
          throw e;
        }
        await this.install(lock, file, dir);
      },
      abort: () => this.files.remove(lock),
    };
  }

  /** Renames a lock (holding the new value) over its file and makes that durable; the lock is dropped on failure. */
  private async install(lock: string, file: string, dir: string): Promise<void> {
    try {
      await this.files.p.rename(lock, file);
    } catch (e) {
      await this.files.remove(lock);
      throw e;
    }
    await this.files.syncDir(dir);
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
    const lock = await this.lock(file, utf8.encode(kept.join('\n')));
    await this.files.p.rename(lock, file);
  }
}
