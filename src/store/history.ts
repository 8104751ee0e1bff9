import { conflict, invalidArgument } from '../errors.js';
import { bisect, keyTest } from '../history/bisect.js';
import { type BlameLine, blame } from '../history/blame.js';
import { type CommitInfo, commitInfo } from '../history/commit-info.js';
import { type Change, diffRevisions } from '../history/diff.js';
import { type LogOptions, type LogPage, readLog } from '../history/log.js';
import type { ReadAt } from '../history/revision.js';
import { mergeTrees } from '../merge/three-way.js';
import { isTreeMode } from '../objects/tree.js';
import { SCHEMA_KEY } from '../schema/load.js';
import type { SchemaSet } from '../schema/schema-set.js';
import { lookup } from '../tree/editor.js';
import { checkMessage, normalizeKey, parseKey } from '../tree/keys.js';
import { commitMessage, type StoreCore } from './core.js';
import type { BisectOptions, BisectResult, WriteOptions, WriteResult } from './types.js';

/** The store's history tools: commits, log, diff, bisect, blame, and revert. */
export class StoreHistory {
  constructor(private readonly core: StoreCore) {}

  /** A commit by revision. */
  async commit(rev: string, options: { branch?: string } = {}): Promise<CommitInfo> {
    const id = await this.core.resolve(rev, options.branch);
    return commitInfo(id, await this.core.db.readCommit(id));
  }

  /** The first-parent history of a branch or revision, newest first, optionally only commits touching a key. */
  async log(options: LogOptions & { branch?: string; rev?: string } = {}): Promise<LogPage> {
    const branch = options.branch ?? this.core.defaultBranch;
    const start = options.cursor
      ? await this.core.resolve(options.cursor, branch)
      : options.rev
        ? await this.core.resolve(options.rev, branch)
        : (await this.core.head(branch)).commit;
    if (options.path !== undefined) options = { ...options, path: normalizeKey(options.path, true) };
    return readLog(this.core.db, start, options);
  }

  /** Per-key changes from one revision to another (default: to the branch head). */
  async diff(from: string, to?: string, options: { branch?: string; prefix?: string } = {}): Promise<Change[]> {
    const branch = options.branch ?? this.core.defaultBranch;
    const a = await this.core.resolve(from, branch);
    const b = to === undefined ? (await this.core.head(branch)).commit : await this.core.resolve(to, branch);
    const prefix = options.prefix === undefined ? '' : normalizeKey(options.prefix, true);
    return diffRevisions(this.core.db, a, b, prefix);
  }

  /** The per-key changes a commit made against its first parent (everything is added for a root commit). */
  async changesOf(rev: string, options: { branch?: string } = {}): Promise<Change[]> {
    const id = await this.core.resolve(rev, options.branch);
    return diffRevisions(this.core.db, (await this.core.db.readCommit(id)).parents[0] ?? null, id);
  }

  /**
   * Finds the first commit on the first-parent history from `bad` (default: the branch head) after `good` where the
   * predicate holds — a key equals a value, matches a regular expression, or is missing — or, with `test`, where
   * `test` says so (0 good, 125 skip, other exit codes bad, as for `git bisect run`). O(log n) snapshots are read.
   */
  async bisect(options: BisectOptions): Promise<BisectResult> {
    const { db, schemas } = this.core;
    const branch = options.branch ?? this.core.defaultBranch;
    const bad =
      options.bad === undefined ? (await this.core.head(branch)).commit! : await this.core.resolve(options.bad, branch);
    let test = options.test;
    let todays: SchemaSet | null = null;
    if (options.invalid) {
      // Today's schemas, the branch head's: the question is when the data stopped meeting the rules in force now.
      todays = await schemas.schemasOf((await this.core.head(branch)).tree);
      if (!todays) {
        throw invalidArgument(`${branch} declares no schemas (${SCHEMA_KEY}), so no commit of it can be invalid`);
      }
      const set = todays;
      test = Object.assign(
        async (commit: string) =>
          (await schemas.validate(commit, (await db.readCommit(commit)).tree, set)).valid ? 'good' : ('bad' as const),
        { condition: `the tree breaks today's schemas of ${branch}` },
      );
    } else if (!test) {
      if (!options.predicate) throw invalidArgument('bisect needs a key predicate, a test to run, or --invalid');
      const segments = normalizeKey(options.predicate.key).split('/');
      test = keyTest(options.predicate, async (commit) => {
        const entry = await lookup(db, (await db.readCommit(commit)).tree, segments);
        return entry && !isTreeMode(entry.mode) ? db.readBlob(entry.oid) : null;
      });
    }
    if (options.good === undefined && !options.invalid) throw invalidArgument('bisect needs a good revision (--good)');
    // With --invalid the good end may be left out: the first commit of the history (null), before anything went wrong.
    const good = options.good === undefined ? null : await this.core.resolve(options.good, branch);
    const outcome = await bisect(db, good, bad, test, options.onProgress, {
      good: options.good ?? 'the first commit',
      bad: options.bad ?? branch,
    });
    const commit = await db.readCommit(outcome.firstBad);
    return {
      firstBad: commitInfo(outcome.firstBad, commit),
      changes: await diffRevisions(db, commit.parents[0] ?? null, outcome.firstBad),
      tested: outcome.tested,
      candidates: outcome.candidates,
      ...(todays ? { violations: (await schemas.validate(outcome.firstBad, commit.tree, todays)).violations } : {}),
    };
  }

  /** For each key at or below `prefix` (default: all) on a branch or revision, the last commit that changed it. */
  async blame(prefix = '', options: ReadAt = {}): Promise<BlameLine[]> {
    const segments = parseKey(prefix, true);
    const { commit } = await this.core.treeAt(options.branch, options.at, undefined, options.nearest);
    if (!commit) return [];
    return blame(this.core.db, commit, segments);
  }

  /** Undoes one commit's changes (against its first parent) as a new commit `revert <id>`; CONFLICT if later
   * commits changed the same keys since. */
  async revert(rev: string, options: WriteOptions = {}): Promise<WriteResult> {
    const { db } = this.core;
    checkMessage(options.message);
    const branch = options.branch ?? this.core.defaultBranch;
    const id = await this.core.resolve(rev, branch);
    const target = await db.readCommit(id);
    const parentTree = target.parents[0] ? (await db.readCommit(target.parents[0])).tree : null;
    const subject = `revert ${id}`;
    const body = [`Reverts "${target.message.split('\n', 1)[0]}".`, options.message?.trim()]
      .filter(Boolean)
      .join('\n\n');
    return this.core.write(
      branch,
      async (ctx) => {
        const merged = await mergeTrees(
          db,
          { base: target.tree, ours: ctx.head.tree, theirs: parentTree, oursTime: 0, theirsTime: 0 },
          { policy: { default: 'conflict', prefixes: {} }, batch: ctx.batch },
        );
        if (merged.conflicts.length > 0) {
          throw conflict(`cannot revert ${id.slice(0, 12)}: later commits changed the same keys`, merged.conflicts);
        }
        const tree = merged.editor.write(ctx.batch, ctx.trees);
        const { head, changed } = this.core.commitTree(ctx, tree, commitMessage(subject, body), options);
        return { head, result: { commit: head.commit!, changed } };
      },
      options,
    );
  }
}
