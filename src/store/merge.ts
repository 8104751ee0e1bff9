import { conflict, invalidArgument } from '../errors.js';
import { MAP_REF_PREFIX } from '../history/compaction-map.js';
import { parsePolicy } from '../merge/config.js';
import { isAncestor, mergeBases } from '../merge/merge-base.js';
import { mergeTrees } from '../merge/three-way.js';
import type { ObjectBatch } from '../objects/batch.js';
import type { Commit } from '../objects/commit.js';
import { checkBranchName, checkMessage } from '../tree/keys.js';
import { commitMessage, type StoreCore } from './core.js';
import type { MergeOptions, MergeResult } from './types.js';
import type { WriteContext } from './writer.js';

/** Merging branches (and any revision) into a branch, per key, with the repository's strategies. */
export class StoreMerges {
  constructor(private readonly core: StoreCore) {}

  /**
   * Merges `from` (a branch or any revision) into `into`: three-way per key, strategies per prefix from the target's
   * `.store/merge.json` unless `strategy` overrides them. CONFLICT (with `data.conflicts`) writes nothing.
   */
  async merge(from: string, options: MergeOptions = {}): Promise<MergeResult> {
    const { core } = this;
    const { db } = core;
    const into = checkBranchName(options.into ?? core.defaultBranch);
    checkMessage(options.message);
    const override = options.strategy === undefined ? undefined : parsePolicy(options.strategy, 'the strategy option');
    return core.write<MergeResult>(into, async (ctx) => {
      const theirs = await core.resolve(from, into);
      const ours = ctx.head.commit;
      if (from === into) throw invalidArgument(`cannot merge ${into} into itself; name another branch or revision`);
      if (ours && (await isAncestor((o) => db.readCommit(o), theirs, ours))) {
        return { head: ctx.head, result: { commit: ours, outcome: 'up-to-date' as const } };
      }
      const canFastForward = ours === null || (await isAncestor((o) => db.readCommit(o), ours, theirs));
      if (options.ff) {
        if (!canFastForward) {
          throw conflict(`cannot fast-forward ${into} to ${from}: the branches have diverged; merge without --ff`, []);
        }
        const tree = (await db.readCommit(theirs)).tree;
        return { head: { commit: theirs, tree }, result: { commit: theirs, outcome: 'fast-forward' as const } };
      }
      const theirsCommit = await db.readCommit(theirs);
      const oursCommit = ours ? await db.readCommit(ours) : null;
      const policy = override ?? (await core.policyAt(ctx.head.tree));
      const base = ours ? await this.virtualBase(ours, theirs, ctx.batch, ctx) : null;
      const merged = await mergeTrees(
        db,
        {
          base,
          ours: ctx.head.tree,
          theirs: theirsCommit.tree,
          oursTime: oursCommit?.committer.timestamp ?? 0,
          theirsTime: theirsCommit.committer.timestamp,
        },
        { policy, batch: ctx.batch },
      );
      if (merged.conflicts.length > 0) {
        const n = merged.conflicts.length;
        throw conflict(
          `merging ${from} into ${into}: ${n} conflicting key${n === 1 ? '' : 's'}; nothing was written`,
          merged.conflicts,
        );
      }
      const parents = ours ? [ours, theirs] : [theirs];
      const tree = merged.editor.write(ctx.batch, ctx.trees);
      const head = ctx.commit(
        tree,
        parents,
        commitMessage(`merge ${from} into ${into}`, options.message),
        ...core.signatures(options),
      );
      return { head, result: { commit: head.commit!, outcome: 'merged' as const } };
    });
  }

  /**
   * The tree to merge against: the merge base, or for criss-cross histories (several bases) a virtual one made by
   * merging the bases themselves, recursively, keeping the older value where they disagree. Unrelated histories
   * merge against the empty tree.
   */
  private async virtualBase(
    a: string,
    b: string,
    batch: ObjectBatch,
    ctx: WriteContext,
    depth = 0,
  ): Promise<string | null> {
    const { db } = this.core;
    const read = (o: string) => db.readCommit(o);
    const bases = await mergeBases(read, a, b);
    if (bases.length === 0) return depth === 0 ? this.forkBeforeCompaction(a, b) : null;
    let tree = (await read(bases[0]!)).tree;
    for (const other of bases.slice(1)) {
      if (depth > 8) break; // pathological histories: merging against one base is still a sound answer
      const under = await this.virtualBase(bases[0]!, other, batch, ctx, depth + 1);
      const merged = await mergeTrees(
        db,
        { base: under, ours: tree, theirs: (await read(other)).tree, oursTime: 0, theirsTime: 0 },
        { policy: { default: 'conflict', prefixes: {} }, resolveToBase: true, batch },
      );
      tree = merged.editor.write(batch, ctx.trees);
      db.remember(batch, ctx.trees, new Map());
    }
    return tree;
  }

  /**
   * Histories with no common commit may have had one before a compaction rewrote one side: the newest commit of either
   * side that a compaction map lists was on the compacted branch, so it is where they forked (or last merged). Its
   * tree is the merge base. Null when there is none (unrelated histories, or a fork older than the maps remember).
   */
  private async forkBeforeCompaction(a: string, b: string): Promise<string | null> {
    const { db, refs, maps } = this.core;
    if ((await refs.list(MAP_REF_PREFIX)).size === 0) return null;
    const rewritten = await maps.rewrote();
    let best: Commit | null = null;
    for (const head of [b, a]) {
      const seen = new Set<string>();
      const stack = [head];
      for (let steps = 0; stack.length > 0 && steps < 100_000; steps++) {
        const id = stack.pop()!;
        if (seen.has(id)) continue;
        seen.add(id);
        const c = await db.readCommit(id).catch(() => null);
        if (!c || (best && c.committer.timestamp < best.committer.timestamp)) continue;
        if (rewritten(id)) best = c;
        else stack.push(...c.parents);
      }
    }
    return best?.tree ?? null;
  }
}
