import { invalidArgument, notFound, StoreError } from '../errors.js';
import type { Commit } from '../objects/commit.js';
import type { ObjectDb } from '../objects/db.js';
import { isOid } from '../objects/object.js';
import { firstParentAncestor } from './ancestry.js';
import { compactedSince } from './compaction.js';
import type { MapHit } from './compaction-map.js';

/** What resolving a revision needs from the store. */
export interface RevisionContext {
  db: ObjectDb;
  /** The head of a branch, or null when there is no such branch (or it has no commits). */
  branchHead(name: string): Promise<string | null>;
  /** The branch a bare time (or `HEAD`) refers to. */
  contextBranch: string;
  /** What compaction made of an old commit id (full or abbreviated), if it rewrote it. */
  compacted?(id: string): Promise<MapHit | null>;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * How to resolve a revision. `nearest: 'before'`: a time (or a commit id) inside an interval compaction collapsed —
 * whose state is not known any more, so it answers COMPACTED — reads the kept snapshot at or before it instead. The
 * caller learns which commit that was (and so its time) from what the read returns.
 */
export interface ResolveOptions {
  nearest?: 'before';
}

/** Where a read looks: a branch's head, or a revision (`at`), resolved with {@link ResolveOptions}. */
export interface ReadAt extends ResolveOptions {
  branch?: string;
  at?: string;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Whether a string is an ISO time (a date, or a date and time with an optional zone). */
export const isIsoTime = (s: string): boolean => ISO_TIME.test(s) && !Number.isNaN(Date.parse(s));

/**
 * Resolves a revision to a commit id. Understood: a branch name, `HEAD`, a commit id or an abbreviation of at least
 * four hex digits, an ISO time (the last commit at or before it on the context branch), `<branch>@{<time>}`, each
 * optionally followed by `~N` (N first parents back) and `^N` (the N-th parent) steps, as in git.
 */
export async function resolveRevision(
  ctx: RevisionContext,
  rev: string,
  options: ResolveOptions = {},
): Promise<string> {
  if (typeof rev !== 'string' || rev.trim() === '') throw invalidArgument('a revision may not be empty');
  if (options.nearest !== undefined && options.nearest !== 'before') {
    throw invalidArgument(
      `nearest is "before" (the kept snapshot at or before), not ${JSON.stringify(options.nearest)}`,
    );
  }
  const nearest = options.nearest === 'before';
  const m = /^([^~^]*)((?:[~^]\d*)*)$/.exec(rev.trim());
  if (!m)
    throw invalidArgument(
      `cannot parse revision ${JSON.stringify(rev)}; use a branch, a commit id, branch~N or an ISO time`,
    );
  let oid = await resolveBase(ctx, m[1]!, rev, nearest);
  let sofar = m[1]!;
  for (const step of m[2]!.match(/[~^]\d*/g) ?? []) {
    const n = step.length > 1 ? Number(step.slice(1)) : 1;
    if (!Number.isSafeInteger(n)) throw invalidArgument(`${step} in ${rev} is not a number of commits`);
    if (step[0] === '~') {
      const found = n === 0 ? { commit: oid } : await firstParentAncestor(ctx.db, oid, n);
      if ('length' in found) {
        const commits = `${found.length} commit${found.length === 1 ? '' : 's'}`;
        throw new StoreError(
          'NOT_FOUND',
          `revision ${rev} not found — history has only ${commits} from ${sofar || 'HEAD'}` +
            (found.length > 1 ? `, so ${sofar || 'HEAD'}~${found.length - 1} is the first` : ''),
          { kind: 'revision', name: rev, commits: found.length },
        );
      }
      oid = found.commit;
    } else if (n > 0) {
      oid = await parentOf(ctx, oid, n - 1, rev);
    }
    sofar += step;
  }
  return oid;
}

async function parentOf(ctx: RevisionContext, oid: string, index: number, rev: string): Promise<string> {
  const parent = (await ctx.db.readCommit(oid)).parents[index];
  if (!parent) throw notFound('revision', rev, 'history does not go back that far');
  return parent;
}

async function resolveBase(ctx: RevisionContext, base: string, rev: string, nearest: boolean): Promise<string> {
  const at = /^(.*)@\{(.+)\}$/.exec(base);
  if (at) return atTime(ctx, at[1] || ctx.contextBranch, at[2]!, rev, nearest);
  if (isIsoTime(base)) return atTime(ctx, ctx.contextBranch, base, rev, nearest);
  const branch = base === 'HEAD' || base === '' ? ctx.contextBranch : base;
  const head = await ctx.branchHead(branch).catch(() => null);
  if (head) return head;
  if (/^[0-9a-f]{4,40}$/i.test(base)) {
    const hit = await ctx.compacted?.(base.toLowerCase());
    if (hit?.kind === 'kept') return hit.to;
    // A dropped commit's state is gone; the kept snapshot at or before its time is on its branch.
    if (hit && nearest) return atTime(ctx, hit.branch, iso(hit.time), rev, nearest);
    if (hit) {
      const snapshot = await ctx.db.readCommit(hit.to).catch(() => null);
      const when = snapshot ? ` of ${iso(snapshot.committer.timestamp)}` : '';
      throw new StoreError(
        'COMPACTED',
        `commit ${hit.old.slice(0, 12)} (${iso(hit.time)}) was dropped by compaction of ${hit.branch}; its changes ` +
          `are in the snapshot ${hit.to.slice(0, 12)}${when}: read at that commit, or at a time`,
        { revision: rev, snapshot: hit.to, branch: hit.branch },
      );
    }
    const oid = isOid(base.toLowerCase()) ? base.toLowerCase() : await ctx.db.expand(base.toLowerCase());
    const type = oid ? await ctx.db.typeOf(oid) : null;
    // Anything else is "no such revision", not "a blob": that would tell whether some value anywhere has that hash.
    if (type === 'commit') return oid!;
  }
  throw notFound('revision', rev, 'give a branch name, a commit id, branch~N or an ISO time');
}

/**
 * The last commit on `branch`'s first-parent chain whose commit time is at or before `time`; when `time` lies inside
 * an interval compaction collapsed, COMPACTED — or with `nearest`, that commit all the same: the kept snapshot at or
 * before it.
 */
async function atTime(
  ctx: RevisionContext,
  branch: string,
  time: string,
  rev: string,
  nearest: boolean,
): Promise<string> {
  const when = Date.parse(time);
  if (Number.isNaN(when)) throw invalidArgument(`${time} is not a time; use ISO 8601, e.g. 2026-11-29T18:00:00Z`);
  let oid = await ctx.branchHead(branch);
  if (!oid) throw notFound('branch', branch);
  let newer: { id: string; commit: Commit } | null = null;
  for (;;) {
    const commit = await ctx.db.readCommit(oid);
    if (commit.committer.timestamp * 1000 <= when) {
      if (newer && !nearest) inGap(newer, when, rev, { id: oid, commit });
      return oid;
    }
    const parent = commit.parents[0];
    if (!parent) {
      if (!nearest) inGap({ id: oid, commit }, when, rev, null);
      throw notFound(
        'revision',
        rev,
        `${branch} has no ${nearest ? 'kept ' : ''}commit at or before ${time}; its first is ` +
          `${oid.slice(0, 12)} of ${iso(commit.committer.timestamp)}`,
      );
    }
    newer = { id: oid, commit };
    oid = parent;
  }
}

/**
 * COMPACTED when `when` falls among commits a snapshot absorbed: the state then is not known any more, only the
 * kept snapshots around it (never a silent answer from the wrong time).
 */
function inGap(
  after: { id: string; commit: Commit },
  when: number,
  rev: string,
  before: { id: string; commit: Commit } | null,
): void {
  const since = compactedSince(after.commit);
  if (since === null || when < since * 1000) return;
  const kept = [before, after]
    .filter((c) => c !== null)
    .map((c) => `${c.id.slice(0, 12)} (${iso(c.commit.committer.timestamp)})`)
    .join(' and ');
  throw new StoreError(
    'COMPACTED',
    `the state at ${rev} was compacted away; the nearest kept snapshot${before ? 's are' : ' is'} ${kept}: read at one`,
    { revision: rev, snapshot: after.id, before: before?.id ?? null },
  );
}
