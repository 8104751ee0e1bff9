import { conflict, invalidArgument, notFound, preconditionFailed, StoreError, tooLarge } from '../errors.js';
import { bisect, type KeyPredicate, keyTest, type Verdict } from '../history/bisect.js';
import { type BlameLine, blame } from '../history/blame.js';
import { type CommitInfo, commitInfo, type Identity, signatureTime } from '../history/commit-info.js';
import {
  firstParentHistory,
  parentsOnOtherBranches,
  type RewrittenHistory,
  replay,
  rewriteHistory,
} from '../history/compaction.js';
import { CompactionMaps, DEFAULT_MAP_LIMIT, MAP_REF_PREFIX, type MapHit, reaches } from '../history/compaction-map.js';
import { type Change, diffRevisions } from '../history/diff.js';
import { type LogOptions, type LogPage, readLog } from '../history/log.js';
import { parseRetention, RETENTION_CONFIG_KEY, retentionFromFile, type Tier } from '../history/retention.js';
import { resolveRevision } from '../history/revision.js';
import { MERGE_CONFIG_KEY, type MergePolicy, parsePolicy, policyFromFile } from '../merge/config.js';
import { isAncestor, mergeBases } from '../merge/merge-base.js';
import type { StrategyName } from '../merge/strategies.js';
import { mergeTrees } from '../merge/three-way.js';
import type { Commit, Signature } from '../objects/commit.js';
import { ObjectBatch, ObjectDb, type PruneResult } from '../objects/db.js';
import { EMPTY_TREE, utf8 } from '../objects/object.js';
import { isTreeMode } from '../objects/tree.js';
import { Files, type FsLike } from '../storage/fs.js';
import { Refs } from '../storage/refs.js';
import { initRepository, isRepository, missingRepository } from '../storage/repository.js';
import { type ListEntry, listTree, lookup, TreeEditor } from '../tree/editor.js';
import { checkBranchName, normalizeKey, parseKey } from '../tree/keys.js';
import {
  staleReads,
  Transaction,
  type TransactionHost,
  type TransactionOptions,
  TX_REF_PREFIX,
  transactionConflict,
} from './transaction.js';
import { BranchFeed, eventsBetween, Watch } from './watch.js';
import { type Apply, BranchWriter, type Head, type WriteContext } from './writer.js';

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
  /** How stale the cached head may be before a read checks the ref file again (default 10 ms). */
  refreshMs?: number;
  /** Largest value accepted, in bytes (default 16 MiB). */
  maxValueBytes?: number;
  /** How long a write waits for another process's ref lock (default 10 s). */
  lockTimeoutMs?: number;
  /** A ref lock older than this was left by a crashed writer and is removed (default 30 s). */
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

/** Options every write takes. */
export interface WriteOptions {
  branch?: string;
  /** A message to add below the generated first line. */
  message?: string;
  author?: Identity;
  /** Who made the commit (git's committer); default: the author's name and email, dated at the time of writing. */
  committer?: Identity;
}

/** Compare-and-set: `ifMatch` is the blob oid the key must have; `ifNoneMatch` requires the key to be absent. */
export interface Precondition {
  ifMatch?: string;
  ifNoneMatch?: boolean;
}

export type Value = Uint8Array | string;
export type { ListEntry };

/** A committed transaction: the branch's new head and how the transaction got there. */
export interface TransactionResult {
  commit: string | null;
  outcome: 'fast-forward' | 'merged' | 'empty';
}

const DEFAULT_AUTHOR: Identity = { name: 'gitstore', email: 'gitstore@localhost' };

const toBytes = (value: Value): Uint8Array => (typeof value === 'string' ? utf8.encode(value) : value);

/** One change of a batch. */
export type BatchOp =
  | ({ op: 'set'; key: string; value: Value } & Precondition)
  | ({ op: 'delete'; key: string; recursive?: boolean } & Precondition);

export interface SetResult {
  commit: string;
  key: string;
  oid: string;
  created: boolean;
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
}

export interface MergeResult {
  /** The branch's new head. */
  commit: string;
  /** `merged`: a merge commit; `fast-forward`: the branch moved to `from`; `up-to-date`: nothing to do. */
  outcome: 'merged' | 'fast-forward' | 'up-to-date';
}

interface CachedHead extends Head {
  checkedAt: number;
}

/**
 * A store: a bare git repository seen as branches of key → value maps. Reads come from the cached head and the
 * object caches; writes go through one serial writer per branch (see writer.ts) and are durable when they resolve.
 */
export class Store {
  readonly db: ObjectDb;
  readonly refs: Refs;
  private readonly writers = new Map<string, BranchWriter>();
  private readonly heads = new Map<string, CachedHead>();
  private readonly loadingHeads = new Map<string, Promise<CachedHead>>();
  private readonly clock: () => Date;
  private readonly author: Identity;
  private readonly refreshMs: number;
  private readonly maxValueBytes: number;
  private readonly batchListeners = new Set<(event: { branch: string; writes: number }) => void>();
  private readonly transactions = new Map<string, Transaction>();
  private readonly volatileRefs: Refs;
  private readonly transactionIdleMs: number;
  private readonly maxTransactionsPerClient: number;
  private readonly transactionRefDelayMs: number;
  private sweeper: ReturnType<typeof setInterval> | null = null;
  private readonly feeds = new Map<string, BranchFeed>();
  private readonly watchPollMs: number;
  private readonly maps: CompactionMaps;
  private readonly pruneGraceMs: number;
  private readonly mapLimit: number;

