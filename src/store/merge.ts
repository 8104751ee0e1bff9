import { createHash } from 'node:crypto';
import { type Conflict, conflict, invalidArgument } from '../errors.js';
import { MAP_REF_PREFIX } from '../history/compaction-map.js';
import { MERGE_CONFIG_KEY, type MergePolicy, parsePolicy, policyFromFile } from '../merge/config.js';
import { LastChanges } from '../merge/last-change.js';
import { isAncestor, mergeBases } from '../merge/merge-base.js';
import { compareValues } from '../merge/strategies.js';
import { type LastChangeTimes, mergeTrees, type TreeMerge } from '../merge/three-way.js';
import type { ObjectBatch } from '../objects/batch.js';
import type { Commit, Signature } from '../objects/commit.js';
import { Lru } from '../objects/lru.js';
import { checkBranchName, checkMessage } from '../tree/keys.js';
import { commitMessage, type StoreCore } from './core.js';
import type { MergeOptions, MergePreview, MergeResult } from './types.js';
import type { WriteContext } from './writer.js';

/** Who makes deterministic merges: a fixed identity, so that every replica makes the same commit. */
export const DETERMINISTIC_IDENTITY = { name: 'gitstore', email: 'replication@gitstore' } as const;

const sameBytes = (a: Uint8Array | null, b: Uint8Array | null) => compareValues(a, b) === 0;

/**
 * Applies a person's resolutions to a merge's conflicts: each resolved key takes the value given (null: deleted).
 * A resolution must name a key that conflicts now: one that does not means the branches moved since the person
 * looked, and the merge is refused (CONFLICT) rather than overwrite a key without a conflict to decide.
 */
async function resolveConflicts(
  merged: TreeMerge,
  resolutions: MergeOptions['resolutions'],
  batch: ObjectBatch,
): Promise<Conflict[]> {
  if (!resolutions) return merged.conflicts;
  const keys = Object.keys(resolutions);
  const conflicting = new Set(merged.conflicts.map((c) => c.key));
  const stale = keys.filter((k) => !conflicting.has(k));
  if (stale.length > 0) {
    throw conflict(
      `resolutions for keys that do not conflict now: ${stale.slice(0, 10).join(', ')}; look at the merge again`,
      merged.conflicts,
    );
  }
  for (const key of keys) {
    const value = resolutions[key];
    const segments = key.split('/');
    if (value === null || value === undefined) {
      if (await merged.editor.get(segments)) await merged.editor.delete(segments, false);
    } else {
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
      await merged.editor.set(segments, batch.add('blob', bytes));
    }
  }
  return merged.conflicts.filter((c) => !(c.key in resolutions));
}

/** Merges of pairs of bases one merge may make to build its virtual base (see makeVirtual). */
const VIRTUAL_BUDGET = 5000;

/**
 * What one merge reads commits through: the repository's commits, plus the virtual commits that stand for the merged
 * bases of a criss-cross (never written). Last-writer-wins walks both, through one cache for the whole merge.
 */
class MergeRun {
  private readonly virtual = new Map<string, Commit>();
  /** Virtual bases made so far, by pair: a criss-cross history meets the same pairs again and again. */
  readonly pairs = new Map<string, Promise<string | null>>();
  /** Pairs of bases merged in all; past VIRTUAL_BUDGET, a base is used as it is. */
  merged = 0;
  private readonly lastChanges: LastChanges;

  constructor(
    private readonly core: StoreCore,
    readonly ctx: WriteContext,
    readonly override: MergePolicy | undefined,
  ) {
    this.lastChanges = new LastChanges(core.db, async (id) => {
      const c = await this.read(id);
      return { tree: c.tree, parents: c.parents, time: c.committer.timestamp };
    });
  }

  readonly read = (id: string): Promise<Commit> => {
    const v = this.virtual.get(id);
    return v ? Promise.resolve(v) : this.core.db.readCommit(id);
  };

  /**
   * A virtual commit of `tree` merging `parents`, dated as a deterministic merge of them is. Named after what it is
   * made of, so that the same virtual commit has the same name in every merge, and StoreMerges.bases can remember the
   * bases made over it from one merge to the next.
   */
  async addVirtual(tree: string, parents: string[]): Promise<string> {
    const times = await Promise.all(parents.map(async (p) => (await this.read(p)).committer.timestamp));
    const who: Signature = { ...DETERMINISTIC_IDENTITY, timestamp: Math.max(...times), timezoneOffset: 0 };
    const id = `virtual:${createHash('sha1')
      .update(`${tree} ${parents.join(' ')}`)
      .digest('hex')}`;
    this.virtual.set(id, { tree, parents, author: who, committer: who, message: 'virtual merge base\n' });
    return id;
  }

  /** When the commits (real or virtual) `ours` and `theirs` last changed each key. */
  times(ours: string, theirs: string): LastChangeTimes {
    return async (keys) => {
      const o = await this.lastChanges.times(ours, keys);
      const t = await this.lastChanges.times(theirs, keys);
      return new Map(keys.map((k) => [k, { ours: o.get(k) ?? 0, theirs: t.get(k) ?? 0 }]));
    };
  }
}

