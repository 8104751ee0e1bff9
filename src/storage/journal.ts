import type { Files } from './fs.js';
import { encodeHeader, encodeRecord, HEADER_BYTES, type JournalRecord, seedOf } from './journal-format.js';
import { selfOwner, tempTag } from './owner.js';

/**
 * The write-ahead journal of one store process (docs/ARCHITECTURE.md, "The journal"): a write batch is acknowledged
 * once its record — the batch's packs and ref moves — is appended to a preallocated segment and fdatasynced: ONE
 * flush per batch, where writing the pack, its directory and the ref durably took three rounds of them. The pack,
 * idx and ref are still written (without fsync) before the answer, so plain git and other processes see the commit
 * at once; the record is on disk before the ref moves, so nothing visible is ever less durable than the journal.
 *
 * Appends that arrive while a flush runs go together in the next one (group commit). Two segments of `segmentBytes`
 * take turns: a checkpoint — by size, by time, at close — switches appends to the other segment, makes durable what
 * the old one's records name (packs, idx files, refs, their directories), then marks it retired, so recovery skips
 * it. Segments are preallocated (written with zeros and synced once), so a record's fdatasync flushes data only,
 * not the file's size, as etcd's WAL does. Segment files are named after the process (owner.ts): recovery
 * (src/store/recovery.ts) replays those of processes that are gone.
 */

export const JOURNAL_DIR = 'store/journal';

/** What a segment starts at (see JournalOptions.segmentBytes). */
const INITIAL_SEGMENT_BYTES = 64 << 10;

/** The segments open in this process, by file system: recovery leaves them alone (see isJournalLive). */
const open = new WeakMap<object, Set<string>>();

/** Whether a segment is one a journal of this process has open on this file system. */
export const isJournalLive = (files: Files, path: string): boolean => open.get(files.raw)?.has(path) ?? false;

export interface JournalOptions {
  /**
   * Bytes a segment grows to (default 4 MiB). Segments start at 64 KiB, and one that filled grows fourfold at its
   * checkpoint, in the background: a store that writes little never writes megabytes of zeros (measured: the
   * property tests, which open thousands of stores, took 6 × longer with 8 MiB from the start). A batch larger than
   * a segment gets a segment of its own size.
   */
  segmentBytes?: number;
  /** How long records may wait for their checkpoint (default 1,000 ms). */
  checkpointMs?: number;
}

interface Segment {
  path: string;
  file: Awaited<ReturnType<Files['openForUpdate']>>;
  size: number;
}

interface Waiting {
  record: JournalRecord;
  resolve: (named: Named) => void;
  reject: (e: unknown) => void;
}

/** What the records of a segment name: made durable at its checkpoint. */
interface Named {
  generation: number;
  packs: Set<string>;
  refs: Set<string>;
  /** Records whose ref moves have not been made yet: the checkpoint waits for them (see append). */
  moving: number;
  moved: (() => void) | null;
  /** The segment was switched because it was full: it grows at its checkpoint. */
  filled: boolean;
}

const emptyNamed = (generation: number): Named => ({
  generation,
  packs: new Set(),
  refs: new Set(),
  moving: 0,
  moved: null,
  filled: false,
});

export class Journal {
  private readonly segmentBytes: number;
  private readonly checkpointMs: number;
  private segments: Segment[] | null = null;
  private opening: Promise<Segment[]> | null = null;
  private active = 0;
  private generation = 1;
  private offset = HEADER_BYTES;
  private seed = seedOf(1);
  private named: Named = emptyNamed(1);
  private readonly queue: Waiting[] = [];
  /** Flushes and segment switches, one at a time. */
  private lane: Promise<void> = Promise.resolve();
  private flushDue = false;
  private checkpointing: Promise<void> | null = null;
  /** A segment whose checkpoint has not succeeded yet: it must not be written over until it has. */
  private unretired: { index: number; named: Named } | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** A close in progress: appends wait for it, then start new segments (a store written after close, as in tests). */
  private closing: Promise<void> | null = null;

  constructor(
    private readonly files: Files,
    private readonly gitdir: string,
    options: JournalOptions = {},
  ) {
    this.segmentBytes = options.segmentBytes ?? 4 << 20;
    this.checkpointMs = options.checkpointMs ?? 1000;
  }