  private constructor(
    readonly files: Files,
    readonly dir: string,
    readonly defaultBranch: string,
    options: OpenOptions,
  ) {
    this.db = new ObjectDb(files, dir);
    this.refs = new Refs(files, dir, {
      lockTimeoutMs: options.lockTimeoutMs ?? 10_000,
      staleLockMs: options.staleLockMs ?? 30_000,
    });
    this.clock = options.clock ?? (() => new Date());
    this.author = options.author ?? DEFAULT_AUTHOR;
    this.refreshMs = options.refreshMs ?? 10;
    this.maxValueBytes = options.maxValueBytes ?? 16 << 20;
    this.volatileRefs = new Refs(files.volatile(), dir, { lockTimeoutMs: 10_000, staleLockMs: 30_000 });
    this.transactionIdleMs = options.transactionIdleMs ?? 60_000;
    this.maxTransactionsPerClient = options.maxTransactionsPerClient ?? 1000;
    this.transactionRefDelayMs = options.transactionRefDelayMs ?? 50;
    this.watchPollMs = options.watchPollMs ?? 20;
    this.maps = new CompactionMaps(this.db, this.refs);
    this.pruneGraceMs = options.pruneGraceMs ?? 60_000;
    this.mapLimit = options.compactionMapLimit ?? DEFAULT_MAP_LIMIT;
  }

  /** Opens (or with `create`, creates) a store. */
  static async open(options: OpenOptions = {}): Promise<Store> {
    // memfs is loaded only when asked for: its import costs more than a whole CLI command should.
    const fs = options.fs ?? (options.memory ? ((await import('memfs')).memfs().fs as unknown as FsLike) : undefined);
    if (!fs) throw invalidArgument('openStore needs an `fs` (node:fs or memfs) or `memory: true`');
    const files = new Files(fs, options.durable ?? true);
    const dir = (options.dir ?? (options.memory ? '/store.git' : 'store.git')).replace(/\/+$/, '') || '/';
    const exists = await isRepository(files, dir);
    if (exists && options.create === 'new') {
      throw new StoreError('REPOSITORY_EXISTS', `a store already exists at ${dir}; use it, or pick another directory`, {
        repository: dir,
      });
    }
    if (!exists) {
      if (!options.create && !options.memory) throw missingRepository(dir);
      await initRepository(files, dir, checkBranchName(options.defaultBranch ?? 'main'));
    }
    const refs = new Refs(files, dir, { lockTimeoutMs: 0, staleLockMs: 0 });
    const defaultBranch = (await refs.headBranch()) ?? 'main';
    const store = new Store(files, dir, defaultBranch, options);
    await store.removeAbandonedTransactions();
    return store;
  }

  // ---- heads -------------------------------------------------------------------------------------------------

  private refName(branch: string) {
    return `refs/heads/${checkBranchName(branch)}`;
  }

  /** Reads a branch's head from its ref (bypassing the cache) and caches it. */
  private async loadHead(branch: string): Promise<CachedHead> {
    return this.cacheHead(branch, await this.refs.read(this.refName(branch)));
  }

  /** Caches `commit` (with its tree) as a branch's head. */
  private async cacheHead(branch: string, commit: string | null): Promise<CachedHead> {
    const head: CachedHead = {
      commit,
      tree: commit ? (await this.db.readCommit(commit)).tree : null,
      checkedAt: Date.now(),
    };
    this.heads.set(branch, head);
    return head;
  }

  /** The head readers see: cached, re-checked against the ref file at most every `refreshMs`. */
  private async head(branch: string): Promise<Head> {
    const cached = this.heads.get(branch);
    if (cached && Date.now() - cached.checkedAt < this.refreshMs) return cached;
    // Concurrent readers share one look at the ref file instead of each reading it.
    let loading = this.loadingHeads.get(branch);
    if (!loading) {
      loading = this.loadHead(branch).finally(() => this.loadingHeads.delete(branch));
      this.loadingHeads.set(branch, loading);
    }
    return this.existing(branch, await loading);
  }

  /** A branch's head commit and tree as readers see it now (cached; NOT_FOUND for a missing branch). */
  tip(branch = this.defaultBranch): Promise<Head> {
    return this.head(checkBranchName(branch));
  }

  /** A head without a commit is the unborn default branch, or a branch that does not exist: NOT_FOUND for that. */
  private existing<H extends Head>(branch: string, head: H): H {
    if (!head.commit && branch !== this.defaultBranch) {
      throw notFound('branch', branch, `create it with \`store branch ${branch}\``);
    }
    return head;
  }

  private writer(branch: string): BranchWriter {
    let w = this.writers.get(branch);
    if (!w) {
      const ref = this.refName(branch);
      w = new BranchWriter(
        this.db,
        {
          readHead: async () => this.existing(branch, await this.loadHead(branch)),
          prepareSwap: (expected, next) => this.refs.prepareSwap(ref, expected, next),
          holdRef: async () => {
            const held = await this.refs.hold(ref);
            try {
              return { ...held, head: this.existing(branch, await this.cacheHead(branch, held.current)) };
            } catch (e) {
              await held.abort();
              throw e;
            }
          },
          published: (head) => {
            this.heads.set(branch, { ...head, checkedAt: Date.now() });
            void this.feeds
              .get(branch)
              ?.poke()
              .catch(() => {});
          },
        },
        (writes) => {
          for (const listener of this.batchListeners) listener({ branch, writes });
        },
      );
      this.writers.set(branch, w);
    }
    return w;
  }

  private write<T>(branch: string | undefined, apply: Apply<T>): Promise<T> {
    return this.writer(branch ?? this.defaultBranch).submit(apply);
  }

  private signature(author: Identity | undefined, now = this.clock()): Signature {
    const who = author ?? this.author;
    if (!who.name?.trim() || /[<>\n]/.test(who.name + who.email)) {
      throw invalidArgument('an author needs a name, and neither name nor email may contain <, > or a newline');
    }
    return { name: who.name, email: who.email, ...signatureTime(who, now) };
  }