/** Merging branches (and any revision) into a branch, per key, with the repository's strategies. */
export class StoreMerges {
  /**
   * Virtual bases made by earlier merges, by pair (and policy override): replicas merging each other all the time
   * meet the same pairs of bases merge after merge, and making them again was most of a replica's CPU (measured:
   * ~80 pair merges and ~400 ancestry walks for each merge, three replicas at 20 writes/s each). A tree here was
   * written with its merge; one whose merge wrote nothing (a conflict), or that gc pruned since, is made again.
   */
  private readonly bases = new Lru<string, string>(20_000);

  constructor(private readonly core: StoreCore) {}

  /**
   * Merges `from` (a branch or any revision) into `into`: three-way per key, strategies per prefix from the target's
   * `.store/merge.json` unless `strategy` overrides them. CONFLICT (with `data.conflicts`) writes nothing. With
   * `deterministic`, the result depends on the two heads only (see MergeOptions.deterministic).
   */
  merge(from: string, options: MergeOptions = {}): Promise<MergeResult> {
    return this.run(from, options, false) as Promise<MergeResult>;
  }

  /**
   * What `merge` would do, written nowhere: its outcome and, on conflict, each conflicting key with its three values
   * (base, ours, theirs), for a person to resolve and merge again with `resolutions`.
   */
  preview(from: string, options: MergeOptions = {}): Promise<MergePreview> {
    return this.run(from, options, true) as Promise<MergePreview>;
  }

  private async run(from: string, options: MergeOptions, preview: boolean): Promise<MergeResult | MergePreview> {
    const { core } = this;
    const { db } = core;
    const into = checkBranchName(options.into ?? core.defaultBranch);
    checkMessage(options.message);
    const override = options.strategy === undefined ? undefined : parsePolicy(options.strategy, 'the strategy option');
    const deterministic = options.deterministic === true;
    if (deterministic && (options.author || options.committer)) {
      throw invalidArgument('a deterministic merge is always made by the store itself; give no author or committer');
    }
    return core.write<MergeResult | MergePreview>(
      into,
      async (ctx) => {
        const theirs = await core.resolve(from, into);
        const ours = ctx.head.commit;
        if (from === into) throw invalidArgument(`cannot merge ${into} into itself; name another branch or revision`);
        const unchanged = (
          outcome: MergePreview['outcome'],
          conflicts: MergePreview['conflicts'] = [],
          violations: MergePreview['violations'] = [],
        ) => ({ head: ctx.head, result: { outcome, ours, theirs, conflicts, violations } });
        // What the branch's schemas would make of the merged tree: a preview answers it rather than throwing.
        const violations = (tree: string) => core.schemas.violationsOfMove(ctx.head.tree, tree, options.force);
        if (ours && (await isAncestor((o) => db.readCommit(o), theirs, ours))) {
          if (preview) return unchanged('up-to-date');
          return { head: ctx.head, result: { commit: ours, outcome: 'up-to-date' as const } };
        }
        const canFastForward = ours === null || (await isAncestor((o) => db.readCommit(o), ours, theirs));
        // A deterministic merge fast-forwards when it can: a merge commit there would make the replica still at
        // `theirs` merge it back with one more commit, and so on, round after round.
        if (options.ff || (deterministic && canFastForward)) {
          if (!canFastForward) {
            throw conflict(
              `cannot fast-forward ${into} to ${from}: the branches have diverged; merge without --ff`,
              [],
            );
          }
          const tree = (await db.readCommit(theirs)).tree;
          if (preview) return unchanged('fast-forward', [], await violations(tree));
          return { head: { commit: theirs, tree }, result: { commit: theirs, outcome: 'fast-forward' as const } };
        }
        const theirsCommit = await db.readCommit(theirs);
        const run = new MergeRun(core, ctx, override);
        const base = ours ? await this.virtualBase(ours, theirs, run) : null;
        // A deterministic merge must not depend on which side is ours, so neither may its policy.
        const policy =
          override ??
          (deterministic
            ? await this.mergedPolicy(base, ctx.head.tree, theirsCommit.tree)
            : await core.policyAt(ctx.head.tree));
        const merged = await mergeTrees(
          db,
          {
            base,
            ours: ctx.head.tree,
            theirs: theirsCommit.tree,
            ...(ours ? { lastChanges: run.times(ours, theirs) } : {}),
          },
          { policy, batch: ctx.batch },
        );
        const conflicts = await resolveConflicts(merged, options.resolutions, ctx.batch);
        if (preview) {
          const values = (oid: string | null) => (oid === null ? Promise.resolve(null) : db.readBlob(oid));
          const withValues = await Promise.all(
            conflicts.map(async (c) => ({
              ...c,
              values: { base: await values(c.base), ours: await values(c.ours), theirs: await values(c.theirs) },
            })),
          );
          if (conflicts.length > 0) return unchanged('conflict', withValues);
          return unchanged('merged', [], await violations(merged.editor.write(ctx.batch, ctx.trees)));
        }
        if (conflicts.length > 0) {
          const n = conflicts.length;
          throw conflict(
            `merging ${from} into ${into}: ${n} conflicting key${n === 1 ? '' : 's'}; nothing was written`,
            conflicts,
          );
        }
        const tree = merged.editor.write(ctx.batch, ctx.trees);
        if (deterministic && ours) {
          const oursCommit = await db.readCommit(ours);
          const time = Math.max(oursCommit.committer.timestamp, theirsCommit.committer.timestamp);
          const who: Signature = { ...DETERMINISTIC_IDENTITY, timestamp: time, timezoneOffset: 0 };
          const parents = [ours, theirs].sort();
          const head = ctx.commit(tree, parents, commitMessage('merge', options.message), who, who);
          return { head, result: { commit: head.commit!, outcome: 'merged' as const } };
        }
        const parents = ours ? [ours, theirs] : [theirs];
        const head = ctx.commit(
          tree,
          parents,
          commitMessage(`merge ${from} into ${into}`, options.message),
          ...core.signatures(options),
        );
        return { head, result: { commit: head.commit!, outcome: 'merged' as const } };
      },
      options,
    );
  }

