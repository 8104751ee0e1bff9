import { memfs } from 'memfs';

/**
 * A file system that loses power (issue 16), in the spirit of LazyFS and of the ALICE study (OSDI 2014): it runs on
 * a memfs volume, records every call that changes something, and keeps, beside the live files, what a disk would
 * still hold after a power cut — only what was made durable:
 * - a file's data as of its last fsync or fdatasync (a file never synced is empty);
 * - a directory's entries as of its last fsync: a create, rename, link or unlink not followed by an fsync of the
 *   directory is lost, so a renamed file may be back under its old name, a deleted one back, a new one gone.
 * That is the weakest a POSIX file system promises, and what ext4 (delayed allocation) and XFS may really leave.
 *
 * `cutAt(n)` makes the n-th change the first that fails (EIO), and every call after it: the process using it can do
 * nothing more, as if it had died. `image()` is then the disk as it comes back: a new memfs with only what was
 * durable. What existed when the FaultFs was made counts as durable.
 */

type Done<T = void> = (error: Error | null, value?: T) => void;
type Memfs = ReturnType<typeof memfs>['fs'];

/** A file or directory as the model knows it: memfs reuses inode numbers, so each creation gets its own id. */
interface Entry {
  id: number;
  dir: boolean;
}

interface OpenFile {
  id: number;
  path: string;
  dir: boolean;
}

const eio = (what: string) => Object.assign(new Error(`EIO: the power is off (${what})`), { code: 'EIO' });

const WRITE_FLAGS = /[wa+]/;

export class FaultFs {
  /** The calls that changed something, in order (`write /x 12 bytes`, `rename /a /b`, `fsync /x`). */
  readonly log: string[] = [];
  private readonly live: Memfs;
  private readonly data = new Map<number, Uint8Array>();
  private readonly dirs = new Map<number, Map<string, Entry>>();
  private readonly fds = new Map<number, OpenFile>();
  /** The id of each live inode, given when it was created. */
  private readonly ids = new Map<number, number>();
  private lastId = 0;
  private changes = 0;
  private cut = Number.POSITIVE_INFINITY;
  readonly promises: {
    readFile(path: string): Promise<Uint8Array>;
    rename(from: string, to: string): Promise<void>;
    link(existing: string, path: string): Promise<void>;
    unlink(path: string): Promise<void>;
    mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<unknown>;
    readdir(path: string): Promise<string[]>;
    stat(path: string): Promise<unknown>;
    rmdir(path: string): Promise<void>;
  };

  /** Over a copy of `from` (a memfs fs), or an empty volume. */
  constructor(from?: Memfs) {
    this.live = from ?? memfs().fs;
    this.snapshot('/');
    const p =
      <A extends unknown[], R>(fn: (...args: A) => R) =>
      (...args: A) =>
        new Promise<R>((resolve, reject) => {
          try {
            const value = fn(...args);
            setImmediate(() => resolve(value));
          } catch (e) {
            setImmediate(() => reject(e));
          }
        });
    this.promises = {
      readFile: p((path: string) => this.readFile(path)),
      rename: p((from: string, to: string) => this.rename(from, to)),
      link: p((existing: string, path: string) => this.link(existing, path)),
      unlink: p((path: string) => this.unlink(path)),
      mkdir: p((path: string, options?: { recursive?: boolean; mode?: number }) => this.mkdir(path, options)),
      readdir: p((path: string) => this.readdir(path)),
      stat: p((path: string) => this.statSync(path)),
      rmdir: p((path: string) => this.rmdir(path)),
    };
  }

  /** How many changes were made so far (the range `cutAt` takes). */
  get count(): number {
    return this.changes;
  }

  /** The power goes off at the n-th change from the start (1-based): it and everything after fail. */
  cutAt(n: number): void {
    this.cut = n;
  }

  /** Whether the power is off. */
  get off(): boolean {
    return this.changes >= this.cut;
  }

  /** The disk after the power cut: what was durable, in a new memfs volume. */
  image(): Memfs {
    const { fs } = memfs();
    const build = (dir: string, id: number) => {
      for (const [name, entry] of this.dirs.get(id) ?? []) {
        const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
        if (entry.dir) {
          fs.mkdirSync(path);
          build(path, entry.id);
        } else fs.writeFileSync(path, this.data.get(entry.id) ?? new Uint8Array());
      }
    };
    build('/', this.idOf(this.live.statSync('/').ino as number));
    return fs;
  }

  // ---- the calls, as node's fs offers them (callbacks) ----------------------------------------------------------

  stat(path: string, done: Done<unknown>): void {
    this.async(done, () => this.statSync(path));
  }

  open(path: string, flags: string, mode: number, done: Done<number>): void {
    this.async(done, () => {
      const writing = WRITE_FLAGS.test(flags);
      if (writing) this.change(`open ${path} ${flags}`);
      const existed = this.live.existsSync(path);
      const fd = this.live.openSync(path, flags, mode) as number;
      const st = this.live.fstatSync(fd);
      if (!existed) this.created(st.ino as number);
      this.fds.set(fd, { id: this.idOf(st.ino as number), path, dir: st.isDirectory() });
      return fd;
    });
  }

