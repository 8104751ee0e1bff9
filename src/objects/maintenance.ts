import type { Files } from '../storage/fs.js';
import { type ObjectSource, reachable } from './reachable.js';
import type { ObjectReader } from './reader.js';
import { removePack, repack } from './repack.js';

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

/** What `store gc` did: packs and their bytes before and after, and how many objects the one pack holds. */
export interface GcResult {
  packsBefore: number;
  packsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  objects: number;
}

/**
 * The pack maintenance policy: when small packs are merged (in the background, as writes add packs), `store gc`'s
 * one deflated pack, and pruning what nothing reaches. One task at a time; each is safe while other processes write.
 */
export class Maintenance {
  private packsWritten = 0;
  private maintaining: Promise<unknown> | null = null;

  /**
   * `objects`: reads through the caches and what this process holds in memory, for reachability.
   * `held`: oids of objects this process holds for writes in flight and open transactions.
   */
  constructor(
    private readonly files: Files,
    private readonly packDir: string,
    private readonly reader: ObjectReader,
    private readonly objects: ObjectSource,
    private readonly held: () => Iterable<string>,
  ) {}

  /** A pack was written: every so many, small packs are merged in the background. */
  packWritten(): void {
    if (++this.packsWritten >= PACKS_BEFORE_CONSOLIDATION && !this.maintaining) {
      this.packsWritten = 0;
      this.run(() => this.consolidate()).catch(() => {
        // Maintenance only tidies: if it fails (a file vanished, the disk is full), the small packs stay, all
        // readable, and the next round tries again. It must never take the process down.
      });
    }
  }

  /** Runs one maintenance task at a time (background consolidation, gc, pruning). */
  private async run<T>(task: () => Promise<T>): Promise<T> {
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
  private async consolidate(): Promise<number> {
    const small = (await this.reader.listPacks()).filter((p) => p.bytes <= SMALL_PACK_BYTES && !p.keep);
    const chosen = small.length >= MEDIUM_PACKS_BEFORE_MERGE ? small : small.filter((p) => p.bytes <= TINY_PACK_BYTES);
    const done = await repack(
      this.reader,
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
  gc(): Promise<GcResult> {
    return this.run(async () => {
      const before = await this.reader.listPacks();
      let packs = before;
      let done: Awaited<ReturnType<typeof repack>> = null;
      // When another process merged some of our packs meanwhile, their objects are in its new pack: go again (a
      // few times at most) so gc still ends with one pack holding everything.
      for (let round = 0; round < 3; round++) {
        const names = packs.filter((p) => !p.keep).map((p) => p.name);
        const result = await repack(this.reader, this.files, this.packDir, names, {
          compress: true,
          force: round === 0,
        });
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
    return this.run(async () => {
      const packs = await this.reader.listPacks();
      const cutoff = Date.now() - graceMs;
      const old = packs.filter((p) => !p.keep && p.mtimeMs <= cutoff).map((p) => p.name);
      const young = packs.filter((p) => !p.keep && p.mtimeMs > cutoff);
      const { full, shallow } = await roots();
      const alive = await reachable(this.objects, full, [...shallow, ...this.held()]);
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
          await repack(this.reader, this.files, this.packDir, chosen, { compress: 'stored', force: true, keep });
        }
        this.reader.refresh();
      }
      return { objects, bytes, reachable: alive.size, deferred };
    });
  }
}