  /** Author and committer of a write: one clock reading, so an undated pair has the same time. */
  private signatures(who: { author?: Identity; committer?: Identity }): [Signature, Signature] {
    const now = this.clock();
    const author = this.signature(who.author, now);
    return [author, this.signature(who.committer ?? { name: author.name, email: author.email }, now)];
  }

  private static message(subject: string, extra?: string): string {
    return extra?.trim() ? `${subject}\n\n${extra.trim()}\n` : `${subject}\n`;
  }

  private checkSize(key: string, bytes: Uint8Array) {
    if (bytes.length > this.maxValueBytes) throw tooLarge(`the value of ${key}`, bytes.length, this.maxValueBytes);
  }

  // ---- reads -------------------------------------------------------------------------------------------------

  /** The tree a read looks at: a branch head, or a revision when `at` is given. */
  private async treeAt(
    branch: string | undefined,
    at: string | undefined,
  ): Promise<{ commit: string | null; tree: string | null }> {
    const b = branch ?? this.defaultBranch;
    if (at === undefined) return this.head(b);
    const commit = await this.resolve(at, b);
    return { commit, tree: (await this.db.readCommit(commit)).tree };
  }

  /** The blob oid and commit of a key (NOT_FOUND when absent or a directory). */
  async stat(key: string, options: { branch?: string; at?: string } = {}): Promise<{ oid: string; commit: string }> {
    const segments = parseKey(key);
    const { commit, tree } = await this.treeAt(options.branch, options.at);
    const entry = await lookup(this.db, tree, segments);
    if (!entry || isTreeMode(entry.mode)) {
      throw notFound('key', segments.join('/'), entry ? 'it is a directory; list it instead' : '');
    }
    return { oid: entry.oid, commit: commit! };
  }

  /** A key's value with its blob oid and the commit it was read at. */
  async read(
    key: string,
    options: { branch?: string; at?: string } = {},
  ): Promise<{ value: Uint8Array; oid: string; commit: string }> {
    const { oid, commit } = await this.stat(key, options);
    return { value: await this.db.readBlob(oid), oid, commit };
  }

  /** A key's value as bytes. */
  async get(key: string, options: { branch?: string; at?: string } = {}): Promise<Uint8Array> {
    return this.db.readBlob((await this.stat(key, options)).oid);
  }

  /** A key's value as UTF-8 text. */
  async getText(key: string, options: { branch?: string; at?: string } = {}): Promise<string> {
    return new TextDecoder().decode(await this.get(key, options));
  }

  /** The entries below a prefix: one level, or with `recursive` every value below it. */
  async list(
    prefix = '',
    options: { branch?: string; at?: string; recursive?: boolean } = {},
  ): Promise<{ commit: string | null; entries: ListEntry[] }> {
    const segments = parseKey(prefix, true);
    const { commit, tree } = await this.treeAt(options.branch, options.at);
    return { commit, entries: await listTree(this.db, tree, segments, options.recursive ?? false) };
  }

  /** Every value below a prefix, with its bytes: the data of an export or a snapshot. */
  async snapshot(
    prefix = '',
    options: { branch?: string; at?: string } = {},
  ): Promise<{ commit: string | null; entries: { key: string; value: Uint8Array }[] }> {
    const { commit, entries } = await this.list(prefix, { ...options, recursive: true });
    const values = await Promise.all(entries.map(async (e) => ({ key: e.key, value: await this.db.readBlob(e.oid) })));
    return { commit, entries: values };
  }

  // ---- writes ------------------------------------------------------------------------------------------------

  /** Sets a key; one commit `set <key>`. */
  async set(key: string, value: Value, options: WriteOptions & Precondition = {}): Promise<SetResult> {
    const k = normalizeKey(key);
    const bytes = toBytes(value);
    this.checkSize(k, bytes);
    return this.write(options.branch, async (ctx) => {
      const editor = await TreeEditor.open(this.db, ctx.head.tree);
      const { created, oid } = await this.applyOp(editor, ctx, { op: 'set', key: k, value: bytes, ...options });
      const head = this.commitEdit(ctx, editor, Store.message(`set ${k}`, options.message), options);
      return { head, result: { commit: head.commit!, key: k, oid: oid!, created } };
    });
  }

  /** Deletes a key (a directory only with `recursive`); NOT_FOUND when absent. One commit `delete <key>`. */
  async delete(
    key: string,
    options: WriteOptions & Precondition & { recursive?: boolean } = {},
  ): Promise<{ commit: string }> {
    const k = normalizeKey(key);
    return this.write(options.branch, async (ctx) => {
      const editor = await TreeEditor.open(this.db, ctx.head.tree);
      await this.applyOp(editor, ctx, { op: 'delete', key: k, ...options });
      const head = this.commitEdit(ctx, editor, Store.message(`delete ${k}`, options.message), options);
      return { head, result: { commit: head.commit! } };
    });
  }

  /**
   * Runs `change` on the branch's head inside its writer — atomic with every other write to the branch — and makes
   * what it did to the tree one commit `message`; no commit when it changed nothing. For layers that map their own
   * operations onto keys (the Xenstore daemon). `change` may run again if another process moved the branch.
   */
  async update<T>(
    message: string,
    change: (editor: TreeEditor, batch: ObjectBatch) => Promise<T>,
    options: { branch?: string; author?: Identity } = {},
  ): Promise<{ commit: string | null; value: T }> {
    return this.write(options.branch, async (ctx) => {
      const editor = await TreeEditor.open(this.db, ctx.head.tree);
      const value = await change(editor, ctx.batch);
      const tree = editor.write(ctx.batch, ctx.trees);
      if (tree === (ctx.head.tree ?? EMPTY_TREE)) return { head: ctx.head, result: { commit: ctx.head.commit, value } };
      const parents = ctx.head.commit ? [ctx.head.commit] : [];
      const head = ctx.commit(tree, parents, Store.message(message), this.signature(options.author));
      return { head, result: { commit: head.commit, value } };
    });
  }

