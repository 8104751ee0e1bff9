import type { Conflict, Violation } from '../errors.js';
import type { KeyPredicate, Verdict } from '../history/bisect.js';
import type { CommitInfo, Identity } from '../history/commit-info.js';
import type { Change } from '../history/diff.js';
import type { ReadAt } from '../history/revision.js';
import type { MergePolicy } from '../merge/config.js';
import type { StrategyName } from '../merge/strategies.js';
import type { GcResult as PackGcResult, PruneResult } from '../objects/maintenance.js';
import type { RefUpdate, RemoteInfo, TransferOptions } from '../remote/types.js';
import type { FsLike } from '../storage/fs.js';
import type { JournalOptions } from '../storage/journal.js';
import type { ListEntry } from '../tree/editor.js';
import type { Precondition } from './precondition.js';

/* The store's option and result types: what callers pass and get back (the facade, its facets and StoreClient). */

/** How current a read must be: see StoreCore.head. */
export type Consistency = 'linearizable' | 'cached';

/** How to open a store. */
export interface OpenOptions {
  /** The file system: node's `fs` module, or a memfs volume's `fs`. Omit with `memory: true`. */
  fs?: FsLike;
  /** The bare repository's directory (default `store.git`). */
  dir?: string;
  /** A fresh in-memory store (memfs), for tests and throw-away work. */
  memory?: boolean;
  /** Create the repository when it does not exist (default false: NOT_FOUND); `'new'` also refuses an existing one. */
  create?: boolean | 'new';
  /** The default branch of a repository created here (default `main`). */
  defaultBranch?: string;
  /** Author of commits whose caller names none. */
  author?: Identity;
  /** The clock commits are dated by (default: real time). */
  clock?: () => Date;
  /** fsync before acknowledging (default true). Turn off only for stores you can lose. */
  durable?: boolean;
  /**
   * How a durable write is made durable (docs/ARCHITECTURE.md, "The journal"):
   * - `journal` (the default): one fdatasync of this process's write-ahead journal per batch; packs and refs are
   *   made durable at checkpoints, and replayed from the journal by the next process to open the repository if a
   *   power cut took them;
   * - `sync`: the pack, its directory and the ref are fsynced per batch, and no journal is kept: for a process that
   *   opens the store, writes once and closes it, as the CLI does, where making, checkpointing and removing the
   *   journal's segments costs more than it saves (measured: 21 against 32 ms; README, "Figures").
   */
  durability?: 'journal' | 'sync';
  /** The journal's segment size and checkpoint interval (journal.ts). */
  journal?: JournalOptions;
  /**
   * How current reads are (default `linearizable`: every write acknowledged before a read began, by any process, is
   * in it, for one `stat` of the ref). `cached` reads may miss the last `refreshMs` of other processes' writes.
   * A read can ask for either.
   */
  consistency?: Consistency;
  /** With `cached` reads: how stale the cached head may be before a read checks the ref file again (default 10 ms). */
  refreshMs?: number;
  /** Largest value accepted, in bytes (default 16 MiB). */
  maxValueBytes?: number;
  /** How long a write waits for one holder of a ref lock to let go (default 10 s; six times that in all). */
  lockTimeoutMs?: number;
  /**
   * A ref lock of unknown owner (plain git's, another machine's) older than this was left by a crashed writer and is
   * removed (default 30 s). A lock of a dead store process of this machine is removed at once (storage/leftovers.ts).
   */
  staleLockMs?: number;
  /** An open transaction unused for this long is aborted and its ref removed (default 60 s). */
  transactionIdleMs?: number;
  /** Open transactions one client may hold (default 1,000); past it, QUOTA. */
  maxTransactionsPerClient?: number;
  /** How long a transaction's writes live in memory only before its ref (refs/store/tx/<id>) shows them (50 ms). */
  transactionRefDelayMs?: number;
  /** How often watched branches' refs are checked for changes made by other processes or git (default 20 ms). */
  watchPollMs?: number;
  /**
   * Compaction prunes only packs older than this (default 60 s): another process may have written a pack and not yet
   * moved its ref (it can wait up to `lockTimeoutMs` for the lock). Objects this process holds are always kept.
   */
  pruneGraceMs?: number;
  /** How many rewritten commits a branch's compaction map remembers (default 10,000); older ids become NOT_FOUND. */
  compactionMapLimit?: number;
}