  /**
   * The policy of a merge that must not depend on which side is ours: the merged `.store/merge.json` — the side that
   * changed it, or the base's when both changed it differently (that key then merges by the base's rules too).
   */
  private async mergedPolicy(base: string | null, ours: string | null, theirs: string | null): Promise<MergePolicy> {
    const [b, o, t] = await Promise.all([base, ours, theirs].map((tree) => this.core.fileAt(tree, MERGE_CONFIG_KEY)));
    const merged = sameBytes(o!, t!) || sameBytes(b!, t!) ? o! : sameBytes(b!, o!) ? t! : b!;
    return policyFromFile(merged);
  }

  /**
   * The tree to merge against: the merge base, or for criss-cross histories (several bases) a virtual one, as git's
   * recursive strategy makes it: the bases (in oid order, so either side gets the same) merged with the real
   * strategies, each pair over its own (virtual) base, recursively, keeping the older value only where a key conflicts
   * there. Each merged pair is a virtual commit, so that last-writer-wins can walk through it. Unrelated histories
   * merge against the empty tree.
   */
  private virtualBase(a: string, b: string, run: MergeRun, depth = 0): Promise<string | null> {
    // Made once per pair in a run: a criss-cross history meets the same pairs of bases again and again.
    const pair = a < b ? `${a} ${b}` : `${b} ${a}`;
    let made = run.pairs.get(pair);
    if (!made) {
      made = this.rememberedBase(`${depth === 0 ? 'top' : 'under'} ${JSON.stringify(run.override)} ${pair}`, run, () =>
        this.makeVirtual(a, b, run, depth),
      );
      run.pairs.set(pair, made);
    }
    return made;
  }

  /**
   * A base an earlier merge made, if its tree is still in the repository; else `make`'s, remembered unless the run
   * went past its budget (an approximate base) or found none (which may depend on compaction maps, which change).
   */
  private async rememberedBase(key: string, run: MergeRun, make: () => Promise<string | null>): Promise<string | null> {
    const known = this.bases.get(key);
    if (known !== undefined && (await this.core.db.typeOf(known)) === 'tree') return known;
    const tree = await make();
    if (tree !== null && run.merged <= VIRTUAL_BUDGET) this.bases.set(key, tree);
    return tree;
  }

  private async makeVirtual(a: string, b: string, run: MergeRun, depth: number): Promise<string | null> {
    const { db } = this.core;
    const { ctx } = run;
    const bases = (await mergeBases(run.read, a, b)).sort();
    if (bases.length === 0) return depth === 0 ? this.forkBeforeCompaction(a, b) : null;
    let id = bases[0]!;
    let tree = (await run.read(id)).tree;
    for (const other of bases.slice(1)) {
      // Replicas that merge each other all the time make criss-cross histories many levels deep (measured: more than
      // eight levels with three replicas writing). Each pair is merged once per run; a budget bounds pathological
      // histories, where merging against one base is still a sound (if conflict-prone) answer.
      if (++run.merged > VIRTUAL_BUDGET) break;
      const under = await this.virtualBase(id, other, run, depth + 1);
      const otherTree = (await run.read(other)).tree;
      const merged = await mergeTrees(
        db,
        { base: under, ours: tree, theirs: otherTree, lastChanges: run.times(id, other) },
        {
          policy: run.override ?? (await this.mergedPolicy(under, tree, otherTree)),
          resolveToBase: true,
          batch: ctx.batch,
        },
      );
      tree = merged.editor.write(ctx.batch, ctx.trees);
      db.remember(ctx.batch, ctx.trees, new Map());
      id = await run.addVirtual(tree, [id, other]);
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
