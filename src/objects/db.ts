import { notFound, StoreError } from '../errors.js';
import type { Files } from '../storage/fs.js';
import { type Commit, parseCommit } from './commit.js';
import { DELTA_MIN_BYTES, patchDelta } from './delta.js';
import { planByKey } from './delta-plan.js';
import { Lru } from './lru.js';
import { copyBytes, type GitObject, hashObject, type ObjectType } from './object.js';
import { type DeltaInput, type PackInput, writePack } from './pack.js';
import { reachable } from './reachable.js';
import { ObjectReader, type RawEntry } from './reader.js';
import { removePack, repack } from './repack.js';
import { parseTree, type Tree, type TreePatch } from './tree.js';
import { treeWeight } from './tree-overlay.js';

/**
 * A wide tree version kept as the oids written over its predecessor's body (tree.ts `serializeTreeChange`), not as
 * a body of its own: the body was patched in place and has moved on to later versions.
 */
interface Patched {
  base: string;
  size: number;
  writes: { at: number; oid: Buffer }[];
  /** Patched versions between this one and a whole body: bounded so a pack's delta chains stay shallow. */
  depth: number;
}

/** Deepest chain of patched versions in one batch before a version is kept whole (git's own default depth). */
const MAX_PATCH_DEPTH = 50;

/** Objects made by one batch of writes, waiting to be written together as one pack. */
export class ObjectBatch {
  readonly objects = new Map<string, GitObject>();
  /** For large trees: the previous version of the same directory, which a pack may store this one as a delta of. */
  readonly bases = new Map<string, string>();
  /** Wide tree versions kept as patches of an earlier version in this batch (or in `prior`). */
  readonly patched = new Map<string, Patched>();
  /** Every oid added, in order (objects set directly, e.g. copied from a transaction, are whole and need none). */
  readonly order: string[] = [];

  /** `prior`: the batch this one will be merged into (a writer's batch so far), whose objects patches may build on. */
  constructor(readonly prior: ObjectBatch | null = null) {}

  /** Adds an object; `base` names the object it is a new version of (a hint for delta encoding). */
  add(type: ObjectType, body: Uint8Array, base?: string): string {
    const oid = hashObject(type, body);
    if (!this.has(oid)) {
      this.objects.set(oid, { type, body });
      this.order.push(oid);
      if (base !== undefined && body.length >= DELTA_MIN_BYTES && base !== oid) this.bases.set(oid, base);
    }
    return oid;
  }

  /**
   * Adds a tree version made by patching `base`'s body in place. Kept as the patch when `base` is in this batch (or
   * its prior), else — the first version of a batch — as a copy of the body, which the pack needs whole.
   */
  addPatch(patch: TreePatch, base: string): string {
    const oid = hashObject('tree', patch.body);
    if (this.has(oid)) return oid;
    const baseDepth = this.depthOf(base);
    if (baseDepth === null || baseDepth >= MAX_PATCH_DEPTH) {
      this.objects.set(oid, { type: 'tree', body: copyBytes(patch.body) });
      this.order.push(oid);
      if (baseDepth !== null && base !== oid) this.bases.set(oid, base);
      return oid;
    }
    this.patched.set(oid, { base, size: patch.body.length, writes: patch.writes, depth: baseDepth + 1 });
    this.order.push(oid);
    return oid;
  }

  /** How many patches separate `oid` from a whole body in this batch (0: whole); null when not in it. */
  private depthOf(oid: string): number | null {
    for (let b: ObjectBatch | null = this; b; b = b.prior) {
      if (b.objects.has(oid)) return 0;
      const p = b.patched.get(oid);
      if (p) return p.depth;
    }
    return null;
  }

  has(oid: string): boolean {
    return this.objects.has(oid) || this.patched.has(oid);
  }

  /** An object of this batch (or its prior), a patched version's body rebuilt from its whole base. */
  get(oid: string): GitObject | undefined {
    for (let b: ObjectBatch | null = this; b; b = b.prior) {
      const o = b.objects.get(oid);
      if (o) return o;
      const p = b.patched.get(oid);
      if (p) {
        const base = this.get(p.base)!;
        const body = copyBytes(base.body);
        for (const { at, oid: bytes } of p.writes) bytes.copy(body, at);
        return { type: 'tree', body };
      }
    }
    return undefined;
  }