/**
 * Where and how a read looks: a branch (default: the default branch), a revision (`at`, with `nearest: 'before'`
 * for the kept snapshot at or before a compacted time), a consistency.
 */
export interface ReadOptions extends ReadAt {
  consistency?: Consistency;
}

/** Options every write takes. */
export interface WriteOptions {
  branch?: string;
  /** A message to add below the generated first line. */
  message?: string;
  author?: Identity;
  /** Who made the commit (git's committer); default: the author's name and email, dated at the time of writing. */
  committer?: Identity;
  /**
   * Change the branch's schemas (`.store/schema.json`, `.store/schemas/`) even though values already stored break
   * the new ones; the values this write itself sets are still checked. Over HTTP, for admins only.
   */
  force?: boolean;
}

export type { Precondition };

export type Value = Uint8Array | string;
export type { ListEntry };

/** A committed transaction: the branch's new head and how the transaction got there. */
export interface TransactionResult {
  commit: string | null;
  /** `empty`: the transaction changed nothing on the branch (no commit; `commit` is the head). */
  outcome: 'fast-forward' | 'merged' | 'empty';
}

/** One change of a batch. */
export type BatchOp =
  | ({ op: 'set'; key: string; value: Value } & Precondition)
  | ({ op: 'delete'; key: string; recursive?: boolean } & Precondition);

export interface SetResult {
  commit: string;
  key: string;
  oid: string;
  created: boolean;
  /** False when the key already had this value: no commit was made and `commit` is the branch's head. */
  changed: boolean;
}

/**
 * What a write that may change nothing answers: the new commit, or — when the tree came out as it was (a batch that
 * sets what is there) — no commit, `changed: false` and the branch's current head, as Irmin does with `allow_empty`
 * off. An empty commit would only add noise to history, blame and bisect.
 */
export interface WriteResult {
  commit: string;
  changed: boolean;
}

export interface BranchInfo {
  name: string;
  head: string;
  default: boolean;
}

export interface MergeOptions extends WriteOptions {
  /** The branch merged into (default: the default branch). */
  into?: string;
  /** A strategy for every key, or a policy, instead of the repository's `.store/merge.json`. */
  strategy?: StrategyName | MergePolicy;
  /** Move the branch to `from` without a merge commit when it has not diverged (fails otherwise). */
  ff?: boolean;
  /**
   * Make the result depend on the two heads only, so replicas merging each other converge on one commit: it
   * fast-forwards when it can; a merge commit has its parents in oid order, author and committer `gitstore
   * <replication@gitstore>` dated at the newer parent's committer time (+0000), and the message `merge` (then
   * `message`, if given; no branch names); the strategies come from the merged `.store/merge.json` (the side that
   * changed it, or the base's), not from the target's. `author` and `committer` are refused.
   */
  deterministic?: boolean;
  /**
   * A person's decisions for keys the merge cannot decide: the value each takes (null: deleted). Each must name a key
   * that conflicts (see StoreMerges.preview); a key that no longer does makes the merge a CONFLICT.
   */
  resolutions?: Record<string, Uint8Array | string | null>;
}

/** What a merge would do (Store.mergePreview): nothing is written. */
export interface MergePreview {
  outcome: MergeResult['outcome'] | 'conflict';
  /** The two heads it looked at (ours null: the branch is new). */
  ours: string | null;
  theirs: string;
  /** The keys it cannot decide, with their three values (null: no value there). */
  conflicts: (Conflict & { values: { base: Uint8Array | null; ours: Uint8Array | null; theirs: Uint8Array | null } })[];
  /** What the merged tree breaks of the branch's schemas: a merge that would be refused as INVALID_VALUE. */
  violations: Violation[];
}

export interface MergeResult {
  /** The branch's new head. */
  commit: string;
  /** `merged`: a merge commit; `fast-forward`: the branch moved to `from`; `up-to-date`: nothing to do. */
  outcome: 'merged' | 'fast-forward' | 'up-to-date';
}

/** A bisection's answer: the first bad commit and its changes, the snapshots tested, commits skipped in doubt. */
export interface BisectResult {
  firstBad: CommitInfo;
  changes: Change[];
  tested: { commit: string; verdict: Verdict }[];
  candidates: string[];
  /** With `invalid`: what the first bad commit's tree breaks of today's schemas. */
  violations?: Violation[];
}