  /** Applies several changes as ONE commit `batch: N changes`; any failing op fails the whole batch. */
  async batch(
    ops: BatchOp[],
    options: WriteOptions & { onProgress?: (done: number, total: number) => void } = {},
  ): Promise<{ commit: string }> {
    if (!Array.isArray(ops) || ops.length === 0) throw invalidArgument('a batch needs at least one op');
    const checked = ops.map((op, i) => {
      if (op?.op !== 'set' && op?.op !== 'delete') throw invalidArgument(`op ${i}: "op" must be "set" or "delete"`);
      const key = normalizeKey(op.key);
      if (op.op === 'delete') return { ...op, key };
      const value = toBytes(op.value);
      this.checkSize(key, value);
      return { ...op, key, value };
    });
    const subject = `batch: ${ops.length} change${ops.length === 1 ? '' : 's'}`;
    return this.write(options.branch, async (ctx) => {
      const editor = await TreeEditor.open(this.db, ctx.head.tree);
      for (let i = 0; i < checked.length; i++) {
        await this.applyOp(editor, ctx, checked[i]!);
        if (options.onProgress && (i % 1000 === 999 || i === checked.length - 1))
          options.onProgress(i + 1, checked.length);
      }
      const head = this.commitEdit(ctx, editor, Store.message(subject, options.message), options);
      return { head, result: { commit: head.commit! } };
    });
  }

  private async applyOp(
    editor: TreeEditor,
    ctx: WriteContext,
    op: (BatchOp & { value?: Uint8Array }) | ({ op: 'set'; key: string; value: Uint8Array } & Precondition),
  ): Promise<{ created: boolean; oid: string | null }> {
    const segments = op.key.split('/');
    const existing = await editor.get(segments);
    const current = existing && !isTreeMode(existing.mode) ? existing.oid : null;
    if (op.ifNoneMatch && existing) throw preconditionFailed(op.key, null, current ?? 'a directory');
    if (op.ifMatch !== undefined && op.ifMatch !== current) throw preconditionFailed(op.key, op.ifMatch, current);
    if (op.op === 'delete') {
      await editor.delete(segments, op.recursive ?? false);
      return { created: false, oid: null };
    }
    const oid = ctx.batch.add('blob', op.value as Uint8Array);
    await editor.set(segments, oid);
    return { created: existing === null, oid };
  }

  private commitEdit(ctx: WriteContext, editor: TreeEditor, message: string, who: WriteOptions): Head {
    const tree = editor.write(ctx.batch, ctx.trees);
    const parents = ctx.head.commit ? [ctx.head.commit] : [];
    return ctx.commit(tree, parents, message, ...this.signatures(who));
  }

  // ---- branches ----------------------------------------------------------------------------------------------

  /** Every branch with its head. */
  async branches(): Promise<BranchInfo[]> {
    const refs = await this.refs.list('refs/heads/');
    return [...refs].map(([ref, head]) => {
      const name = ref.slice('refs/heads/'.length);
      return { name, head, default: name === this.defaultBranch };
    });
  }

  /** Creates a branch at a revision (default: the default branch's head); BRANCH_EXISTS if taken. */
  async createBranch(name: string, options: { from?: string } = {}): Promise<BranchInfo> {
    const ref = this.refName(name);
    const from = options.from ?? this.defaultBranch;
    const head = await this.resolve(from);
    if (!(await this.refs.compareAndSwap(ref, null, head))) {
      throw new StoreError('BRANCH_EXISTS', `branch ${name} already exists; pick another name or delete it first`, {
        branch: name,
      });
    }
    this.heads.delete(name);
    return { name, head, default: false };
  }

  /** Deletes a branch (never the default one). */
  async deleteBranch(name: string): Promise<void> {
    const ref = this.refName(name);
    if (name === this.defaultBranch) {
      throw new StoreError('FORBIDDEN', `${name} is the default branch and cannot be deleted`, { branch: name });
    }
    for (;;) {
      const head = await this.refs.read(ref);
      if (!head) throw notFound('branch', name);
      if (await this.refs.compareAndSwap(ref, head, null)) break;
    }
    this.heads.delete(name);
    this.writers.delete(name);
  }

  // ---- revisions and history ---------------------------------------------------------------------------------

  /** Resolves a revision (branch, commit id or prefix, `rev~N`, `rev^N`, ISO time) to a commit id. */
  resolve(rev: string, contextBranch = this.defaultBranch): Promise<string> {
    return resolveRevision(
      {
        db: this.db,
        contextBranch,
        branchHead: async (name) => (await this.loadHead(checkBranchName(name))).commit,
        compacted: (id) => this.compactedId(id),
      },
      rev,
    );
  }

  /** A commit by revision. */
  async commit(rev: string, options: { branch?: string } = {}): Promise<CommitInfo> {
    const id = await this.resolve(rev, options.branch);
    return commitInfo(id, await this.db.readCommit(id));
  }

  /** The first-parent history of a branch or revision, newest first, optionally only commits touching a key. */
  async log(options: LogOptions & { branch?: string; rev?: string } = {}): Promise<LogPage> {
    const branch = options.branch ?? this.defaultBranch;
    const start = options.cursor
      ? await this.resolve(options.cursor, branch)
      : options.rev
        ? await this.resolve(options.rev, branch)
        : (await this.head(branch)).commit;
    if (options.path !== undefined) options = { ...options, path: normalizeKey(options.path, true) };
    return readLog(this.db, start, options);
  }