  /**
   * Appends a batch's record and, once it is durable, runs `move` (the ref moves it journals). The segment's
   * checkpoint waits for `move`: it fsyncs the ref files and then their directories, and a rename made between the
   * two would be a directory entry made durable for data that is not (and the record that restores it retired).
   */
  async append(record: JournalRecord, move: () => Promise<void>): Promise<void> {
    if (this.closing) await this.closing;
    const named = await new Promise<Named>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.flushDue) {
        this.flushDue = true;
        void this.serially(() => this.flush());
      }
    });
    try {
      await move();
    } finally {
      if (--named.moving === 0) named.moved?.();
    }
  }

  /** Makes everything journaled durable where it belongs and retires the segments (a clean close, a gc). */
  async checkpoint(): Promise<void> {
    await this.serially(() => this.switchSegment());
    await this.settle();
  }

  /** Waits for the checkpoint in flight; one that failed is tried again, and its failure thrown. */
  private async settle(): Promise<void> {
    await this.checkpointing;
    const left = this.unretired;
    if (!left) return;
    await this.retire(left.index, left.named);
    this.unretired = null;
  }

  /** Checkpoints, then removes the segments: nothing is left to replay. */
  close(): Promise<void> {
    this.closing ??= this.shut().finally(() => {
      this.closing = null;
    });
    return this.closing;
  }

  private async shut(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.lane;
    if (!this.segments && !this.opening) return;
    await this.checkpoint();
    const segments = await this.open();
    for (const s of segments) await s.file.close();
    for (const s of segments) await this.files.remove(s.path);
    for (const s of segments) open.get(this.files.raw)?.delete(s.path);
    await this.files.syncDir(`${this.gitdir}/${JOURNAL_DIR}`);
    // A later append starts afresh, in new segments.
    this.segments = null;
    this.opening = null;
    this.active = 0;
    this.offset = HEADER_BYTES;
    this.generation++;
    this.seed = seedOf(this.generation);
    this.named = emptyNamed(this.generation);
  }

  private serially(fn: () => Promise<void>): Promise<void> {
    const run = this.lane.then(fn);
    this.lane = run.catch(() => {});
    return run;
  }

  private async flush(): Promise<void> {
    this.flushDue = false;
    const items = this.queue.splice(0);
    if (items.length === 0) return;
    try {
      const segments = await this.open();
      let encoded = this.encode(items);
      const total = encoded.reduce((n, e) => n + e.bytes.length, 0);
      if (this.offset + total > segments[this.active]!.size && this.offset > HEADER_BYTES) {
        this.named.filled = true;
        await this.switchSegment();
        encoded = this.encode(items);
      }
      const segment = segments[this.active]!;
      if (this.offset + total > segment.size) segment.size = this.offset + total; // grows: its size is flushed too
      if (this.offset === HEADER_BYTES) await segment.file.writeAt(encodeHeader(this.generation, false), 0);
      await segment.file.writeAt(Buffer.concat(encoded.map((e) => e.bytes)), this.offset);
      await segment.file.datasync();
      this.offset += total;
      this.seed = encoded[encoded.length - 1]!.crc;
      for (const { record } of items) {
        for (const p of record.packs) this.named.packs.add(p.name);
        for (const r of record.refs) this.named.refs.add(r.ref);
      }
      this.named.moving += items.length;
      this.timer ??= setTimeout(() => {
        this.timer = null;
        if (!this.closing) void this.serially(() => this.switchSegment()).catch(() => {});
      }, this.checkpointMs);
      this.timer.unref?.();
    } catch (e) {
      for (const item of items) item.reject(e);
      return;
    }
    for (const item of items) item.resolve(this.named);
  }

  private encode(items: Waiting[]): { bytes: Buffer; crc: number }[] {
    let seed = this.seed;
    return items.map(({ record }) => {
      const e = encodeRecord(record, this.generation, seed);
      seed = e.crc;
      return e;
    });
  }

  /**
   * Switches appends to the other segment, with a new generation, and checkpoints the old one in the background.
   * The other segment must be retired first: its own checkpoint is waited for.
   */
  private async switchSegment(): Promise<void> {
    if (this.offset === HEADER_BYTES) return; // nothing journaled since the last switch
    await this.settle();
    const old = { index: this.active, named: this.named };
    this.active ^= 1;
    this.generation++;
    this.offset = HEADER_BYTES;
    this.seed = seedOf(this.generation);
    this.named = emptyNamed(this.generation);
    this.unretired = old;
    // In the background; a failure (the disk's) is met again by the next switch, which retries before it reuses the
    // segment, and fails the writes waiting on it if the disk still fails.
    this.checkpointing = this.retire(old.index, old.named)
      .then(
        () => {
          this.unretired = null;
        },
        () => {},
      )
      .finally(() => {
        this.checkpointing = null;
      });
  }

  /** Makes what a segment's records name durable, then marks the segment retired. */
  private async retire(index: number, named: Named): Promise<void> {
    const { files, gitdir } = this;
    if (named.moving > 0) await new Promise<void>((resolve) => (named.moved = resolve));
    const packDir = `${gitdir}/objects/pack`;
    await Promise.all(
      [...named.packs].flatMap((name) => [
        files.syncFile(`${packDir}/${name}.pack`),
        files.syncFile(`${packDir}/${name}.idx`),
      ]),
    );
    await files.syncDir(packDir);
    const dirs = new Set<string>();
    await Promise.all(
      [...named.refs].map((ref) => {
        const path = `${gitdir}/${ref}`;
        dirs.add(path.slice(0, path.lastIndexOf('/')));
        return files.syncFile(path);
      }),
    );
    for (const dir of dirs) await files.syncDir(dir);
    const segment = (await this.open())[index]!;
    if (named.filled && segment.size < this.segmentBytes) {
      const size = Math.min(segment.size * 4, this.segmentBytes);
      await segment.file.writeAt(new Uint8Array(size - segment.size), segment.size);
      segment.size = size;
      await segment.file.sync(); // its size too
    }
    await segment.file.writeAt(encodeHeader(named.generation, true), 0);
    await segment.file.datasync();
  }

  /** The two segments, made on first use: written with zeros and synced, with their directory. */
  private open(): Promise<Segment[]> {
    if (this.segments) return Promise.resolve(this.segments);
    this.opening ??= (async () => {
      const dir = `${this.gitdir}/${JOURNAL_DIR}`;
      await this.files.mkdirp(dir);
      const tag = tempTag(await selfOwner(this.files));
      const initial = Math.min(INITIAL_SEGMENT_BYTES, this.segmentBytes);
      const zeros = new Uint8Array(initial);
      const segments: Segment[] = [];
      for (const i of [0, 1]) {
        const path = `${dir}/${tag}.${i}.wal`;
        await this.files.writeNew(path, [zeros], false);
        segments.push({ path, file: await this.files.openForUpdate(path), size: initial });
      }
      await this.files.syncDir(dir);
      await this.files.syncDir(`${this.gitdir}/store`);
      await this.files.syncDir(this.gitdir);
      const live = open.get(this.files.raw) ?? new Set<string>();
      open.set(this.files.raw, live);
      for (const s of segments) live.add(s.path);
      this.segments = segments;
      return segments;
    })();
    return this.opening;
  }
}