  get size(): number {
    return this.objects.size + this.patched.size;
  }

  /** Takes in another batch's objects. */
  merge(other: ObjectBatch): void {
    for (const [oid, o] of other.objects) this.objects.set(oid, o);
    for (const [oid, base] of other.bases) this.bases.set(oid, base);
    for (const [oid, p] of other.patched) this.patched.set(oid, p);
    // A loop, not push(...): a batch of 100,000 keys has more objects than a call can take arguments.
    for (const oid of other.order) this.order.push(oid);
  }
}

/**
 * How many small packs may pile up before they are merged into one. At Xenstore width each batch's pack holds one
 * whole copy of the wide directory (320 KB): merged every 32 packs (and packs up to 1 MB counted as tiny), the
 * repository peaked at 1.7 × `git gc --aggressive`'s size while writing W2, against 3.4 × every 64 packs with a
 * 256 KB tiny limit (measured, 10,000 commits).
 */
const PACKS_BEFORE_CONSOLIDATION = 32;
/** A pack is rewritten by pruning once at least this share of its bytes is garbage. */
const GARBAGE_SHARE = 0.2;
/** Packs above this size are left to `git gc` (they are already "big"). */
const SMALL_PACK_BYTES = 4 << 20;
/** Packs up to this size are merged at every round. */
const TINY_PACK_BYTES = 1 << 20;
/** Small packs (tiny ones included) that make a round merge all of them. */
const MEDIUM_PACKS_BEFORE_MERGE = 16 + PACKS_BEFORE_CONSOLIDATION;