  write(fd: number, data: Uint8Array, offset: number, length: number, position: number | null, done: Done<number>) {
    this.async(done, () => {
      this.change(`write ${this.fds.get(fd)?.path} ${length} bytes`);
      return this.live.writeSync(fd, data, offset, length, position ?? undefined) as number;
    });
  }

  read(fd: number, data: Uint8Array, offset: number, length: number, position: number | null, done: Done<number>) {
    this.async(done, () => this.live.readSync(fd, data, offset, length, position) as number);
  }

  fsync(fd: number, done: Done): void {
    this.async(done, () => this.sync(fd, 'fsync'));
  }

  fdatasync(fd: number, done: Done): void {
    this.async(done, () => this.sync(fd, 'fdatasync'));
  }

  close(fd: number, done: Done): void {
    this.async(done, () => {
      this.fds.delete(fd);
      this.live.closeSync(fd);
    });
  }

  // ---- what each call does to the live files and to the durable model --------------------------------------------

  private async<T>(done: Done<T>, fn: () => T): void {
    let value: T;
    try {
      value = fn();
    } catch (e) {
      setImmediate(() => done(e as Error));
      return;
    }
    setImmediate(() => done(null, value));
  }

  /** Counts a change; throws EIO from the cut on. */
  private change(what: string): void {
    this.changes++;
    if (this.off) throw eio(what);
    this.log.push(what);
  }

  /** Reads are refused once the power is off too: the process is gone. */
  private alive(what: string): void {
    if (this.off) throw eio(what);
  }

  private statSync(path: string) {
    this.alive(`stat ${path}`);
    return this.live.statSync(path);
  }

  private readFile(path: string): Uint8Array {
    this.alive(`read ${path}`);
    return this.live.readFileSync(path) as Uint8Array;
  }

  private readdir(path: string): string[] {
    this.alive(`readdir ${path}`);
    return this.live.readdirSync(path) as string[];
  }

  private rename(from: string, to: string): void {
    this.change(`rename ${from} ${to}`);
    this.live.renameSync(from, to);
  }

  private link(existing: string, path: string): void {
    this.change(`link ${existing} ${path}`);
    this.live.linkSync(existing, path);
  }

  private unlink(path: string): void {
    this.change(`unlink ${path}`);
    this.live.unlinkSync(path);
  }

  private mkdir(path: string, options?: { recursive?: boolean; mode?: number }): unknown {
    this.change(`mkdir ${path}`);
    const missing: string[] = [];
    for (let p = path; p !== '' && p !== '/' && !this.live.existsSync(p); p = p.slice(0, p.lastIndexOf('/'))) {
      missing.push(p);
    }
    const made = this.live.mkdirSync(path, options);
    for (const p of missing) this.created(this.live.statSync(p).ino as number);
    return made;
  }

  /** A new inode: a new id, whatever number memfs gave it before. */
  private created(ino: number): void {
    this.ids.set(ino, ++this.lastId);
  }

  private idOf(ino: number): number {
    let id = this.ids.get(ino);
    if (id === undefined) {
      id = ++this.lastId;
      this.ids.set(ino, id);
    }
    return id;
  }

  private rmdir(path: string): void {
    this.change(`rmdir ${path}`);
    this.live.rmdirSync(path);
  }

  private sync(fd: number, how: string): void {
    const file = this.fds.get(fd);
    this.change(`${how} ${file?.path}`);
    if (!file) throw Object.assign(new Error('EBADF'), { code: 'EBADF' });
    if (file.dir) this.dirs.set(file.id, this.entries(file.path));
    else this.data.set(file.id, this.contents(fd));
  }

  private contents(fd: number): Uint8Array {
    const size = this.live.fstatSync(fd).size as number;
    const buffer = new Uint8Array(size);
    let at = 0;
    while (at < size) at += this.live.readSync(fd, buffer, at, size - at, at) as number;
    return buffer;
  }

  private entries(dir: string): Map<string, Entry> {
    const entries = new Map<string, Entry>();
    for (const name of this.live.readdirSync(dir) as string[]) {
      const st = this.live.statSync(dir === '/' ? `/${name}` : `${dir}/${name}`);
      entries.set(name, { id: this.idOf(st.ino as number), dir: st.isDirectory() });
    }
    return entries;
  }

  /** Everything under `dir` as durable: the state the FaultFs starts from. */
  private snapshot(dir: string): void {
    const id = this.idOf(this.live.statSync(dir).ino as number);
    const entries = this.entries(dir);
    this.dirs.set(id, entries);
    for (const [name, entry] of entries) {
      const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
      if (entry.dir) this.snapshot(path);
      else this.data.set(entry.id, this.live.readFileSync(path) as Uint8Array);
    }
  }
}
