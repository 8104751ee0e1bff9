import {
  firstParentHistory,
  parentsOnOtherBranches,
  type RewrittenHistory,
  replay,
  rewriteHistory,
} from '../history/compaction.js';
import { DEFAULT_MAP_LIMIT } from '../history/compaction-map.js';
import { parseRetention, RETENTION_CONFIG_KEY, retentionFromFile } from '../history/retention.js';
import { ObjectBatch } from '../objects/batch.js';
import type { Commit } from '../objects/commit.js';
import type { PruneResult } from '../objects/maintenance.js';
import { parseJsonFile } from '../tree/json-file.js';
import { checkBranchName } from '../tree/keys.js';
import type { StoreCore } from './core.js';
import type { CompactOptions, CompactResult, GcResult } from './types.js';

/** Repacking and compaction: the repository kept small while it is being written. */
export class StoreMaintenance {
  private readonly pruneGraceMs: number;
  private readonly mapLimit: number;

  /** `heldCommits`: commits that open transactions stand on, whose history pruning must keep. */
  constructor(
    private readonly core: StoreCore,
    private readonly heldCommits: () => string[],
  ) {
    this.pruneGraceMs = core.options.pruneGraceMs ?? 60_000;
    this.mapLimit = core.options.compactionMapLimit ?? DEFAULT_MAP_LIMIT;
  }

  /**
   * Repacks the repository: every pack merged into one, deflated, wide trees stored as chained deltas of their other
   * versions (git's own `git gc` works too). Safe while this and other processes write.
   */
  async gc(): Promise<GcResult> {
    const started = Date.now();
    const result = await this.core.db.gc();
    return { ...result, ms: Date.now() - started };
  }

  /**
   * Compacts a branch's history to what a retention policy keeps: commits inside the first tier stay as they are
   * (re-parented), older ones become one snapshot per interval of their tier, first-parent chained, and everything
   * older than the last tier goes. The branch moves by compare-and-swap through its writer, so writes landing
   * meanwhile are put on top, never lost. Then the old ids are recorded in the branch's compaction map and
   * unreachable objects are pruned. The policy is `options.policy` or the branch's `.store/retention.json`.
   */
  async compact(options: CompactOptions = {}): Promise<CompactResult> {
    const { core } = this;
    const { db } = core;
    const started = Date.now();
    const branch = checkBranchName(options.branch ?? core.defaultBranch);
    const progress = options.onProgress ?? (() => {});
    const start = core.existing(branch, await core.loadHead(branch));
    const tiers =
      options.policy === undefined
        ? retentionFromFile(await core.fileAt(start.tree, RETENTION_CONFIG_KEY))
        : parseRetention(
            typeof options.policy === 'string' ? parseJsonFile(options.policy, 'the retention policy') : options.policy,
          );
    const now = Math.floor(core.clock().getTime() / 1000);
    const bytesBefore = await db.packBytes();
    const otherHeads = await core.otherHeads(branch);
    const plan = async (head: string, batch: ObjectBatch, parsed: Map<string, Commit>) => {
      const history = (await firstParentHistory(db, head, null, (n) => progress(`reading history: ${n}`)))!;
      const mergedFrom = await parentsOnOtherBranches(db, history, otherHeads);
      return { commits: history.length, rewritten: rewriteHistory(history, tiers, now, batch, parsed, mergedFrom) };
    };
    const planned = new ObjectBatch();
    const parsed = new Map<string, Commit>();
    const { commits, rewritten } = start.commit
      ? await plan(start.commit, planned, parsed)
      : { commits: 0, rewritten: null };
    const result = (head: string | null, r: RewrittenHistory | null, pruned: PruneResult): CompactResult => ({
      branch,
      dryRun: options.dryRun ?? false,
      before: start.commit,
      head,
      commits,
      kept: r?.kept ?? 0,
      recent: r?.selection.recent.length ?? 0,
      snapshots: (r?.selection.snapshots ?? []).map((c) => ({
        commit: c.id,
        time: new Date(c.time * 1000).toISOString(),
      })),
      dropped: r?.dropped ?? 0,
      pruned,
      bytesBefore,
      bytesAfter: bytesBefore,
      ms: 0,
    });
    if (options.dryRun) {
      const kept = rewritten ? [...rewritten.selection.recent, ...rewritten.selection.snapshots] : [];
      const trees = await Promise.all(kept.map(async (c) => (await db.readCommit(c.id)).tree));
      const pruned = await db.prune(
        async () => this.pruneRoots(`refs/heads/${branch}`, trees),
        this.pruneGraceMs,
        true,
      );
      return { ...result(start.commit, rewritten, pruned), ms: Date.now() - started };
    }
    let head = start.commit;
    let final = rewritten;
    if (rewritten && rewritten.rewrites.size > 0) {
      progress('moving the branch');
      db.hold(planned);
      db.remember(planned, new Map(), parsed);
      try {
        ({ head, final } = await core.write(branch, async (ctx) => {
          let r = rewritten;
          let top = r.head;
          const since =
            ctx.head.commit === start.commit ? [] : await firstParentHistory(db, ctx.head.commit!, start.commit);
          if (since === null) {
            // Rewritten meanwhile by someone else (another compaction, a reset): plan again on what is there now.
            r = (await plan(ctx.head.commit!, ctx.batch, ctx.commits)).rewritten;
            top = r.head;
          } else {
            ctx.batch.merge(planned);
            for (const [oid, c] of parsed) ctx.commits.set(oid, c);
            if (since.length > 0) {
              const rewrites = new Map(r.rewrites);
              const mergedFrom = await parentsOnOtherBranches(db, since, otherHeads);
              top = replay(since, r.head, ctx.batch, ctx.commits, rewrites, mergedFrom);
              r = { ...r, rewrites };
            }
          }
          return { head: { commit: top, tree: ctx.head.tree }, result: { head: top, final: r } };
        }));
      } finally {
        db.release(planned);
      }
      progress('recording old commit ids');
      await core.maps.record(branch, final.rewrites, this.mapLimit, core.signature(undefined));
    }
    progress('pruning');
    const pruned = await db.prune(async () => this.pruneRoots(), this.pruneGraceMs);
    return {
      ...result(head, final, pruned),
      bytesAfter: await db.packBytes(),
      ms: Date.now() - started,
    };
  }

  /**
   * What pruning must keep: every ref with its history — open transactions' refs included, this process's too, as
   * their commits lead back into the history before the compaction (a transaction that has not mirrored its ref yet
   * may do so any moment, so its head counts as well). That history goes at the next compaction once they ended.
   * A dry run leaves out its branch and adds the trees it would keep.
   */
  private async pruneRoots(without?: string, trees: string[] = []): Promise<{ full: string[]; shallow: string[] }> {
    const full: string[] = [];
    for (const [ref, oid] of await this.core.refs.list('refs/')) if (ref !== without) full.push(oid);
    full.push(...this.heldCommits());
    return { full, shallow: trees };
  }
}