/** What `gc` did: packs and bytes of the pack directory before and after, objects kept, and the time it took. */
export interface GcResult extends PackGcResult {
  ms: number;
}

/** How to bisect: the good end, the bad end (default: the branch head), and a key predicate or a test. */
export interface BisectOptions {
  /** The good end; with `invalid` it may be left out (the first commit of the history). */
  good?: string;
  bad?: string;
  branch?: string;
  predicate?: KeyPredicate;
  test?: (commit: string) => Promise<Verdict>;
  /** Bad where the tree breaks the schemas the branch head declares today (`store bisect --invalid`). */
  invalid?: boolean;
  onProgress?: (stepsLeft: number, inDoubt: number) => void;
}

/** How to compact a branch. */
export interface CompactOptions {
  branch?: string;
  /** The tiers, as in `.store/retention.json` (an array, or its JSON text); default: the branch's file. */
  policy?: unknown;
  /** Only say what would be kept and how much space would be freed. */
  dryRun?: boolean;
  /** Called with what compaction is doing, for progress lines. */
  onProgress?: (step: string) => void;
}

/** What a compaction did (or, with `dryRun`, would do). */
export interface CompactResult {
  branch: string;
  dryRun: boolean;
  /** The head before, and after (the same in a dry run or when nothing changed). */
  before: string | null;
  head: string | null;
  /** First-parent commits before. */
  commits: number;
  /** Commits kept: the recent ones as they are, plus one snapshot per interval (listed with their old ids). */
  kept: number;
  recent: number;
  snapshots: { commit: string; time: string }[];
  dropped: number;
  /** Unreachable objects removed (would be removed) and their stored bytes. */
  pruned: PruneResult;
  /** The pack directory's size before and after. */
  bytesBefore: number;
  bytesAfter: number;
  ms: number;
}

// ---- remotes (src/store/remotes.ts, src/remote/) ----------------------------------------------------------------

export type { FetchResult, Progress, PushResult, RefUpdate, RemoteInfo, TransferOptions } from '../remote/types.js';

/** How to fetch: progress callbacks and a timeout (default 120 s). */
export type FetchOptions = TransferOptions;

/** How to pull: the branch (default: the default branch), and the merge's options (see MergeOptions). */
export interface PullOptions
  extends TransferOptions,
    Pick<MergeOptions, 'strategy' | 'message' | 'author' | 'committer' | 'force'> {
  branch?: string;
  /** Passed to the merge (deterministic merges for replicas). */
  deterministic?: boolean;
}

/**
 * What a pull did: the tracking ref it fetched (empty when it had not moved) and the merge into the branch —
 * `fast-forward` when the branch had nothing of its own, `merged`, or `up-to-date`.
 */
export interface PullResult {
  remote: string;
  branch: string;
  fetched: RefUpdate[];
  merge: MergeResult;
}

/** How to push: the branch (default: the default branch); `force` replaces the remote's branch even if it diverged. */
export interface PushOptions extends TransferOptions {
  branch?: string;
  force?: boolean;
}

/** How to clone: where the store opens (as openStore: `fs` is node's), progress and a timeout. */
export interface CloneOptions extends TransferOptions, Omit<OpenOptions, 'dir' | 'create' | 'memory'> {}

/** The remotes of a store, kept in its repository's `config` as git keeps them. */
export interface Remotes {
  /** Adds a remote (same name and URL again: no change; another URL: REMOTE_EXISTS). */
  add(name: string, url: string): Promise<RemoteInfo>;
  list(): Promise<RemoteInfo[]>;
  /** Removes a remote and its remote-tracking refs; NOT_FOUND if there is none by that name. */
  remove(name: string): Promise<void>;
}

/** A tree held against schemas (Store.validate): every value a pattern matches, checked. */
export interface ValidationReport {
  /** The commit validated (null: an unborn branch). */
  commit: string | null;
  /** The patterns of the schemas used (empty: the tree declares none). */
  patterns: string[];
  /** How many values a pattern matched, and were checked. */
  checked: number;
  valid: boolean;
  /** Every violation: the key, the JSON pointer in its value, the rule that failed. */
  violations: Violation[];
}
