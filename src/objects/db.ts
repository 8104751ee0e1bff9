import { notFound, StoreError } from '../errors.js';
import type { Files } from '../fs.js';
import { type Commit, parseCommit } from './commit.js';
import { Lru } from './lru.js';
import { type GitObject, hashObject, type ObjectType } from './object.js';
import { encodeEntry, type PackEntry, readWholeEntries, writePack } from './pack.js';
import { ObjectReader } from './reader.js';
import { parseTree, type Tree } from './tree.js';

/** Objects made by one batch of writes, waiting to be written together as one pack. */
export class ObjectBatch {
  readonly objects = new Map<string, GitObject>();

  add(type: ObjectType, body: Uint8Array): string {
    const oid = hashObject(type, body);
    if (!this.objects.has(oid)) this.objects.set(oid, { type, body });
    return oid;
  }

  get size(): number {
    return this.objects.size;
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
  private readonly trees = new Lru<string, Tree>(400_000, (t) => t.size + 1);
  private readonly commits = new Lru<string, Commit>(100_000);
  private readonly blobs = new Lru<string, Uint8Array>(64 << 20, (b) => b.length + 64);
  private packsWritten = 0;
  private consolidating: Promise<void> | null = null;

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
    const entries: PackEntry[] = [];
    for (const [oid, o] of batch.objects) entries.push(encodeEntry(oid, o));
    await this.files.mkdirp(this.packDir);
    await writePack(durable ? this.files : this.files.volatile(), this.packDir, entries);
    this.reader.refresh();
    if (++this.packsWritten >= PACKS_BEFORE_CONSOLIDATION && !this.consolidating) {
      this.packsWritten = 0;
      this.consolidating = this.consolidate()
        .then(() => {})
        // Maintenance only tidies: if it fails (a file vanished, the disk is full), the small packs stay, all readable,
        // and the next round tries again. It must never take the process down.
        .catch(() => {})
        .finally(() => {
          this.consolidating = null;
        });
    }
  }

  /** Waits for background maintenance (tests and close). */
  async idle(): Promise<void> {
    await this.consolidating;
  }

  /**
   * Merges the small whole-object packs into one, so readers (ours, git's) do not search hundreds of indexes.
   * The new pack is durable before any old one is removed, so an object is never missing from the repository.
   */
  async consolidate(): Promise<number> {
    const names = (await this.files.list(this.packDir)).filter((n) => /^pack-[0-9a-f]{40}\.idx$/.test(n));
    const sizes = new Map<string, number>();
    for (const idxName of names) {
      const base = idxName.slice(0, -4);
      const stat = await this.files.stat(`${this.packDir}/${base}.pack`);
      if (stat && stat.size <= SMALL_PACK_BYTES) sizes.set(base, stat.size);
    }
    // Tiers, as in a log-structured merge: the many tiny packs are merged often, the few medium ones only once a
    // good number of them has piled up — so a round never rewrites megabytes (and never stalls the writers'
    // fsyncs) to absorb a few kilobytes.
    const tiny = [...sizes].filter(([, size]) => size <= TINY_PACK_BYTES).map(([base]) => base);
    const chosen = sizes.size >= MEDIUM_PACKS_BEFORE_MERGE ? [...sizes.keys()] : tiny;
    const merged: PackEntry[] = [];
    const seen = new Set<string>();
    const sources: string[] = [];
    for (const base of chosen) {
      const [pack, idx] = await Promise.all([
        this.files.read(`${this.packDir}/${base}.pack`),
        this.files.read(`${this.packDir}/${base}.idx`),
      ]);
      if (!pack || !idx) continue;
      const entries = readWholeEntries(pack, idx);
      if (!entries) continue;
      sources.push(base);
      for (const e of entries) {
        if (seen.has(e.oid)) continue;
        seen.add(e.oid);
        merged.push(e);
      }
    }
    if (sources.length < 2) return 0;
    const kept = await writePack(this.files, this.packDir, merged);
    for (const base of sources) {
      if (base === kept) continue;
      // Index first: a reader that still finds the idx also still finds its pack.
      await this.files.remove(`${this.packDir}/${base}.idx`);
      await this.files.remove(`${this.packDir}/${base}.pack`);
    }
    return sources.length;
  }
}
