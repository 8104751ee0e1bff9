import { conflict, invalidArgument, notFound, StoreError } from '../errors.js';
import { mergeTrees } from '../merge/three-way.js';
import { ObjectBatch } from '../objects/batch.js';
import type { Commit } from '../objects/commit.js';
import { Refs } from '../storage/refs.js';
import { checkBranchName, checkMessage } from '../tree/keys.js';
import type { StoreCore } from './core.js';
import {
  retryTransaction,
  staleReads,
  Transaction,
  type TransactionHost,
  type TransactionOptions,
  TX_REF_PREFIX,
  transactionConflict,
} from './transaction.js';
import type { TransactionResult } from './types.js';

/**
 * The open transactions of this process: each a short-lived branch (`refs/store/tx/<id>`) forked from its branch's
 * head, committed by a merge through the branch's writer, aborted when idle too long.
 */
export class StoreTransactions {
  private readonly open = new Map<string, Transaction>();
  private readonly volatileRefs: Refs;
  private readonly idleMs: number;
  private readonly maxPerClient: number;
  private readonly refDelayMs: number;
  private sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly core: StoreCore) {
    const { options } = core;
    this.volatileRefs = new Refs(core.files.volatile(), core.dir, { lockTimeoutMs: 10_000, staleLockMs: 30_000 });
    this.idleMs = options.transactionIdleMs ?? 60_000;
    this.maxPerClient = options.maxTransactionsPerClient ?? 1000;
    this.refDelayMs = options.transactionRefDelayMs ?? 50;
  }

  /** Begins a transaction on a branch (default: the default branch), forked from its current head. */
  async begin(options: TransactionOptions = {}): Promise<Transaction> {
    const branch = checkBranchName(options.branch ?? this.core.defaultBranch);
    if (typeof options.message === 'string') checkMessage(options.message);
    if (options.author) this.core.signature(options.author); // refused now, not at commit
    const isolation = options.isolation ?? 'snapshot';
    if (isolation !== 'snapshot' && isolation !== 'serializable') {
      throw invalidArgument(`isolation is "snapshot" or "serializable", not ${JSON.stringify(isolation)}`);
    }
    const client = options.client ?? 'local';
    let open = 0;
    for (const tx of this.open.values()) if (tx.client === client) open++;
    if (open >= this.maxPerClient) {
      throw new StoreError(
        'QUOTA',
        `${client} already has ${open} open transactions (the limit); commit or abort some first`,
        {
          client,
          limit: this.maxPerClient,
        },
      );
    }
    const base = this.core.existing(branch, await this.core.loadHead(branch));
    const tx = new Transaction(this.host(), branch, isolation, { commit: base.commit, tree: base.tree }, client, {
      validate: options.validate,
      message: options.message,
      author: options.author,
    });
    this.open.set(tx.id, tx);
    this.sweeper ??= setInterval(() => this.expire(), Math.max(50, Math.min(this.idleMs / 2, 5000)));
    this.sweeper.unref?.();
    return tx;
  }

  /** An open transaction by id; NOT_FOUND when it ended, expired, or belongs to another process. */
  get(id: string, client?: string): Transaction {
    const tx = this.open.get(id);
    if (!tx || (client !== undefined && tx.client !== client))
      throw notFound('transaction', id, 'it was committed, aborted or expired; begin a new one');
    return tx;
  }

  /**
   * Runs `fn` in a transaction and commits it; on a conflict, runs it again on the new head, up to `retries` more
   * times (default 5). `fn` may run more than once, so it should only act through the transaction.
   */
  run<T>(
    fn: (tx: Transaction) => Promise<T>,
    options: TransactionOptions & { retries?: number } = {},
  ): Promise<{ value: T; commit: string | null }> {
    return retryTransaction(() => this.begin(options), fn, options.retries);
  }

  /** The commits open transactions stand on or made: pruning keeps their history. */
  heldCommits(): string[] {
    const held: string[] = [];
    for (const tx of this.open.values()) for (const h of [tx.base, tx.head]) if (h.commit) held.push(h.commit);
    return held;
  }

  private host(): TransactionHost {
    return {
      db: this.core.db,
      volatileRefs: this.volatileRefs,
      signature: (author) => this.core.signature(author),
      checkSize: (key, bytes) => this.core.checkSize(key, bytes),
      refDelayMs: this.refDelayMs,
      commit: (tx) => this.commit(tx),
      forget: (tx) => this.open.delete(tx.id),
    };
  }

  private commit(tx: Transaction): Promise<TransactionResult> {
    const { core } = this;
    const { db } = core;
    return core.write<TransactionResult>(tx.branch, async (ctx) => {
      const moved = ctx.head.commit !== tx.base.commit;
      const conflicts = tx.isolation === 'serializable' && moved ? await staleReads(db, tx, ctx.head.tree) : [];
      if (moved && tx.options.validate) conflicts.push(...(await tx.options.validate(ctx.head.tree)));
      if (tx.head.commit === tx.base.commit) {
        if (conflicts.length > 0) throw transactionConflict(tx, conflicts);
        return { head: ctx.head, result: { commit: ctx.head.commit, outcome: 'empty' as const } };
      }
      if (tx.head.tree === tx.base.tree || (!moved && tx.head.tree === ctx.head.tree)) {
        // Its writes left the tree as it was (values set to what they were): nothing to commit.
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
        db,
        { base: tx.base.tree, ours: ctx.head.tree, theirs: tx.head.tree, oursTime: 0, theirsTime: 1 },
        { policy: await core.policyAt(ctx.head.tree), batch: ctx.batch },
      ).catch((e: StoreError) => {
        if (!rewritten || (e.code !== 'NOT_FOUND' && e.code !== 'CORRUPT')) throw e;
        throw conflict(`transaction ${tx.id} began before ${tx.branch} was compacted and pruned; retry it`, []);
      });
      conflicts.push(...merged.conflicts);
      if (conflicts.length > 0) throw transactionConflict(tx, conflicts);
      const tree = merged.editor.write(ctx.batch, ctx.trees);
      if (tree === ctx.head.tree)
        return { head: ctx.head, result: { commit: ctx.head.commit, outcome: 'empty' as const } };
      const head = ctx.commit(
        tree,
        rewritten ? [ctx.head.commit!] : [ctx.head.commit!, tx.head.commit!],
        messageOf(tx),
        core.signature(tx.options.author),
      );
      return { head, result: { commit: head.commit, outcome: 'merged' as const } };
    });
  }

  /**
   * Whether `ancestor` is on `head`'s first-parent chain. Walks back only to the ancestor's time (a minute of clock
   * skew allowed): for a transaction's base that is the commits made while it was open.
   */
  private async onFirstParentChain(ancestor: string, head: string): Promise<boolean> {
    const { db } = this.core;
    const base = await db.readCommit(ancestor).catch(() => null);
    if (!base) return false; // pruned by another process's compaction
    const floor = base.committer.timestamp - 60;
    for (let id: string | undefined = head; id !== undefined; ) {
      if (id === ancestor) return true;
      const c: Commit = await db.readCommit(id);
      if (c.committer.timestamp < floor) return false;
      id = c.parents[0];
    }
    return false;
  }

  private expire(): void {
    const cutoff = Date.now() - this.idleMs;
    for (const tx of this.open.values()) if (tx.lastUsed < cutoff) void tx.expire().catch(() => {});
    if (this.open.size === 0) this.stop();
  }

  /**
   * Transaction refs left by a process that stopped (a restart aborts its open transactions): removed once they are
   * older than the idle limit, so a live transaction of another process sharing the repository is left alone.
   */
  async removeAbandoned(): Promise<void> {
    const refs = await this.volatileRefs.list(TX_REF_PREFIX);
    for (const [ref, oid] of refs) {
      const stat = await this.core.files.stat(`${this.core.dir}/${ref}`);
      if (!stat || Date.now() - stat.mtimeMs > this.idleMs) await this.volatileRefs.compareAndSwap(ref, oid, null);
    }
  }

  /** Stops the idle sweep (at close). */
  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

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
