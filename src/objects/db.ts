import { notFound, StoreError } from '../errors.js';
import type { Files } from '../fs.js';
import { type Commit, parseCommit } from './commit.js';
import { DELTA_MIN_BYTES } from './delta.js';
import { planByKey } from './delta-plan.js';
import { Lru } from './lru.js';
import { type GitObject, hashObject, type ObjectType } from './object.js';
import { type PackInput, writePack } from './pack.js';
import { ObjectReader, type RawEntry } from './reader.js';
import { repack } from './repack.js';
import { parseTree, type Tree } from './tree.js';
import { treeWeight } from './tree-overlay.js';

/** Objects made by one batch of writes, waiting to be written together as one pack. */
export class ObjectBatch {
  readonly objects = new Map<string, GitObject>();
  /** For large trees: the previous version of the same directory, which a pack may store this one as a delta of. */
  readonly bases = new Map<string, string>();

  /** Adds an object; `base` names the object it is a new version of (a hint for delta encoding). */
  add(type: ObjectType, body: Uint8Array, base?: string): string {
    const oid = hashObject(type, body);
    if (!this.objects.has(oid)) {
      this.objects.set(oid, { type, body });
      if (base !== undefined && body.length >= DELTA_MIN_BYTES && base !== oid) this.bases.set(oid, base);
    }
    return oid;
  }

  get size(): number {
    return this.objects.size;
  }

  /** Takes in another batch's objects. */
  merge(other: ObjectBatch): void {
    for (const [oid, o] of other.objects) this.objects.set(oid, o);
    for (const [oid, base] of other.bases) this.bases.set(oid, base);
  }
}

/** How many small packs may pile up before they are merged into one. */
const PACKS_BEFORE_CONSOLIDATION = 64;
/** Packs above this size are left to `git gc` (they are already "big"). */
const SMALL_PACK_BYTES = 4 << 20;
/** Packs up to this size are merged at every round. */
const TINY_PACK_BYTES = 256 << 10;
/** Small packs (tiny ones included) that make a round merge all of them. */
const MEDIUM_PACKS_BEFORE_MERGE = 16 + PACKS_BEFORE_CONSOLIDATION;

/**
 * The object database: reads through caches (parsed trees, commits, blob bytes) and isomorphic-git, which knows
 * loose objects and packs, delta'd ones included, written by git; writes batches as packs of our own.
 */
export class ObjectDb {
  private readonly reader: ObjectReader;
  private readonly trees = new Lru<string, Tree>(400_000, treeWeight);
  private readonly commits = new Lru<string, Commit>(100_000);
  private readonly blobs = new Lru<string, Uint8Array>(64 << 20, (b) => b.length + 64);
  private packsWritten = 0;
  private maintaining: Promise<unknown> | null = null;

  constructor(
    private readonly files: Files,
    private readonly gitdir: string,
  ) {
    this.reader = new ObjectReader(files, gitdir);
  }

  private get packDir() {
    return `${this.gitdir}/objects/pack`;
  }

  /** Reads any object; NOT_FOUND when the repository does not have it. */
  /**
   * Keeps a batch's objects readable before (or without) them being on disk: an open transaction's commits live in
   * memory and reach the disk in the background, and the caches alone may evict them meanwhile.
   */
  hold(batch: ObjectBatch): void {
    this.held.add(batch);
  }

  release(batch: ObjectBatch): void {
    this.held.delete(batch);
  }

  private readonly held = new Set<ObjectBatch>();

  async read(oid: string): Promise<GitObject> {
    for (const batch of this.held) {
      const o = batch.objects.get(oid);
      if (o) return o;
    }
    const found = await this.reader.read(oid);
    if (!found) throw notFound('object', oid);
    return found;
  }

  private async readTyped(oid: string, type: ObjectType): Promise<Uint8Array> {
    const o = await this.read(oid);
    if (o.type !== type) throw new StoreError('CORRUPT', `object ${oid} is a ${o.type}, expected a ${type}`, { oid });
    return o.body;
  }

  /** Reads through a cache: parsed objects are shared, so callers must not mutate them. */
  private async cached<T>(
    cache: Lru<string, T>,
    oid: string,
    type: ObjectType,
    parse: (body: Uint8Array) => T,
  ): Promise<T> {
    const hit = cache.get(oid);
    if (hit) return hit;
    const value = parse(await this.readTyped(oid, type));
    cache.set(oid, value);
    return value;
  }

  readTree(oid: string): Promise<Tree> {
    return this.cached(this.trees, oid, 'tree', parseTree);
  }

  readCommit(oid: string): Promise<Commit> {
    return this.cached(this.commits, oid, 'commit', parseCommit);
  }

  readBlob(oid: string): Promise<Uint8Array> {
    return this.cached(this.blobs, oid, 'blob', (body) => body);
  }

  /** What kind of object `oid` is, or null when absent. */
  async typeOf(oid: string): Promise<ObjectType | null> {
    try {
      return (await this.read(oid)).type;
    } catch (e) {
      if ((e as StoreError).code === 'NOT_FOUND') return null;
      throw e;
    }
  }

  /** Expands an abbreviated oid (≥ 4 hex digits); null when nothing matches, INVALID_ARGUMENT when ambiguous. */
  async expand(prefix: string): Promise<string | null> {
    const matches = await this.reader.matching(prefix);
    if (matches.length > 1) {
      throw new StoreError('INVALID_ARGUMENT', `${prefix} is ambiguous; give more digits`, { revision: prefix });
    }
    return matches[0] ?? null;
  }

