import { notFound, StoreError } from '../errors.js';
import type { Files } from '../storage/fs.js';
import { batchInputs, type ObjectBatch } from './batch.js';
import { type Commit, parseCommit } from './commit.js';
import { Lru } from './lru.js';
import { type GcResult, Maintenance, type PruneResult } from './maintenance.js';
import type { GitObject, ObjectType } from './object.js';
import { writePack } from './pack.js';
import { ObjectReader } from './reader.js';
import { parseTree, type Tree } from './tree.js';
import { treeWeight } from './tree-overlay.js';

/** A pack as written: its name (`pack-<sum>`) and its two files' bytes (what the journal records). */
export interface WrittenPack {
  name: string;
  pack: Uint8Array;
  idx: Uint8Array;
}

/**
 * The object database: reads through caches (parsed trees, commits, blob bytes) and the object reader, which knows
 * loose objects and packs, delta'd ones included, written by git; writes batches as packs of our own.
 */
export class ObjectDb {
  private readonly reader: ObjectReader;
  private readonly trees = new Lru<string, Tree>(400_000, treeWeight);
  private readonly commits = new Lru<string, Commit>(100_000);
  private readonly blobs = new Lru<string, Uint8Array>(64 << 20, (b) => b.length + 64);
  private readonly maintenance: Maintenance;

  constructor(
    private readonly files: Files,
    private readonly gitdir: string,
  ) {
    this.reader = new ObjectReader(files, gitdir);
    this.maintenance = new Maintenance(files, this.packDir, this.reader, this, () =>
      [...this.held].flatMap((b) => [...b.objects.keys(), ...b.patched.keys()]),
    );
  }

  private get packDir() {
    return `${this.gitdir}/objects/pack`;
  }

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

  /** Reads any object; NOT_FOUND when the repository does not have it. */
  async read(oid: string): Promise<GitObject> {
    for (const batch of this.held) {
      const o = batch.get(oid);
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
    const body = await this.readTyped(oid, type);
    let value: T;
    try {
      value = parse(body);
    } catch (e) {
      // Bytes that are not a valid object of their type: the repository is damaged, not the store.
      throw new StoreError(
        'CORRUPT',
        `repository is damaged: ${type} ${oid} is malformed (${(e as Error).message}); run \`git fsck\``,
        {
          oid,
        },
      );
    }
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
   * `compress` deflates the entries (for a few large objects written once, such as a compaction map).
   */
  async write(batch: ObjectBatch, durable = true, compress = false): Promise<WrittenPack | null> {
    if (batch.size === 0) return null;
    await this.files.mkdirp(this.packDir);
    const files = durable ? this.files : this.files.volatile();
    const written = await writePack(files, this.packDir, batchInputs(batch), { compress });
    this.reader.added(written.name, written.idx, written.pack);
    this.maintenance.packWritten();
    return written;
  }

  /** Looks at the pack directory again: packs another process (or recovery) put there are read from now on. */
  refreshPacks(): void {
    this.reader.refresh();
  }

  /** Waits for background maintenance (tests and close). */
  idle(): Promise<void> {
    return this.maintenance.idle();
  }

  /** `store gc`: every pack rewritten as one, deflated (see Maintenance.gc). */
  gc(): Promise<GcResult> {
    return this.maintenance.gc();
  }

  /** Removes objects no root reaches, keeping what this process holds in memory (see Maintenance.prune). */
  prune(
    roots: () => Promise<{ full: string[]; shallow: string[] }>,
    graceMs: number,
    dryRun = false,
  ): Promise<PruneResult> {
    return this.maintenance.prune(roots, graceMs, dryRun);
  }

  /** The bytes the packs take now (packs and indexes). */
  async packBytes(): Promise<number> {
    return (await this.reader.listPacks()).reduce((n, p) => n + p.bytes, 0);
  }
}
