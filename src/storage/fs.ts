/**
 * The file system the store is given: node's `fs` module or a memfs volume's `fs`. `src/` never imports `node:fs`
 * itself (docs/ARCHITECTURE.md, "The layers"), so the same code runs on disk and in memory; this file narrows both to
 * what the store uses and adds the few idioms (ENOENT as null, durable writes, lock files) every layer needs.
 */

interface StatsLike {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  size: number;
  isDirectory(): boolean;
}

/** The promise API both node's fs and memfs provide; only what the store calls. */
export interface FsPromises {
  readFile(path: string): Promise<Uint8Array | string>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, options: { recursive: boolean; mode?: number }): Promise<unknown>;
  readdir(path: string): Promise<unknown[]>;
  stat(path: string): Promise<StatsLike>;
  rmdir(path: string): Promise<void>;
}

/** What callers pass: anything with a node-compatible `promises` member (node:fs, memfs). */
export interface FsLike {
  promises: unknown;
}

type Done<T = void> = (error: Error | null, value: T) => void;

/**
 * The callback calls node's fs and memfs both provide, used where a write is on the commit path: profiled, each
 * `fs.promises` FileHandle costs ~100 µs of main-thread time to create and close, against a few µs for a bare fd.
 */
interface FsCallbacks {
  stat(path: string, done: Done<StatsLike>): void;
  open(path: string, flags: string, mode: number, done: Done<number>): void;
  write(
    fd: number,
    data: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
    done: Done<number>,
  ): void;
  fsync(fd: number, done: Done): void;
  fdatasync(fd: number, done: Done): void;
  read(fd: number, data: Uint8Array, offset: number, length: number, position: number, done: Done<number>): void;
  close(fd: number, done: Done): void;
}

async function call<T>(fn: (done: Done<T>) => void): Promise<T> {
  try {
    return await new Promise<T>((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v))));
  } catch (e) {
    // A callback's error carries no JavaScript frames at all; taken here, after the await, its stack names the
    // awaiting callers (the write path that failed), which is what a server log needs. Costs nothing on success.
    if (e instanceof Error) Error.captureStackTrace(e);
    throw e;
  }
}

const isMissing = (e: unknown) => (e as { code?: string })?.code === 'ENOENT';
const isExisting = (e: unknown) => (e as { code?: string })?.code === 'EEXIST';

/** The store's view of a file system: small, promise-based, ENOENT-tolerant helpers. */
export class Files {
  readonly p: FsPromises;
  constructor(
    readonly raw: FsLike,
    /** Whether writes are fsynced before they count; off only for throw-away stores. */
    readonly durable = true,
  ) {
    this.p = raw.promises as FsPromises;
  }

  /** The same file system without fsyncs: for data that may be lost in a crash (open transactions). */
  volatile(): Files {
    if (!this.durable) return this;
    this.volatileTwin ??= new Files(this.raw, false);
    return this.volatileTwin;
  }

  private volatileTwin: Files | undefined;

  async read(path: string): Promise<Uint8Array | null> {
    try {
      const data = await this.p.readFile(path);
      return typeof data === 'string' ? new TextEncoder().encode(data) : data;
    } catch (e) {
      if (isMissing(e) || (e as { code?: string })?.code === 'ENOTDIR') return null;
      throw e;
    }
  }

  async readText(path: string): Promise<string | null> {
    const data = await this.read(path);
    return data === null ? null : new TextDecoder().decode(data);
  }