  /** Makes objects built in memory readable through the caches before (and after) they are written. */
  remember(batch: ObjectBatch, parsedTrees: Map<string, Tree>, parsedCommits: Map<string, Commit>): void {
    for (const [oid, tree] of parsedTrees) this.trees.set(oid, tree);
    for (const [oid, commit] of parsedCommits) this.commits.set(oid, commit);
    for (const [oid, o] of batch.objects) if (o.type === 'blob') this.blobs.set(oid, o.body);
  }

  /**
   * Writes a batch as one pack; returns once it is safe to point a ref at its objects — durably unless told not to
   * (a transaction's own commits: lost in a crash along with the transaction, and re-written durably when it commits).
   */
  async write(batch: ObjectBatch, durable = true): Promise<void> {
    if (batch.size === 0) return;
    await this.files.mkdirp(this.packDir);
    await writePack(durable ? this.files : this.files.volatile(), this.packDir, batchInputs(batch));
    this.reader.refresh();
    if (++this.packsWritten >= PACKS_BEFORE_CONSOLIDATION && !this.maintaining) {
      this.packsWritten = 0;
      this.maintain(() => this.consolidate()).catch(() => {
        // Maintenance only tidies: if it fails (a file vanished, the disk is full), the small packs stay, all
        // readable, and the next round tries again. It must never take the process down.
      });
    }
  }

  /** Runs one maintenance task at a time (background consolidation, gc). */
  private async maintain<T>(task: () => Promise<T>): Promise<T> {
    while (this.maintaining) await this.maintaining.catch(() => {});
    const running = task();
    this.maintaining = running;
    try {
      return await running;
    } finally {
      if (this.maintaining === running) this.maintaining = null;
    }
  }

  /** Waits for background maintenance (tests and close). */
  async idle(): Promise<void> {
    await this.maintaining?.catch(() => {});
  }

  /**
   * Merges small packs into one, so readers (ours, git's) do not search hundreds of indexes, storing wide trees as
   * deltas of their previous versions. Tiers, as in a log-structured merge: the many tiny packs are merged often,
   * the few medium ones only once a good number of them has piled up — so a round never rewrites megabytes (and
   * never stalls the writers' fsyncs) to absorb a few kilobytes. Returns how many packs were merged.
   */
  async consolidate(): Promise<number> {
    const small = (await this.reader.listPacks()).filter((p) => p.bytes <= SMALL_PACK_BYTES && !p.keep);
    const chosen = small.length >= MEDIUM_PACKS_BEFORE_MERGE ? small : small.filter((p) => p.bytes <= TINY_PACK_BYTES);
    const done = await repack(
      this,
      this.files,
      this.packDir,
      chosen.map((p) => p.name),
      { compress: false },
    );
    this.reader.refresh();
    return done ? chosen.length : 0;
  }

  /**
   * `store gc`: every pack rewritten as one, deflated, wide trees as chained deltas. Safe while other processes
   * write: packs that appear meanwhile are left alone, and nothing is removed before its replacement is durable.
   */
  gc(): Promise<{ packsBefore: number; packsAfter: number; bytesBefore: number; bytesAfter: number; objects: number }> {
    return this.maintain(async () => {
      const before = await this.reader.listPacks();
      const done = await repack(
        this,
        this.files,
        this.packDir,
        before.filter((p) => !p.keep).map((p) => p.name),
        {
          compress: true,
          force: true,
        },
      );
      const after = await this.reader.listPacks();
      const sum = (packs: { bytes: number }[]) => packs.reduce((n, p) => n + p.bytes, 0);
      return {
        packsBefore: before.length,
        packsAfter: after.length,
        bytesBefore: sum(before),
        bytesAfter: sum(after),
        objects: done?.objects ?? 0,
      };
    });
  }

  /** The entries of one pack as stored, in order (for repacking). */
  rawEntriesOf(pack: string): AsyncIterable<RawEntry> {
    return this.reader.rawEntriesOf(pack);
  }

  /** Reads one object; CORRUPT when it is missing (repacking reads only objects it has just seen). */
  readObject(oid: string): Promise<GitObject> {
    return this.reader.readObject(oid);
  }
}

/**
 * A batch's objects as pack inputs, in the order they were made. Wide trees built from a previous version in the
 * same batch become deltas of it, planned as chains (delta-plan.ts); the first version of each stays whole.
 */
function batchInputs(batch: ObjectBatch): PackInput[] {
  const chainOf = new Map<string, string>();
  const versions: { oid: string; key: string }[] = [];
  for (const [oid, base] of batch.bases) {
    if (!batch.objects.has(base)) continue;
    const key = chainOf.get(base) ?? base;
    chainOf.set(base, key);
    chainOf.set(oid, key);
    versions.push({ oid, key });
  }
  // Each chain's first version (its key) leads it.
  const roots = new Set(versions.map((v) => v.key));
  const planned = planByKey(
    [...batch.objects.keys()]
      .filter((oid) => roots.has(oid) || chainOf.has(oid))
      .map((oid) => ({ oid, key: chainOf.get(oid)! })),
  );
  return [...batch.objects].map(([oid, o]) => {
    const base = planned.get(oid);
    return { oid, type: o.type, body: o.body, ...(base ? { base } : {}) };
  });
}
