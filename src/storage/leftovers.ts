import type { Files } from './fs.js';
import { type Liveness, liveness, type Owner, parseLockRecord, parseTempTag } from './owner.js';

/**
 * What crashed processes leave in a repository — ref locks (`<ref>.lock`) and temporary files (`objects/pack/tmp_*`,
 * the store's `store/tmp/*`) — and their removal. A lock or file whose owner (owner.ts) is a dead process of this
 * machine goes at once: at open, on a periodic sweep, and when a writer meets the lock. One of unknown owner (plain
 * git's, another machine's, an older store's) goes only by age: a lock once older than any write holds one, a
 * temporary file after a day (git may be receiving a large push into it). A live owner's are never touched.
 */

/** Where the store writes a ref's new value before moving it over the ref (refs.ts), relative to the repository. */
export const REF_TEMP_DIR = 'store/tmp';

/** A temporary file of unknown owner older than this is removed. */
const STALE_TEMP_MS = 24 * 3600_000;

/** How often an open store sweeps (a lock on a branch nobody writes to is found this way). */
const SWEEP_MS = 15_000;

/** A lock as found: its owner (null: unknown), whether that owner runs, and since when the lock exists. */
export interface LockState {
  owner: Owner | null;
  liveness: Liveness;
  mtimeMs: number;
  content: string;
}

/** What a lock file says about itself; null when it is gone. */
export async function inspectLock(files: Files, path: string): Promise<LockState | null> {
  const [stat, content] = await Promise.all([files.stat(path), files.readText(path)]);
  if (!stat || content === null) return null;
  const owner = parseLockRecord(content);
  return { owner, liveness: owner ? await liveness(files, owner) : 'unknown', mtimeMs: stat.mtimeMs, content };
}

/**
 * How long an empty lock may be someone's: git and the store write a lock's content in the call that creates it, so
 * an empty one is what a power cut leaves of a lock whose data was never flushed (the journal does not flush locks).
 */
const EMPTY_LOCK_MS = 2_000;

/**
 * Whether a lock may be removed: its owner died, or it is of unknown owner and older than `staleMs` (an empty one:
 * than EMPTY_LOCK_MS, or `staleMs` if smaller).
 */
export const isStale = (lock: LockState, staleMs: number): boolean =>
  lock.liveness === 'dead' ||
  (lock.liveness === 'unknown' &&
    Date.now() - lock.mtimeMs > (lock.content === '' ? Math.min(staleMs, EMPTY_LOCK_MS) : staleMs));

/**
 * Removes a lock judged stale, unless it changed since it was judged (someone else removed it and a live process took
 * it again). Known gap, as with any lock removal by another process: a lock taken again in the microseconds between
 * this last look and the unlink is removed too — only ever after a crash, and only by two removers racing.
 */
export async function removeStaleLock(files: Files, path: string, judged: LockState): Promise<boolean> {
  const now = await inspectLock(files, path);
  if (!now || now.content !== judged.content || now.mtimeMs !== judged.mtimeMs) return false;
  await files.remove(path);
  return true;
}

/** The sweep over a repository's locks and temporary files; `open()` sweeps once and then every `sweepMs`. */
export class Leftovers {
  private timer: ReturnType<typeof setInterval> | null = null;
  private sweeping: Promise<string[]> | null = null;

  constructor(
    private readonly files: Files,
    private readonly gitdir: string,
    private readonly staleLockMs: number,
    private readonly sweepMs = SWEEP_MS,
  ) {}

  /** Sweeps now, then periodically until `close()`. Never fails: a sweep that cannot finish tries again later. */
  async open(): Promise<void> {
    await this.sweep().catch(() => []);
    this.timer = setInterval(() => void this.sweep().catch(() => []), this.sweepMs);
    // The sweep must not keep a process alive that has nothing else to do.
    this.timer.unref?.();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One sweep (one at a time); returns what it removed, relative to the repository. */
  sweep(): Promise<string[]> {
    this.sweeping ??= this.sweepOnce().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<string[]> {
    const removed: string[] = [];
    const locks = [...(await this.locksUnder('refs')), 'packed-refs.lock'];
    for (const lock of locks) {
      const path = `${this.gitdir}/${lock}`;
      const state = await inspectLock(this.files, path);
      if (state && isStale(state, this.staleLockMs) && (await removeStaleLock(this.files, path, state))) {
        removed.push(lock);
      }
    }
    for (const dir of ['objects/pack', REF_TEMP_DIR]) {
      for (const name of await this.files.list(`${this.gitdir}/${dir}`)) {
        if (dir === 'objects/pack' && !name.startsWith('tmp_')) continue;
        const temp = `${dir}/${name}`;
        if (!(await this.isStaleTemp(temp))) continue;
        // Read before it goes: the idx names the pack it belongs to.
        const half = name.endsWith('.idx') ? await this.halfInstalledPack(temp) : null;
        await this.files.remove(`${this.gitdir}/${temp}`);
        removed.push(temp);
        if (half) {
          await this.files.remove(`${this.gitdir}/${half}`);
          removed.push(half);
        }
      }
    }
    return removed;
  }

  /**
   * The pack a temporary idx belongs to, when that pack is in place without its idx: a writer installs the pack, then
   * the idx (pack.ts writePack), and one killed between the two renames leaves a pack no reader can use (git counts
   * it as garbage). The idx names its pack by the checksum in its trailer. Nothing refers to such a pack's objects
   * (refs move only after both renames), so it goes with its idx.
   */
  private async halfInstalledPack(idx: string): Promise<string | null> {
    const bytes = await this.files.read(`${this.gitdir}/${idx}`);
    if (!bytes || bytes.length < 8 + 40) return null;
    const sum = Buffer.from(bytes.subarray(bytes.length - 40, bytes.length - 20)).toString('hex');
    const pack = `objects/pack/pack-${sum}`;
    const installed = await this.files.stat(`${this.gitdir}/${pack}.pack`);
    return installed && !(await this.files.stat(`${this.gitdir}/${pack}.idx`)) ? `${pack}.pack` : null;
  }

  /** Every `*.lock` below `dir` (relative to the repository). */
  private async locksUnder(dir: string): Promise<string[]> {
    const found: string[] = [];
    for (const entry of await this.files.list(`${this.gitdir}/${dir}`)) {
      const name = `${dir}/${entry}`;
      if (entry.endsWith('.lock')) found.push(name);
      else if ((await this.files.stat(`${this.gitdir}/${name}`))?.isDirectory()) {
        found.push(...(await this.locksUnder(name)));
      }
    }
    return found;
  }

  /** Whether a temporary file may go: its owner is dead, or it has no known owner and is older than a day. */
  private async isStaleTemp(name: string): Promise<boolean> {
    const owner = parseTempTag(name.slice(name.lastIndexOf('/') + 1));
    const state = owner ? await liveness(this.files, owner) : 'unknown';
    if (state === 'alive') return false;
    if (state === 'unknown') {
      const stat = await this.files.stat(`${this.gitdir}/${name}`);
      if (!stat || Date.now() - stat.mtimeMs <= STALE_TEMP_MS) return false;
    }
    return true;
  }
}