/**
 * The object database: reads through caches (parsed trees, commits, blob bytes) and the object reader, which knows
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
   * `compress` deflates the entries (for a few large objects written once, such as a compaction map).
   */
  async write(batch: ObjectBatch, durable = true, compress = false): Promise<void> {
    if (batch.size === 0) return;
    await this.files.mkdirp(this.packDir);
    const files = durable ? this.files : this.files.volatile();
    const written = await writePack(files, this.packDir, batchInputs(batch), { compress });
    this.reader.added(written.name, written.idx, written.pack);
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
      let packs = before;
      let done: Awaited<ReturnType<typeof repack>> = null;
      // When another process merged some of our packs meanwhile, their objects are in its new pack: go again (a
      // few times at most) so gc still ends with one pack holding everything.
      for (let round = 0; round < 3; round++) {
        const names = packs.filter((p) => !p.keep).map((p) => p.name);
        const result = await repack(this, this.files, this.packDir, names, { compress: true, force: round === 0 });
        done = result ?? done;
        if (!result?.vanished) break;
        packs = await this.reader.listPacks();
      }
      const after = await this.reader.listPacks();
      const sum = (list: { bytes: number }[]) => list.reduce((n, p) => n + p.bytes, 0);
      return {
        packsBefore: before.length,
        packsAfter: after.length,
        bytesBefore: sum(before),
        bytesAfter: sum(after),
        objects: done?.objects ?? 0,
      };
    });
  }

  /**
   * Removes objects no root reaches (compaction's last step). `roots` is asked for only after the packs are listed,
   * so a pack written meanwhile is not touched; packs younger than `graceMs` are not touched either — another
   * process may have written one and not yet moved its ref. Objects this process holds in memory for writes in
   * flight or open transactions are kept, with the trees they reach. With `dryRun`, only counts.
   */
  prune(
    roots: () => Promise<{ full: string[]; shallow: string[] }>,
    graceMs: number,
    dryRun = false,
  ): Promise<PruneResult> {
    return this.maintain(async () => {
      const packs = await this.reader.listPacks();
      const cutoff = Date.now() - graceMs;
      const old = packs.filter((p) => !p.keep && p.mtimeMs <= cutoff).map((p) => p.name);
      const young = packs.filter((p) => !p.keep && p.mtimeMs > cutoff);
      const { full, shallow } = await roots();
      const held = [...this.held].flatMap((b) => [...b.objects.keys(), ...b.patched.keys()]);
      const alive = await reachable(this, full, [...shallow, ...held]);
      // Per pack: its garbage. A pack is rewritten only when garbage is a good part of it, as in a log-structured
      // merge: the big pack of live history is not copied again every time a few of its snapshots age out (the
      // repository then stays within 1 / (1 - GARBAGE_SHARE) of its live size).
      const chosen: string[] = [];
      let objects = 0;
      let bytes = 0;
      let keptInChosen = 0;
      const counted = new Set<string>();
      for (const name of old) {
        let garbage = 0;
        let garbageBytes = 0;
        let total = 0;
        let live = 0;
        for await (const e of this.reader.rawEntriesOf(name)) {
          total += e.data.length;
          if (counted.has(e.oid)) continue;
          counted.add(e.oid);
          if (alive.has(e.oid)) live++;
          else {
            garbage++;
            garbageBytes += e.data.length;
          }
        }
        if (garbage === 0 || garbageBytes < total * GARBAGE_SHARE) continue;
        chosen.push(name);
        objects += garbage;
        bytes += garbageBytes;
        keptInChosen += live;
      }
      // The garbage the grace period protects, counted so the caller can say why it stayed and when it can go.
      const deferred: PruneResult['deferred'] = { packs: 0, objects: 0, bytes: 0, graceMs, until: null };
      let latest = 0;
      for (const pack of young) {
        let garbage = 0;
        for await (const e of this.reader.rawEntriesOf(pack.name)) {
          if (counted.has(e.oid)) continue;
          counted.add(e.oid);
          if (alive.has(e.oid)) continue;
          garbage++;
          deferred.bytes += e.data.length;
        }
        if (garbage === 0) continue;
        deferred.packs++;
        deferred.objects += garbage;
        latest = Math.max(latest, pack.mtimeMs);
      }
      if (deferred.packs > 0) deferred.until = new Date(Math.ceil(latest + graceMs)).toISOString();
      if (!dryRun && chosen.length > 0) {
        if (keptInChosen === 0) for (const name of chosen) await removePack(this.files, this.packDir, name);
        else {
          const keep = (o: string) => alive.has(o);
          await repack(this, this.files, this.packDir, chosen, { compress: 'stored', force: true, keep });
        }
        this.reader.refresh();
      }
      return { objects, bytes, reachable: alive.size, deferred };
    });
  }

  /** The bytes the packs take now (packs and indexes). */
  async packBytes(): Promise<number> {
    return (await this.reader.listPacks()).reduce((n, p) => n + p.bytes, 0);
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

/** What pruning removed (or, in a dry run, would remove): objects and their stored bytes; objects still reachable. */
export interface PruneResult {
  objects: number;
  bytes: number;
  reachable: number;
  /**
   * Unreachable objects left alone because their packs are younger than the grace period (`graceMs`): how many, their
   * stored bytes, in how many packs, and when the youngest of those packs is past it (ISO time; null when none). A
   * pruning after that time frees them, unless something reaches them again.
   */
  deferred: { packs: number; objects: number; bytes: number; graceMs: number; until: string | null };
}

/**
 * A batch's objects as pack inputs, in the order they were made. Patched tree versions become deltas of their
 * predecessor as they are; whole wide trees built from a previous version in the same batch become deltas of it,
 * planned as chains (delta-plan.ts); the first version of each stays whole.
 */
function batchInputs(batch: ObjectBatch): (PackInput | DeltaInput)[] {
  // Each chain is named after its first version, which stays whole.
  const chainOf = new Map<string, string>();
  for (const [oid, base] of batch.bases) {
    if (!batch.objects.has(base)) continue;
    const key = chainOf.get(base) ?? base;
    chainOf.set(base, key);
    chainOf.set(oid, key);
  }
  const planned = planByKey(
    [...batch.objects.keys()].filter((oid) => chainOf.has(oid)).map((oid) => ({ oid, key: chainOf.get(oid)! })),
  );
  const out: (PackInput | DeltaInput)[] = [];
  const seen = new Set<string>();
  const emit = (oid: string) => {
    if (seen.has(oid)) return;
    seen.add(oid);
    const p = batch.patched.get(oid);
    if (p) {
      emit(p.base);
      out.push({ oid, delta: { base: p.base, data: patchDelta(p.size, p.writes) } });
      return;
    }
    const o = batch.objects.get(oid);
    if (!o) return;
    const base = planned.get(oid);
    if (base) emit(base);
    out.push({ oid, type: o.type, body: o.body, ...(base ? { base } : {}) });
  };
  for (const oid of batch.order) emit(oid);
  for (const oid of batch.objects.keys()) emit(oid);
  return out;
}