  /** Per-key changes from one revision to another (default: to the branch head). */
  async diff(from: string, to?: string, options: { branch?: string; prefix?: string } = {}): Promise<Change[]> {
    const branch = options.branch ?? this.defaultBranch;
    const a = await this.resolve(from, branch);
    const b = to === undefined ? (await this.head(branch)).commit : await this.resolve(to, branch);
    const prefix = options.prefix === undefined ? '' : normalizeKey(options.prefix, true);
    return diffRevisions(this.db, a, b, prefix);
  }

  /** The per-key changes a commit made against its first parent (everything is added for a root commit). */
  async changesOf(rev: string, options: { branch?: string } = {}): Promise<Change[]> {
    const id = await this.resolve(rev, options.branch);
    return diffRevisions(this.db, (await this.db.readCommit(id)).parents[0] ?? null, id);
  }

  /**
   * Finds the first commit on the first-parent history from `bad` (default: the branch head) after `good` where the
   * predicate holds — a key equals a value, matches a regular expression, or is missing — or, with `test`, where
   * `test` says so (0 good, 125 skip, other exit codes bad, as for `git bisect run`). O(log n) snapshots are read.
   */
  async bisect(options: {
    good: string;
    bad?: string;
    branch?: string;
    predicate?: KeyPredicate;
    test?: (commit: string) => Promise<Verdict>;
    onProgress?: (stepsLeft: number, inDoubt: number) => void;
  }): Promise<BisectResult> {
    const branch = options.branch ?? this.defaultBranch;
    const good = await this.resolve(options.good, branch);
    const bad = options.bad === undefined ? (await this.head(branch)).commit! : await this.resolve(options.bad, branch);
    let test = options.test;
    if (!test) {
      if (!options.predicate) throw invalidArgument('bisect needs a key predicate or a test to run');
      const segments = normalizeKey(options.predicate.key).split('/');
      test = keyTest(options.predicate, async (commit) => {
        const entry = await lookup(this.db, (await this.db.readCommit(commit)).tree, segments);
        return entry && !isTreeMode(entry.mode) ? this.db.readBlob(entry.oid) : null;
      });
    }
    const outcome = await bisect(this.db, good, bad, test, options.onProgress);
    const commit = await this.db.readCommit(outcome.firstBad);
    return {
      firstBad: commitInfo(outcome.firstBad, commit),
      changes: await diffRevisions(this.db, commit.parents[0] ?? null, outcome.firstBad),
      tested: outcome.tested,
      candidates: outcome.candidates,
    };
  }

  /** For each key at or below `prefix` (default: all) on a branch or revision, the last commit that changed it. */
  async blame(prefix = '', options: { branch?: string; at?: string } = {}): Promise<BlameLine[]> {
    const segments = parseKey(prefix, true);
    const { commit } = await this.treeAt(options.branch, options.at);
    if (!commit) return [];
    return blame(this.db, commit, segments);
  }

  /** Undoes one commit's changes (against its first parent) as a new commit `revert <id>`; CONFLICT if later
   * commits changed the same keys since. */
  async revert(rev: string, options: WriteOptions = {}): Promise<{ commit: string }> {
    const branch = options.branch ?? this.defaultBranch;
    const id = await this.resolve(rev, branch);
    const target = await this.db.readCommit(id);
    const parentTree = target.parents[0] ? (await this.db.readCommit(target.parents[0])).tree : null;
    const subject = `revert ${id}`;
    const body = [`Reverts "${target.message.split('\n', 1)[0]}".`, options.message?.trim()]
      .filter(Boolean)
      .join('\n\n');
    return this.write(branch, async (ctx) => {
      const merged = await mergeTrees(
        this.db,
        { base: target.tree, ours: ctx.head.tree, theirs: parentTree, oursTime: 0, theirsTime: 0 },
        { policy: { default: 'conflict', prefixes: {} }, batch: ctx.batch },
      );
      if (merged.conflicts.length > 0) {
        throw conflict(`cannot revert ${id.slice(0, 12)}: later commits changed the same keys`, merged.conflicts);
      }
      const head = this.commitEdit(ctx, merged.editor, Store.message(subject, body), options);
      return { head, result: { commit: head.commit! } };
    });
  }

  // ---- merge -------------------------------------------------------------------------------------------------

  /**
   * Merges `from` (a branch or any revision) into `into`: three-way per key, strategies per prefix from the target's
   * `.store/merge.json` unless `strategy` overrides them. CONFLICT (with `data.conflicts`) writes nothing.
   */
  async merge(from: string, options: MergeOptions = {}): Promise<MergeResult> {
    const into = checkBranchName(options.into ?? this.defaultBranch);
    const override = options.strategy === undefined ? undefined : parsePolicy(options.strategy, 'the strategy option');
    return this.write<MergeResult>(into, async (ctx) => {
      const theirs = await this.resolve(from, into);
      const ours = ctx.head.commit;
      if (from === into) throw invalidArgument(`cannot merge ${into} into itself; name another branch or revision`);
      if (ours && (await isAncestor((o) => this.db.readCommit(o), theirs, ours))) {
        return { head: ctx.head, result: { commit: ours, outcome: 'up-to-date' as const } };
      }
      const canFastForward = ours === null || (await isAncestor((o) => this.db.readCommit(o), ours, theirs));
      if (options.ff) {
        if (!canFastForward) {
          throw conflict(`cannot fast-forward ${into} to ${from}: the branches have diverged; merge without --ff`, []);
        }
        const tree = (await this.db.readCommit(theirs)).tree;
        return { head: { commit: theirs, tree }, result: { commit: theirs, outcome: 'fast-forward' as const } };
      }
      const theirsCommit = await this.db.readCommit(theirs);
      const oursCommit = ours ? await this.db.readCommit(ours) : null;
      const policy = override ?? (await this.policyAt(ctx.head.tree));
      const base = ours ? await this.virtualBase(ours, theirs, ctx.batch, ctx) : null;
      const merged = await mergeTrees(
        this.db,
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
        Store.message(`merge ${from} into ${into}`, options.message),
        ...this.signatures(options),
      );
      return { head, result: { commit: head.commit!, outcome: 'merged' as const } };
    });
  }

