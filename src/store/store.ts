import { invalidArgument, notFound, StoreError } from '../errors.js';
import type { BlameLine } from '../history/blame.js';
import type { CommitInfo, Identity } from '../history/commit-info.js';
import type { Change } from '../history/diff.js';
import type { LogOptions, LogPage } from '../history/log.js';
import type { ReadAt, ResolveOptions } from '../history/revision.js';
import type { ObjectDb } from '../objects/db.js';
import { EMPTY_TREE, type GitObject } from '../objects/object.js';
import { isTreeMode } from '../objects/tree.js';
import { cloneRepository } from '../remote/clone.js';
import { Files, type FsLike } from '../storage/fs.js';
import { Refs } from '../storage/refs.js';
import { initRepository, isRepository, missingRepository } from '../storage/repository.js';
import { type ListEntry, listTree, lookup, TreeEditor } from '../tree/editor.js';
import { checkBranchName, checkMessage, normalizeKey, parseKey } from '../tree/keys.js';
import { StoreAccess, type TokenAdmin } from './access.js';
import { commitMessage, StoreCore, toBytes } from './core.js';
import { type FsckReport, fsck } from './fsck.js';
import { StoreHistory } from './history.js';
import { StoreMaintenance } from './maintenance.js';
import { StoreMerges } from './merge.js';
import { type ObjectReader, type TreeEdit, treeEdit } from './ports.js';
import { checkPrecondition } from './precondition.js';
import { nothingRecovered, type RecoveryReport, recover } from './recovery.js';
import { StoreRemotes } from './remotes.js';
import type { Transaction, TransactionOptions } from './transaction.js';
import { StoreTransactions } from './transactions.js';
import type {
  BatchOp,
  BisectOptions,
  BisectResult,
  BranchInfo,
  CloneOptions,
  CompactOptions,
  CompactResult,
  FetchOptions,
  FetchResult,
  GcResult,
  MergeOptions,
  MergePreview,
  MergeResult,
  OpenOptions,
  Precondition,
  PullOptions,
  PullResult,
  PushOptions,
  PushResult,
  ReadOptions,
  Remotes,
  SetResult,
  ValidationReport,
  Value,
  WriteOptions,
  WriteResult,
} from './types.js';
import { BranchFeed, eventsBetween, Watch } from './watch.js';
import type { Head, WriteContext } from './writer.js';

export type * from './types.js';

/**
 * A store: a bare git repository seen as branches of key → value maps. This class is the facade: reads, writes,
 * branches and watches are here; history, merges, transactions and maintenance are facets over the same core
 * (docs/ARCHITECTURE.md, "The store"). Reads come from the cached head and the object caches; writes go through one
 * serial writer per branch (writer.ts) and are durable when they resolve.
 */
export class Store {
  private readonly core: StoreCore;
  private readonly historyFacet: StoreHistory;
  private readonly merges: StoreMerges;
  private readonly transactions: StoreTransactions;
  private readonly maintenance: StoreMaintenance;
  private readonly remotesFacet: StoreRemotes;
  private accessFacet: StoreAccess | undefined;
  private readonly watchPollMs: number;

  private constructor(core: StoreCore) {
    this.core = core;
    this.historyFacet = new StoreHistory(core);
    this.merges = new StoreMerges(core);
    this.transactions = new StoreTransactions(core);
    this.maintenance = new StoreMaintenance(core, () => this.transactions.heldCommits());
    this.remotesFacet = new StoreRemotes(core, (from, options) => this.merges.merge(from, options));
    this.watchPollMs = core.options.watchPollMs ?? 20;
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
    const store = new Store(new StoreCore(files, dir, defaultBranch, options));
    // Before anything is read: what a power cut took of other processes' acknowledged writes comes back first.
    store.recovered = await recover(store.core);
    await store.core.leftovers.open();
    await store.transactions.removeAbandoned();
    return store;
  }

  /** The repository's directory. */
  get dir(): string {
    return this.core.dir;
  }