  async stat(path: string): Promise<StatsLike | null> {
    try {
      return await this.p.stat(path);
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  /**
   * A token that changes whenever the file is replaced or written: its inode, times and size (null when missing).
   * Git and the store replace a ref by renaming a new file over it, so a new inode, and a ref file read after the
   * token was taken is at least as new as the token says. One `stat`, through the callback API: cheaper on the main
   * thread than the promise one, and a linearizable read pays it every time.
   */
  async version(path: string): Promise<string | null> {
    const fs = this.raw as unknown as FsCallbacks;
    try {
      const st = await call<StatsLike>((done) => fs.stat(path, done));
      return `${st.ino}:${st.mtimeMs}:${st.ctimeMs}:${st.size}`;
    } catch (e) {
      if (isMissing(e) || (e as { code?: string })?.code === 'ENOTDIR') return null;
      throw e;
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      return (await this.p.readdir(path)).map(String);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  /**
   * Creates a directory and its parents. Directories the store made or saw once are remembered: the write path asks
   * for the same few on every commit, and a syscall each is measurable. A directory removed since (git removes
   * emptied ref directories) is made again by `createExclusive`, where it would be missed.
   */
  async mkdirp(path: string): Promise<void> {
    if (this.made.has(path)) return;
    await this.p.mkdir(path, { recursive: true });
    this.made.add(path);
  }

  private readonly made = new Set<string>();

  async remove(path: string): Promise<void> {
    try {
      await this.p.unlink(path);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  }

  /**
   * Writes a file's whole content through a fresh handle, fsynced when durable. `exclusive` fails if it exists; `mode`
   * is that of a new file (before the umask).
   */
  async writeNew(path: string, chunks: Uint8Array[], exclusive: boolean, mode = 0o666): Promise<void> {
    const fs = this.raw as unknown as FsCallbacks;
    const fd = await call<number>((done) => fs.open(path, exclusive ? 'wx' : 'w', mode, done));
    try {
      // One write call: a pack is thousands of small entries, and a syscall each would dominate.
      const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      for (let at = 0; at < data.length; ) {
        at += await call<number>((done) => fs.write(fd, data, at, data.length - at, null, done));
      }
      if (this.durable) await call((done) => fs.fsync(fd, done));
    } finally {
      await call((done) => fs.close(fd, done));
    }
  }

  /**
   * Creates `path` with O_EXCL; false when it already exists. This is git's lock-file protocol: whoever creates
   * `<file>.lock` owns `<file>` until the lock is renamed over it or removed.
   */
  async createExclusive(path: string, chunks: Uint8Array[], mode?: number): Promise<boolean> {
    try {
      await this.writeNew(path, chunks, true, mode);
      return true;
    } catch (e) {
      if (isExisting(e)) return false;
      if (!isMissing(e)) throw e;
      // Its directory is gone (git removes emptied ref directories): make it again, once.
      const dir = path.slice(0, path.lastIndexOf('/'));
      this.made.delete(dir);
      await this.mkdirp(dir);
      return this.createExclusive(path, chunks, mode);
    }
  }

  /**
   * Creates `path` as a second name of the file `existing`; false when `path` already exists. A file written in full
   * first and then linked into place is an exclusive create that is never seen half-written (a lock with its owner).
   */
  async linkExclusive(existing: string, path: string, retry = true): Promise<boolean> {
    try {
      await this.p.link(existing, path);
      return true;
    } catch (e) {
      if (isExisting(e)) return false;
      if (!isMissing(e) || !retry) throw e;
      // Its directory is gone (git removes emptied ref directories): make it again, once.
      const dir = path.slice(0, path.lastIndexOf('/'));
      this.made.delete(dir);
      await this.mkdirp(dir);
      return this.linkExclusive(existing, path, false);
    }
  }

  /**
   * Makes a file's data durable (fsync), for files written without it (the journal's checkpoint, journal.ts). A file
   * that is gone needs nothing: what replaced it (a consolidated pack, a newer ref) was made durable by its writer.
   */
  async syncFile(path: string): Promise<void> {
    const fs = this.raw as unknown as FsCallbacks;
    await this.withOpen(path, (fd) => call((done) => fs.fsync(fd, done)));
  }

  /** `length` bytes of a file from `position` (fewer at its end); null when the file is missing. */
  readRange(path: string, position: number, length: number): Promise<Uint8Array | null> {
    const fs = this.raw as unknown as FsCallbacks;
    return this.withOpen(path, async (fd) => {
      const data = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = await call<number>((done) => fs.read(fd, data, got, length - got, position + got, done));
        if (n === 0) break;
        got += n;
      }
      return data.subarray(0, got);
    });
  }

  /** Runs `use` on the file opened for reading, then closes it; null, without running it, when the file is missing. */
  private async withOpen<T>(path: string, use: (fd: number) => Promise<T>): Promise<T | null> {
    const fs = this.raw as unknown as FsCallbacks;
    let fd: number;
    try {
      fd = await call<number>((done) => fs.open(path, 'r', 0o666, done));
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    try {
      return await use(fd);
    } finally {
      await call((done) => fs.close(fd, done));
    }
  }

  /** An open file for positional writes and data syncs (the journal's segments): `r+`, the file must exist. */
  async openForUpdate(path: string): Promise<{
    writeAt(data: Uint8Array, position: number): Promise<void>;
    datasync(): Promise<void>;
    sync(): Promise<void>;
    close(): Promise<void>;
  }> {
    const fs = this.raw as unknown as FsCallbacks;
    const fd = await call<number>((done) => fs.open(path, 'r+', 0o666, done));
    return {
      writeAt: async (data, position) => {
        for (let at = 0; at < data.length; ) {
          at += await call<number>((done) => fs.write(fd, data, at, data.length - at, position + at, done));
        }
      },
      datasync: () => call((done) => fs.fdatasync(fd, done)),
      sync: () => call((done) => fs.fsync(fd, done)),
      close: () => call((done) => fs.close(fd, done)),
    };
  }

  /** Makes a rename inside `dir` durable. memfs has no directory handles, and needs none. */
  async syncDir(dir: string): Promise<void> {
    if (!this.durable) return;
    const fs = this.raw as unknown as FsCallbacks;
    let fd: number;
    try {
      fd = await call<number>((done) => fs.open(dir, 'r', 0o666, done));
    } catch {
      return;
    }
    // An error is ignored: some file systems refuse fsync on directories; the rename is as durable as they allow.
    await new Promise<void>((resolve) => fs.fsync(fd, () => resolve()));
    await call((done) => fs.close(fd, done));
  }
}

export const joinPath = (...parts: string[]): string => parts.filter((p) => p !== '').join('/');