  private async policyAt(tree: string | null): Promise<MergePolicy> {
    const entry = await lookup(this.db, tree, MERGE_CONFIG_KEY.split('/'));
    if (!entry || isTreeMode(entry.mode)) return policyFromFile(null);
    return policyFromFile(await this.db.readBlob(entry.oid));
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
    const read = (o: string) => this.db.readCommit(o);
    const bases = await mergeBases(read, a, b);
    if (bases.length === 0) return depth === 0 ? this.forkBeforeCompaction(a, b) : null;
    let tree = (await read(bases[0]!)).tree;
    for (const other of bases.slice(1)) {
      if (depth > 8) break; // pathological histories: merging against one base is still a sound answer
      const under = await this.virtualBase(bases[0]!, other, batch, ctx, depth + 1);
      const merged = await mergeTrees(
        this.db,
        { base: under, ours: tree, theirs: (await read(other)).tree, oursTime: 0, theirsTime: 0 },
        { policy: { default: 'conflict', prefixes: {} }, resolveToBase: true, batch },
      );
      tree = merged.editor.write(batch, ctx.trees);
      this.db.remember(batch, ctx.trees, new Map());
    }
    return tree;
  }

  /**
   * Histories with no common commit may have had one before a compaction rewrote one side: the newest commit of either
   * side that a compaction map lists was on the compacted branch, so it is where they forked (or last merged). Its
   * tree is the merge base. Null when there is none (unrelated histories, or a fork older than the maps remember).
   */
  private async forkBeforeCompaction(a: string, b: string): Promise<string | null> {
    if ((await this.refs.list(MAP_REF_PREFIX)).size === 0) return null;
    const rewritten = await this.maps.rewrote();
    let best: Commit | null = null;
    for (const head of [b, a]) {
      const seen = new Set<string>();
      const stack = [head];
      for (let steps = 0; stack.length > 0 && steps < 100_000; steps++) {
        const id = stack.pop()!;
        if (seen.has(id)) continue;
        seen.add(id);
        const c = await this.db.readCommit(id).catch(() => null);
        if (!c || (best && c.committer.timestamp < best.committer.timestamp)) continue;
        if (rewritten(id)) best = c;
        else stack.push(...c.parents);
      }
    }
    return best?.tree ?? null;
  }

  // ---- watches -----------------------------------------------------------------------------------------------

  /**
   * Watches a branch under a prefix: every change of every commit, including commits made by other processes and
   * by plain git. With `since`, first replays the commits after that revision. Iterate the result for events.
   */
  async watch(options: { branch?: string; prefix?: string; since?: string } = {}): Promise<Watch> {
    const branch = checkBranchName(options.branch ?? this.defaultBranch);
    const prefix = normalizeKey(options.prefix ?? '', true);
    await this.head(branch); // NOT_FOUND for a missing branch, before anything is opened
    const since = options.since === undefined ? undefined : await this.resolve(options.since, branch);
    let feed = this.feeds.get(branch);
    if (!feed) {
      const ref = this.refName(branch);
      feed = new BranchFeed(this.db, () => this.refs.read(ref), this.watchPollMs);
      this.feeds.set(branch, feed);
    }
    const { sub, head } = await feed.subscribe(prefix);
    const replay = since === undefined ? [] : await eventsBetween(this.db, since, head, prefix);
    return new Watch(feed, sub, replay, since ?? head);
  }

  // ---- transactions ------------------------------------------------------------------------------------------

  /** Begins a transaction on a branch (default: the default branch), forked from its current head. */
  async begin(options: TransactionOptions = {}): Promise<Transaction> {
    const branch = checkBranchName(options.branch ?? this.defaultBranch);
    const isolation = options.isolation ?? 'snapshot';
    if (isolation !== 'snapshot' && isolation !== 'serializable') {
      throw invalidArgument(`isolation is "snapshot" or "serializable", not ${JSON.stringify(isolation)}`);
    }
    const client = options.client ?? 'local';
    let open = 0;
    for (const tx of this.transactions.values()) if (tx.client === client) open++;
    if (open >= this.maxTransactionsPerClient) {
      throw new StoreError(
        'QUOTA',
        `${client} already has ${open} open transactions (the limit); commit or abort some first`,
        {
          client,
          limit: this.maxTransactionsPerClient,
        },
      );
    }
    const base = this.existing(branch, await this.loadHead(branch));
    const tx = new Transaction(
      this.transactionHost(),
      branch,
      isolation,
      { commit: base.commit, tree: base.tree },
      client,
      {
        validate: options.validate,
        message: options.message,
      },
    );
    this.transactions.set(tx.id, tx);
    this.sweeper ??= setInterval(
      () => this.expireTransactions(),
      Math.max(50, Math.min(this.transactionIdleMs / 2, 5000)),
    );
    this.sweeper.unref?.();
    return tx;
  }

  /** An open transaction by id; NOT_FOUND when it ended, expired, or belongs to another process. */
  transaction(id: string): Transaction {
    const tx = this.transactions.get(id);
    if (!tx) throw notFound('transaction', id, 'it was committed, aborted or expired; begin a new one');
    return tx;
  }