  /** The file system the repository is on. */
  get files(): Files {
    return this.core.files;
  }

  /** The default branch (HEAD's). */
  get defaultBranch(): string {
    return this.core.defaultBranch;
  }

  /** The object database: for tools and tests that look below the store. */
  get db(): ObjectDb {
    return this.core.db;
  }

  /** Committed objects by id: the read-only port for layers built on the store. */
  get objects(): ObjectReader {
    return this.core.db;
  }

  /** Tokens and access rules, for the adapters that enforce them (the HTTP server). */
  get access(): StoreAccess {
    this.accessFacet ??= new StoreAccess(this.core);
    return this.accessFacet;
  }

  /** The HTTP API's tokens (`store token`): made, listed and revoked, as over HTTP with an admin token. */
  get tokens(): TokenAdmin {
    return this.access.admin;
  }

  /** The repository's refs: for tools and tests that look below the store. */
  get refs(): Refs {
    return this.core.refs;
  }

  /** A branch's head commit and tree as readers see it now (cached; NOT_FOUND for a missing branch). */
  tip(branch = this.core.defaultBranch): Promise<Head> {
    return this.core.head(checkBranchName(branch));
  }

  // ---- reads -------------------------------------------------------------------------------------------------

  /** The blob oid and commit of a key (NOT_FOUND when absent or a directory). */
  async stat(key: string, options: ReadOptions = {}): Promise<{ oid: string; commit: string }> {
    const segments = parseKey(key);
    const { commit, tree } = await this.core.treeAt(options.branch, options.at, options.consistency, options.nearest);
    const entry = await lookup(this.core.db, tree, segments);
    if (!entry || isTreeMode(entry.mode)) {
      throw notFound('key', segments.join('/'), entry ? 'it is a directory; list it instead' : '');
    }
    return { oid: entry.oid, commit: commit! };
  }

  /** A key's value with its blob oid and the commit it was read at. */
  async read(key: string, options: ReadOptions = {}): Promise<{ value: Uint8Array; oid: string; commit: string }> {
    const { oid, commit } = await this.stat(key, options);
    return { value: await this.core.db.readBlob(oid), oid, commit };
  }

  /** A key's value as bytes. */
  async get(key: string, options: ReadOptions = {}): Promise<Uint8Array> {
    return this.core.db.readBlob((await this.stat(key, options)).oid);
  }