  /**
   * Runs `fn` in a transaction and commits it; on a conflict, runs it again on the new head, up to `retries` more
   * times (default 5). `fn` may run more than once, so it should only act through the transaction.
   */
  async withTransaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    options: TransactionOptions & { retries?: number } = {},
  ): Promise<{ value: T; commit: string | null }> {
    const retries = options.retries ?? 5;
    for (let attempt = 0; ; attempt++) {
      const tx = await this.begin(options);
      let value: T;
      try {
        value = await fn(tx);
      } catch (e) {
        await tx.abort().catch(() => {});
        throw e;
      }
      try {
        const { commit } = await tx.commit();
        return { value, commit };
      } catch (e) {
        if ((e as StoreError).code !== 'CONFLICT' || attempt >= retries) throw e;
      }
    }
  }

  private transactionHost(): TransactionHost {
    return {
      db: this.db,
      volatileRefs: this.volatileRefs,
      signature: (author) => this.signature(author),
      checkSize: (key, bytes) => this.checkSize(key, bytes),
      refDelayMs: this.transactionRefDelayMs,
      commit: (tx) => this.commitTransaction(tx),
      forget: (tx) => this.transactions.delete(tx.id),
    };
  }

  private commitTransaction(tx: Transaction): Promise<TransactionResult> {
    return this.write<TransactionResult>(tx.branch, async (ctx) => {
      const moved = ctx.head.commit !== tx.base.commit;
      const conflicts = tx.isolation === 'serializable' && moved ? await staleReads(this.db, tx, ctx.head.tree) : [];
      if (moved && tx.options.validate) conflicts.push(...(await tx.options.validate(ctx.head.tree)));
      if (tx.head.commit === tx.base.commit) {
        if (conflicts.length > 0) throw transactionConflict(tx, conflicts);
        return { head: ctx.head, result: { commit: ctx.head.commit, outcome: 'empty' as const } };
      }
      if (!moved && tx.options.message === undefined) {
        // The transaction's commits were written without fsync; the branch is about to point at them.
        ctx.batch.merge(tx.objects);
        return { head: tx.head, result: { commit: tx.head.commit, outcome: 'fast-forward' as const } };
      }
      // When compaction rewrote the branch since the transaction began, its commits lead back into the old history,
      // which pruning removes: the merge then keeps only the transaction's result (one parent), not its commits.
      const rewritten = !(await this.onFirstParentChain(tx.base.commit!, ctx.head.commit!));
      const objects = rewritten ? withoutCommits(tx.objects) : tx.objects;
      ctx.batch.merge(objects);
      const merged = await mergeTrees(
        this.db,
        { base: tx.base.tree, ours: ctx.head.tree, theirs: tx.head.tree, oursTime: 0, theirsTime: 1 },
        { policy: await this.policyAt(ctx.head.tree), batch: ctx.batch },
      ).catch((e: StoreError) => {
        if (!rewritten || (e.code !== 'NOT_FOUND' && e.code !== 'CORRUPT')) throw e;
        throw conflict(`transaction ${tx.id} began before ${tx.branch} was compacted and pruned; retry it`, []);
      });
      conflicts.push(...merged.conflicts);
      if (conflicts.length > 0) throw transactionConflict(tx, conflicts);
      const tree = merged.editor.write(ctx.batch, ctx.trees);
      const head = ctx.commit(
        tree,
        rewritten ? [ctx.head.commit!] : [ctx.head.commit!, tx.head.commit!],
        messageOf(tx),
        this.signature(undefined),
      );
      return { head, result: { commit: head.commit, outcome: 'merged' as const } };
    });
  }

  /**
   * Whether `ancestor` is on `head`'s first-parent chain. Walks back only to the ancestor's time (a minute of clock
   * skew allowed): for a transaction's base that is the commits made while it was open.
   */
  private async onFirstParentChain(ancestor: string, head: string): Promise<boolean> {
    const base = await this.db.readCommit(ancestor).catch(() => null);
    if (!base) return false; // pruned by another process's compaction
    const floor = base.committer.timestamp - 60;
    for (let id: string | undefined = head; id !== undefined; ) {
      if (id === ancestor) return true;
      const c: Commit = await this.db.readCommit(id);
      if (c.committer.timestamp < floor) return false;
      id = c.parents[0];
    }
    return false;
  }

  private expireTransactions(): void {
    const cutoff = Date.now() - this.transactionIdleMs;
    for (const tx of this.transactions.values()) if (tx.lastUsed < cutoff) void tx.expire().catch(() => {});
    if (this.transactions.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /**
   * Transaction refs left by a process that stopped (a restart aborts its open transactions): removed once they are
   * older than the idle limit, so a live transaction of another process sharing the repository is left alone.
   */
  private async removeAbandonedTransactions(): Promise<void> {
    const refs = await this.volatileRefs.list(TX_REF_PREFIX);
    for (const [ref, oid] of refs) {
      const stat = await this.files.stat(`${this.dir}/${ref}`);
      if (!stat || Date.now() - stat.mtimeMs > this.transactionIdleMs)
        await this.volatileRefs.compareAndSwap(ref, oid, null);
    }
  }

  /**
   * Repacks the repository: every pack merged into one, deflated, wide trees stored as chained deltas of their other
   * versions (git's own `git gc` works too). Safe while this and other processes write.
   */
  async gc(): Promise<GcResult> {
    const started = Date.now();
    const result = await this.db.gc();
    return { ...result, ms: Date.now() - started };
  }

  /**
   * Compacts a branch's history to what a retention policy keeps (issue 7): commits inside the first tier stay as
   * they are (re-parented), older ones become one snapshot per interval of their tier, first-parent chained, and
   * everything older than the last tier goes. The branch moves by compare-and-swap through its writer, so writes
   * landing meanwhile are put on top, never lost. Then the old ids are recorded in the branch's compaction map and
   * unreachable objects are pruned. The policy is `options.policy` or the branch's `.store/retention.json`.
   */
  async compact(options: CompactOptions = {}): Promise<CompactResult> {
    const started = Date.now();
    const branch = checkBranchName(options.branch ?? this.defaultBranch);
    const progress = options.onProgress ?? (() => {});
    const start = this.existing(branch, await this.loadHead(branch));
    const tiers =
      options.policy === undefined
        ? await this.retentionAt(start.tree)
        : parseRetention(typeof options.policy === 'string' ? parseJson(options.policy) : options.policy);
    const now = Math.floor(this.clock().getTime() / 1000);
    const bytesBefore = await this.db.packBytes();
    const otherHeads = await this.otherHeads(branch);
    const plan = async (head: string, batch: ObjectBatch, parsed: Map<string, Commit>) => {
      const history = (await firstParentHistory(this.db, head, null, (n) => progress(`reading history: ${n}`)))!;
      const mergedFrom = await parentsOnOtherBranches(this.db, history, otherHeads);
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
      const trees = await Promise.all(kept.map(async (c) => (await this.db.readCommit(c.id)).tree));
      const pruned = await this.db.prune(
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
      this.db.hold(planned);
      this.db.remember(planned, new Map(), parsed);
      try {
        ({ head, final } = await this.write(branch, async (ctx) => {
          let r = rewritten;
          let top = r.head;
          const since =
            ctx.head.commit === start.commit ? [] : await firstParentHistory(this.db, ctx.head.commit!, start.commit);
          if (since === null) {
            // Rewritten meanwhile by someone else (another compaction, a reset): plan again on what is there now.
            r = (await plan(ctx.head.commit!, ctx.batch, ctx.commits)).rewritten;
            top = r.head;
          } else {
            ctx.batch.merge(planned);
            for (const [oid, c] of parsed) ctx.commits.set(oid, c);
            if (since.length > 0) {
              const rewrites = new Map(r.rewrites);
              const mergedFrom = await parentsOnOtherBranches(this.db, since, otherHeads);
              top = replay(since, r.head, ctx.batch, ctx.commits, rewrites, mergedFrom);
              r = { ...r, rewrites };
            }
          }
          return { head: { commit: top, tree: ctx.head.tree }, result: { head: top, final: r } };
        }));
      } finally {
        this.db.release(planned);
      }
      progress('recording old commit ids');
      await this.maps.record(branch, final.rewrites, this.mapLimit, this.signature(undefined));
    }
    progress('pruning');
    const pruned = await this.db.prune(async () => this.pruneRoots(), this.pruneGraceMs);
    return {
      ...result(head, final, pruned),
      bytesAfter: await this.db.packBytes(),
      ms: Date.now() - started,
    };
  }

  /** The heads of every branch but `branch`, and of the tags. */
  private async otherHeads(branch: string): Promise<string[]> {
    const heads: string[] = [];
    for (const prefix of ['refs/heads/', 'refs/tags/']) {
      for (const [ref, head] of await this.refs.list(prefix)) if (ref !== `refs/heads/${branch}`) heads.push(head);
    }
    return heads;
  }

  /** What compaction made of an old commit id — unless another branch or tag still has that commit. */
  private async compactedId(id: string): Promise<MapHit | null> {
    const hit = await this.maps.lookup(id);
    if (!hit) return null;
    return (await reaches(this.db, await this.otherHeads(hit.branch), hit.key, hit.time - 60)) ? null : hit;
  }

  private async retentionAt(tree: string | null): Promise<Tier[]> {
    const entry = await lookup(this.db, tree, RETENTION_CONFIG_KEY.split('/'));
    return retentionFromFile(entry && !isTreeMode(entry.mode) ? await this.db.readBlob(entry.oid) : null);
  }

  /**
   * What pruning must keep: every ref with its history — open transactions' refs included, this process's too, as
   * their commits lead back into the history before the compaction (a transaction that has not mirrored its ref yet
   * may do so any moment, so its head counts as well). That history goes at the next compaction once they ended.
   * A dry run leaves out its branch and adds the trees it would keep.
   */
  private async pruneRoots(without?: string, trees: string[] = []): Promise<{ full: string[]; shallow: string[] }> {
    const full: string[] = [];
    for (const [ref, oid] of await this.refs.list('refs/')) if (ref !== without) full.push(oid);
    for (const tx of this.transactions.values()) {
      for (const h of [tx.base, tx.head]) if (h.commit) full.push(h.commit);
    }
    return { full, shallow: trees };
  }

  /** Calls `listener` after each batch a writer of this store made durable (for metrics). Returns an unsubscribe. */
  onBatch(listener: (event: { branch: string; writes: number }) => void): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  /** Waits until every queued write has been answered and background maintenance is done. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const feed of this.feeds.values()) feed.close();
    for (const w of this.writers.values()) await w.idle();
    await this.db.idle();
  }
}

/** A bisection's answer: the first bad commit and its changes, the snapshots tested, commits skipped in doubt. */
export interface BisectResult {
  firstBad: CommitInfo;
  changes: Change[];
  tested: { commit: string; verdict: Verdict }[];
  candidates: string[];
}

/** What `gc` did: packs and bytes of the pack directory before and after, objects kept, time taken. */
export interface GcResult {
  packsBefore: number;
  packsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  objects: number;
  ms: number;
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

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`the retention policy is not valid JSON (${(e as Error).message})`);
  }
};

/** A transaction's merge commit message: its own, or `commit transaction <id>`. */
function messageOf(tx: Transaction): string {
  const m = tx.options.message;
  return typeof m === 'function' ? m() : (m ?? `commit transaction ${tx.id}\n`);
}

/** A transaction's trees and blobs without its commits. */
function withoutCommits(objects: ObjectBatch): ObjectBatch {
  const out = new ObjectBatch();
  for (const [oid, o] of objects.objects) if (o.type !== 'commit') out.objects.set(oid, o);
  return out;
}

/** Opens a store; see {@link OpenOptions}. */
export const openStore = (options: OpenOptions = {}): Promise<Store> => Store.open(options);