  /** A key's value as UTF-8 text. */
  async getText(key: string, options: ReadOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.get(key, options));
  }

  /**
   * Holds a branch's tree (or a revision's, with `at`) against the schemas it declares: every value a pattern of
   * `.store/schema.json` matches is checked, and every violation listed (`store validate`).
   */
  async validate(options: ReadAt = {}): Promise<ValidationReport> {
    const { commit, tree } = await this.core.treeAt(options.branch, options.at, undefined, options.nearest);
    return this.core.schemas.validate(commit, tree);
  }

  /** The entries below a prefix: one level, or with `recursive` every value below it. */
  async list(
    prefix = '',
    options: ReadOptions & { recursive?: boolean } = {},
  ): Promise<{ commit: string | null; entries: ListEntry[] }> {
    const segments = parseKey(prefix, true);
    const { commit, tree } = await this.core.treeAt(options.branch, options.at, options.consistency, options.nearest);
    return { commit, entries: await listTree(this.core.db, tree, segments, options.recursive ?? false) };
  }

  /** Every value below a prefix, with its bytes: the data of an export or a snapshot. */
  async snapshot(
    prefix = '',
    options: ReadOptions = {},
  ): Promise<{ commit: string | null; entries: { key: string; value: Uint8Array }[] }> {
    const { commit, entries } = await this.list(prefix, { ...options, recursive: true });
    const values = await Promise.all(
      entries.map(async (e) => ({ key: e.key, value: await this.core.db.readBlob(e.oid) })),
    );
    return { commit, entries: values };
  }

  // ---- writes ------------------------------------------------------------------------------------------------

  /** Sets a key; one commit `set <key>`. */
  async set(key: string, value: Value, options: WriteOptions & Precondition = {}): Promise<SetResult> {
    const k = normalizeKey(key);
    checkMessage(options.message);
    const bytes = toBytes(value);
    this.core.checkSize(k, bytes);
    return this.core.write(
      options.branch,
      async (ctx) => {
        const editor = await TreeEditor.open(this.core.db, ctx.head.tree);
        const { created, oid } = await this.applyOp(editor, ctx, { op: 'set', key: k, value: bytes, ...options });
        const { head, changed } = this.commitEdit(ctx, editor, commitMessage(`set ${k}`, options.message), options);
        return { head, result: { commit: head.commit!, key: k, oid: oid!, created, changed } };
      },
      options,
    );
  }

  /** Deletes a key (a directory only with `recursive`); NOT_FOUND when absent. One commit `delete <key>`. */
  async delete(key: string, options: WriteOptions & Precondition & { recursive?: boolean } = {}): Promise<WriteResult> {
    const k = normalizeKey(key);
    checkMessage(options.message);
    return this.core.write(
      options.branch,
      async (ctx) => {
        const editor = await TreeEditor.open(this.core.db, ctx.head.tree);
        await this.applyOp(editor, ctx, { op: 'delete', key: k, ...options });
        const { head, changed } = this.commitEdit(ctx, editor, commitMessage(`delete ${k}`, options.message), options);
        return { head, result: { commit: head.commit!, changed } };
      },
      options,
    );
  }

  /**
   * Runs `change` on the branch's head inside its writer — atomic with every other write to the branch — and makes
   * what it did to the tree one commit `message`; no commit when it changed nothing. For layers that map their own
   * operations onto keys (the Xenstore daemon). `change` may run again if another process moved the branch.
   */
  async update<T>(
    message: string,
    change: (edit: TreeEdit) => Promise<T>,
    options: { branch?: string; author?: Identity } = {},
  ): Promise<{ commit: string | null; changed: boolean; value: T }> {
    return this.core.write<{ commit: string | null; changed: boolean; value: T }>(options.branch, async (ctx) => {
      const editor = await TreeEditor.open(this.core.db, ctx.head.tree);
      const value = await change(treeEdit(this.core.db, editor, ctx.batch));
      const tree = editor.write(ctx.batch, ctx.trees);
      if (tree === (ctx.head.tree ?? EMPTY_TREE)) {
        return { head: ctx.head, result: { commit: ctx.head.commit, changed: false, value } };
      }
      const { head } = this.core.commitTree(ctx, tree, commitMessage(message), options);
      return { head, result: { commit: head.commit, changed: true, value } };
    });
  }

  /** Applies several changes as ONE commit `batch: N changes`; any failing op fails the whole batch. */
  async batch(
    ops: BatchOp[],
    options: WriteOptions & { onProgress?: (done: number, total: number) => void } = {},
  ): Promise<WriteResult> {
    if (!Array.isArray(ops) || ops.length === 0) throw invalidArgument('a batch needs at least one op');
    checkMessage(options.message);
    const checked = ops.map((op, i) => {
      if (op?.op !== 'set' && op?.op !== 'delete') throw invalidArgument(`op ${i}: "op" must be "set" or "delete"`);
      const key = normalizeKey(op.key);
      if (op.op === 'delete') return { ...op, key };
      const value = toBytes(op.value);
      this.core.checkSize(key, value);
      return { ...op, key, value };
    });
    const subject = `batch: ${ops.length} change${ops.length === 1 ? '' : 's'}`;
    return this.core.write(
      options.branch,
      async (ctx) => {
        const editor = await TreeEditor.open(this.core.db, ctx.head.tree);
        for (let i = 0; i < checked.length; i++) {
          await this.applyOp(editor, ctx, checked[i]!);
          if (options.onProgress && (i % 1000 === 999 || i === checked.length - 1))
            options.onProgress(i + 1, checked.length);
        }
        const { head, changed } = this.commitEdit(ctx, editor, commitMessage(subject, options.message), options);
        return { head, result: { commit: head.commit!, changed } };
      },
      options,
    );
  }

  private async applyOp(
    editor: TreeEditor,
    ctx: WriteContext,
    op: (BatchOp & { value?: Uint8Array }) | ({ op: 'set'; key: string; value: Uint8Array } & Precondition),
  ): Promise<{ created: boolean; oid: string | null }> {
    const segments = op.key.split('/');
    const existing = await editor.get(segments);
    const current = existing && !isTreeMode(existing.mode) ? existing.oid : null;
    checkPrecondition(op.key, op, existing !== null, current);
    if (op.op === 'delete') {
      await editor.delete(segments, op.recursive ?? false);
      return { created: false, oid: null };
    }
    const oid = ctx.batch.add('blob', op.value as Uint8Array);
    await editor.set(segments, oid);
    return { created: existing === null, oid };
  }

  private commitEdit(ctx: WriteContext, editor: TreeEditor, message: string, who: WriteOptions) {
    return this.core.commitTree(ctx, editor.write(ctx.batch, ctx.trees), message, who);
  }

  // ---- branches ----------------------------------------------------------------------------------------------

  /** Every branch with its head. */
  async branches(): Promise<BranchInfo[]> {
    const refs = await this.core.refs.list('refs/heads/');
    return [...refs].map(([ref, head]) => {
      const name = ref.slice('refs/heads/'.length);
      return { name, head, default: name === this.core.defaultBranch };
    });
  }

  /** Creates a branch at a revision (default: the default branch's head); BRANCH_EXISTS if taken. */
  async createBranch(name: string, options: { from?: string } = {}): Promise<BranchInfo> {
    const ref = this.core.refName(name);
    const head = await this.core.resolve(options.from ?? this.core.defaultBranch);
    // Git keeps a branch as the file refs/heads/<name>: `a` and `a/b` cannot both exist.
    for (const other of await this.branches()) {
      const [outer, inner] = other.name.startsWith(`${name}/`) ? [name, other.name] : [other.name, name];
      if (inner.startsWith(`${outer}/`)) {
        throw new StoreError(
          'BRANCH_EXISTS',
          `branch ${other.name} exists, so ${name} cannot: git keeps branches as files, and ${outer} cannot be both a branch and a folder of ${inner}; pick another name`,
          { branch: name, existing: other.name },
        );
      }
    }
    if (!(await this.core.refs.compareAndSwap(ref, null, head))) {
      throw new StoreError('BRANCH_EXISTS', `branch ${name} already exists; pick another name or delete it first`, {
        branch: name,
      });
    }
    this.core.forget(name);
    return { name, head, default: false };
  }

  /** Deletes a branch (never the default one). */
  async deleteBranch(name: string): Promise<void> {
    const ref = this.core.refName(name);
    if (name === this.core.defaultBranch) {
      throw new StoreError('FORBIDDEN', `${name} is the default branch and cannot be deleted`, { branch: name });
    }
    for (;;) {
      const head = await this.core.refs.read(ref);
      if (!head) throw notFound('branch', name);
      if (await this.core.refs.compareAndSwap(ref, head, null)) break;
    }
    this.core.forget(name);
  }

  // ---- revisions and history (StoreHistory, StoreMerges) ------------------------------------------------------

  /** Resolves a revision (branch, commit id or prefix, `rev~N`, `rev^N`, ISO time) to a commit id. */
  resolve(rev: string, contextBranch = this.core.defaultBranch, options: ResolveOptions = {}): Promise<string> {
    return this.core.resolve(rev, contextBranch, options);
  }

  /** A commit by revision. */
  commit(rev: string, options: { branch?: string } = {}): Promise<CommitInfo> {
    return this.historyFacet.commit(rev, options);
  }

  /** The first-parent history of a branch or revision, newest first, optionally only commits touching a key. */
  log(options: LogOptions & { branch?: string; rev?: string } = {}): Promise<LogPage> {
    return this.historyFacet.log(options);
  }

  /** Per-key changes from one revision to another (default: to the branch head). */
  diff(from: string, to?: string, options: { branch?: string; prefix?: string } = {}): Promise<Change[]> {
    return this.historyFacet.diff(from, to, options);
  }

  /** The per-key changes a commit made against its first parent (everything is added for a root commit). */
  changesOf(rev: string, options: { branch?: string } = {}): Promise<Change[]> {
    return this.historyFacet.changesOf(rev, options);
  }

  /** The first commit where a key predicate or a test turns bad; see {@link StoreHistory.bisect}. */
  bisect(options: BisectOptions): Promise<BisectResult> {
    return this.historyFacet.bisect(options);
  }

  /** For each key at or below `prefix` (default: all) on a branch or revision, the last commit that changed it. */
  blame(prefix = '', options: ReadOptions = {}): Promise<BlameLine[]> {
    return this.historyFacet.blame(prefix, options);
  }

  /** Undoes one commit's changes as a new commit `revert <id>`; CONFLICT if later commits changed the same keys. */
  revert(rev: string, options: WriteOptions = {}): Promise<WriteResult> {
    return this.historyFacet.revert(rev, options);
  }

  /** Merges a branch or revision into a branch, per key; see {@link StoreMerges.merge}. */
  merge(from: string, options: MergeOptions = {}): Promise<MergeResult> {
    return this.merges.merge(from, options);
  }

  /** What `merge` would do, writing nothing: its outcome, and each conflicting key with its three values. */
  mergePreview(from: string, options: MergeOptions = {}): Promise<MergePreview> {
    return this.merges.preview(from, options);
  }

  // ---- remotes (StoreRemotes) --------------------------------------------------------------------------------

  /** The repository's remotes (`store remote add|list|remove`), kept in its git `config`. */
  get remotes(): Remotes {
    return this.remotesFacet;
  }

  /** Fetches a remote's branches (default `origin`; or a URL) into `refs/remotes/<remote>/*`; see StoreRemotes. */
  fetch(remote?: string, options: FetchOptions = {}): Promise<FetchResult> {
    return this.remotesFacet.fetch(remote, options);
  }

  /** Fetches a branch of a remote and merges it into the branch here; see {@link StoreRemotes.pull}. */
  pull(remote?: string, options: PullOptions = {}): Promise<PullResult> {
    return this.remotesFacet.pull(remote, options);
  }

  /** Pushes a branch to a remote; PUSH_REJECTED when the remote has commits this store lacks. */
  push(remote?: string, options: PushOptions = {}): Promise<PushResult> {
    return this.remotesFacet.push(remote, options);
  }

  /**
   * The commits of `branch` a replica holding `haves` lacks, with their trees and blobs: what a replication round
   * asks a peer for instead of running git; see {@link StoreRemotes.outgoing}.
   */
  outgoing(branch: string, haves: readonly string[], limit?: number): Promise<{ head: string; objects: GitObject[] }> {
    return this.remotesFacet.outgoing(branch, haves, limit);
  }

  /** A pull from objects a peer's `outgoing` sent (replication); see {@link StoreRemotes.pullObjects}. */
  pullObjects(remote: string, head: string, objects: readonly GitObject[], options: PullOptions = {}) {
    return this.remotesFacet.pullObjects(remote, head, objects, options);
  }

  // ---- watches -----------------------------------------------------------------------------------------------

  /**
   * Watches a branch under a prefix: every change of every commit, including commits made by other processes and
   * by plain git. With `since`, first replays the commits after that revision. Iterate the result for events.
   */
  async watch(options: { branch?: string; prefix?: string; since?: string } = {}): Promise<Watch> {
    const { core } = this;
    const branch = checkBranchName(options.branch ?? core.defaultBranch);
    const prefix = normalizeKey(options.prefix ?? '', true);
    await core.head(branch); // NOT_FOUND for a missing branch, before anything is opened
    const since = options.since === undefined ? undefined : await core.resolve(options.since, branch);
    let feed = core.feeds.get(branch);
    if (!feed) {
      const ref = core.refName(branch);
      feed = new BranchFeed(core.db, () => core.refs.read(ref), this.watchPollMs);
      core.feeds.set(branch, feed);
    }
    const { sub, head } = await feed.subscribe(prefix);
    const replay = since === undefined ? [] : await eventsBetween(core.db, since, head, prefix);
    return new Watch(feed, sub, replay, since ?? head);
  }

  // ---- transactions (StoreTransactions) -----------------------------------------------------------------------

  /** Begins a transaction on a branch (default: the default branch), forked from its current head. */
  begin(options: TransactionOptions = {}): Promise<Transaction> {
    return this.transactions.begin(options);
  }

  /**
   * An open transaction by id; NOT_FOUND when it ended, expired, belongs to another process, or (with `client`) was
   * begun by another client: the same answer, so a client cannot learn of others' transactions.
   */
  transaction(id: string, client?: string): Transaction {
    return this.transactions.get(id, client);
  }

  /** Runs `fn` in a transaction and commits it, again on conflict, up to `retries` more times (default 5). */
  withTransaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    options: TransactionOptions & { retries?: number } = {},
  ): Promise<{ value: T; commit: string | null }> {
    return this.transactions.run(fn, options);
  }

  // ---- maintenance (StoreMaintenance) -------------------------------------------------------------------------

  /** Repacks the repository into one pack; safe while this and other processes write. */
  gc(): Promise<GcResult> {
    return this.maintenance.gc();
  }

  /** Compacts a branch's history to its retention policy; see {@link StoreMaintenance.compact}. */
  compact(options: CompactOptions = {}): Promise<CompactResult> {
    return this.maintenance.compact(options);
  }

  /** Calls `listener` after each batch a writer of this store made durable (for metrics). Returns an unsubscribe. */
  onBatch(listener: (event: { branch: string; writes: number }) => void): () => void {
    this.core.batchListeners.add(listener);
    return () => this.core.batchListeners.delete(listener);
  }

  /** What recovery did when this store was opened (docs/ARCHITECTURE.md, "The journal"). */
  recovered: RecoveryReport = nothingRecovered();

  /**
   * Checks the repository: refs, the objects they reach, packs, journals (`store fsck`); `repair` removes torn packs.
   */
  fsck(options: { repair?: boolean } = {}): Promise<FsckReport> {
    return fsck(this.core, this.recovered, options.repair);
  }

  /**
   * A checkpoint of the write-ahead journal (docs/ARCHITECTURE.md, "The journal"): what it holds is made durable
   * where it belongs (packs, refs) and its segments are retired. The journal does this by itself, by size and time
   * and at close; nothing to do without one (durability `sync`).
   */
  async checkpoint(): Promise<void> {
    await this.core.journal?.checkpoint();
  }

  /** Waits until every queued write has been answered and background maintenance is done. */
  async close(): Promise<void> {
    this.transactions.stop();
    this.core.leftovers.close();
    for (const feed of this.core.feeds.values()) feed.close();
    await this.accessFacet?.tokens.flush();
    await this.core.idle();
    await this.core.db.idle();
    await this.core.journal?.close();
  }
}

/** Opens a store; see {@link OpenOptions}. */
export const openStore = (options: OpenOptions = {}): Promise<Store> => Store.open(options);

/**
 * Clones a store (any git repository) from `url` into a new bare repository `dir` with `git clone --bare`, and opens
 * it (`options.fs` is node's `fs`: git writes to disk). REPOSITORY_EXISTS when `dir` exists and is not empty.
 */
export async function cloneStore(url: string, dir: string, options: CloneOptions = {}): Promise<Store> {
  const { onProgress, timeoutMs, ...open } = options;
  if (!open.fs) throw invalidArgument('cloneStore needs an `fs` (node:fs): git clones to disk');
  await cloneRepository(url, dir, { onProgress, timeoutMs });
  return Store.open({ ...open, dir });
}
