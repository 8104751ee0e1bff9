import { randomBytes } from 'node:crypto';
import { type Conflict, conflict, notFound, StoreError } from '../errors.js';
import { ObjectBatch } from '../objects/batch.js';
import type { Signature } from '../objects/commit.js';
import { serializeCommit } from '../objects/commit.js';
import type { ObjectDb } from '../objects/db.js';
import { EMPTY_TREE, utf8 } from '../objects/object.js';
import { isTreeMode, type Tree, type TreeEntry } from '../objects/tree.js';
import type { Refs } from '../storage/refs.js';
import { listTree, lookup, TreeEditor } from '../tree/editor.js';
import { normalizeKey, parseKey } from '../tree/keys.js';
import { type TreeEdit, treeEdit } from './ports.js';
import type { Head } from './writer.js';

/**
 * `snapshot`: only write-write conflicts abort (Irmin's default). `serializable`: a transaction also aborts when a
 * key it read, or a prefix it listed, changed on the branch since it began.
 */
export type Isolation = 'snapshot' | 'serializable';

export interface TransactionOptions {
  branch?: string;
  isolation?: Isolation;
  /** Who opened it, for the per-client cap (HTTP: the client's address or X-Store-Client). */
  client?: string;
  /**
   * Checks of the caller's own, run at commit against the branch's tree as it is then (inside the branch writer, so
   * nothing moves meanwhile): any conflict aborts the commit. For protocols with their own idea of a read set.
   */
  validate?: (tree: string | null) => Promise<Conflict[]>;
  /**
   * The commit's message (default `commit transaction <id>`), or a function giving it at commit time; with it, a
   * commit is always a merge commit.
   */
  message?: string | (() => string);
  /** Who commits it: the merge commit's author (default: the store's). Each write may name its own. */
  author?: { name: string; email: string };
}

/** What a transaction needs from its store. */
export interface TransactionHost {
  db: ObjectDb;
  /** Refs written without fsync: a transaction's ref dies with the process, as the transaction does. */
  volatileRefs: Refs;
  signature(author?: { name: string; email: string }): Signature;
  checkSize(key: string, bytes: Uint8Array): void;
  /** How long a transaction's writes may stay in memory only before its ref mirrors them. */
  refDelayMs: number;
  /** Merges the transaction into its branch (through the branch's writer). */
  commit(tx: Transaction): Promise<{ commit: string | null; outcome: 'fast-forward' | 'merged' | 'empty' }>;
  forget(tx: Transaction): void;
}

export const TX_REF_PREFIX = 'refs/store/tx/';

/** What callers use of a transaction, local or over HTTP. */
export interface TransactionApi {
  readonly id: string;
  read(key: string): Promise<{ value: Uint8Array; oid: string; commit: string | null }>;
  set(key: string, value: Uint8Array | string): Promise<{ commit: string; key: string; oid: string }>;
  delete(key: string, options?: { recursive?: boolean }): Promise<{ commit: string }>;
  list(
    prefix?: string,
    options?: { recursive?: boolean },
  ): Promise<{ commit: string | null; entries: { key: string; type: 'value' | 'dir'; oid: string }[] }>;
  commit(): Promise<{ commit: string | null; outcome: 'fast-forward' | 'merged' | 'empty' }>;
  abort(): Promise<void>;
}

/**
 * A transaction: a short-lived branch at `refs/store/tx/<id>`, forked from its branch's head. Each write is a commit
 * there; committing merges it back — a fast-forward when the branch did not move, else the three-way key merge —
 * so only transactions that really touch the same keys conflict.
 */
export class Transaction implements TransactionApi {
  readonly id = randomBytes(8).toString('hex');
  readonly ref = `${TX_REF_PREFIX}${this.id}`;
  readonly reads = new Set<string>();
  readonly lists = new Set<string>();
  /** Everything the transaction's commits hold that the branch may not: written again, durably, on commit. */
  readonly objects = new ObjectBatch();
  head: Head;
  lastUsed = Date.now();
  state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';
  private queue: Promise<unknown> = Promise.resolve();
  /** Objects not yet mirrored to disk under the transaction's ref. */
  private unflushed = new ObjectBatch();
  private flushing: Promise<void> | null = null;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  /** What the transaction's ref holds (null until its first write reaches it). */
  private refHead: string | null = null;

  constructor(
    private readonly host: TransactionHost,
    readonly branch: string,
    readonly isolation: Isolation,
    readonly base: Head,
    readonly client: string,
    readonly options: Pick<TransactionOptions, 'validate' | 'message' | 'author'> = {},
  ) {
    this.head = base;
  }

  /** Runs operations one at a time, in the order they were asked for. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.state !== 'open') {
        throw new StoreError('NOT_FOUND', `transaction ${this.id} is ${this.state}; begin a new one`, {
          transaction: this.id,
        });
      }
      this.lastUsed = Date.now();
      return fn();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** A key's value, oid and the transaction's commit (NOT_FOUND when absent); recorded for serializable checks. */
  read(key: string): Promise<{ value: Uint8Array; oid: string; commit: string | null }> {
    const segments = parseKey(key);
    return this.serial(async () => {
      this.reads.add(segments.join('/'));
      const entry = await lookup(this.host.db, this.head.tree, segments);
      if (!entry || isTreeMode(entry.mode)) throw notFound('key', segments.join('/'));
      return { value: await this.host.db.readBlob(entry.oid), oid: entry.oid, commit: this.head.commit };
    });
  }

  async get(key: string): Promise<Uint8Array> {
    return (await this.read(key)).value;
  }

  async getText(key: string): Promise<string> {
    return new TextDecoder().decode(await this.get(key));
  }

  /** The entries below a prefix as the transaction sees them; recorded for serializable checks. */
  list(
    prefix = '',
    options: { recursive?: boolean } = {},
  ): Promise<{ commit: string | null; entries: { key: string; type: 'value' | 'dir'; oid: string }[] }> {
    const segments = parseKey(prefix, true);
    return this.serial(async () => {
      this.lists.add(segments.join('/'));
      return {
        commit: this.head.commit,
        entries: await listTree(this.host.db, this.head.tree, segments, options.recursive ?? false),
      };
    });
  }

  /** Sets a key inside the transaction: a commit on its ref, invisible to the branch until commit. */
  set(key: string, value: Uint8Array | string, options: { author?: { name: string; email: string } } = {}) {
    const k = normalizeKey(key);
    const bytes = typeof value === 'string' ? utf8.encode(value) : value;
    this.host.checkSize(k, bytes);
    return this.edit(`set ${k}`, options.author, async (editor, batch) => {
      const oid = batch.add('blob', bytes);
      await editor.set(k.split('/'), oid);
      return { commit: '', key: k, oid };
    });
  }

  /** Deletes a key inside the transaction (a directory only with `recursive`). */
  delete(key: string, options: { recursive?: boolean; author?: { name: string; email: string } } = {}) {
    const k = normalizeKey(key);
    return this.edit(`delete ${k}`, options.author, async (editor) => {
      await editor.delete(k.split('/'), options.recursive ?? false);
      return { commit: '' };
    });
  }

  /**
   * Runs `change` on the transaction's tree as one commit `subject` (several keys at once), or — when it changes
   * nothing — no commit. For layers that map their own operations onto keys.
   */
  update<T>(subject: string, change: (edit: TreeEdit) => Promise<T>): Promise<T> {
    return this.edit(subject, undefined, async (editor, batch) => ({
      commit: '',
      value: await change(treeEdit(this.host.db, editor, batch)),
    })).then((r) => r.value);
  }

  /** Runs `read` on the transaction's tree as it is now (its own writes included), in order with its operations. */
  view<T>(read: (tree: string | null) => Promise<T>): Promise<T> {
    return this.serial(() => read(this.head.tree));
  }

  private edit<T extends { commit: string }>(
    subject: string,
    author: { name: string; email: string } | undefined,
    change: (editor: TreeEditor, batch: ObjectBatch) => Promise<T>,
  ): Promise<T> {
    return this.serial(async () => {
      const { db } = this.host;
      const editor = await TreeEditor.open(db, this.head.tree);
      const batch = new ObjectBatch();
      const result = await change(editor, batch);
      const trees = new Map<string, Tree>();
      const tree = editor.write(batch, trees);
      if (tree === (this.head.tree ?? EMPTY_TREE)) return { ...result, commit: this.head.commit ?? '' };
      const signature = this.host.signature(author);
      const commit = {
        tree,
        parents: this.head.commit ? [this.head.commit] : [],
        author: signature,
        committer: signature,
        message: `${subject}\n`,
      };
      const oid = batch.add('commit', serializeCommit(commit));
      db.remember(batch, trees, new Map([[oid, commit]]));
      if (this.objects.size === 0) db.hold(this.objects);
      for (const [o, obj] of batch.objects) {
        this.objects.objects.set(o, obj);
        this.unflushed.objects.set(o, obj);
      }
      this.head = { commit: oid, tree };
      this.scheduleFlush();
      return { ...result, commit: oid };
    });
  }

  /**
   * Mirrors the transaction to its ref a little later: a transaction that commits within the delay (most do) never
   * costs the disk anything before its durable commit; one that lives longer shows up under refs/store/tx/.
   */
  private scheduleFlush(): void {
    if (this.flushTimer || this.flushing) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flushing ??= this.flush();
    }, this.host.refDelayMs);
    this.flushTimer.unref?.();
  }

  /**
   * Brings the transaction's ref up to its head in the background: writes are answered from memory (held in the
   * object database), and however many came meanwhile, one pack and one ref update catch up with them all.
   */
  private async flush(): Promise<void> {
    const { db, volatileRefs } = this.host;
    try {
      if (this.unflushed.size > 0 && !this.closed) {
        const batch = this.unflushed;
        const target = this.head.commit!;
        this.unflushed = new ObjectBatch();
        await db.write(batch, false);
        // Only this transaction moves its ref; if someone else did, stop mirroring rather than fight over it.
        if (!(await volatileRefs.compareAndSwap(this.ref, this.refHead, target))) return;
        this.refHead = target;
      }
    } catch {
      // The ref is a mirror for people and git; the transaction itself lives in memory and commits without it.
      // A failure here (disk full, a file where refs/store/tx should be) must not fail it or the process.
    } finally {
      this.flushing = null;
      // Writes that came while this flush ran get their own turn.
      if (this.unflushed.size > 0 && !this.closed) this.scheduleFlush();
    }
  }

  /**
   * Merges the transaction into its branch. CONFLICT (with `data.conflicts`) aborts it; either way it is over.
   * Returns the branch's new head.
   */
  commit(): Promise<{ commit: string | null; outcome: 'fast-forward' | 'merged' | 'empty' }> {
    return this.serial(async () => {
      this.state = 'committing';
      try {
        const result = await this.host.commit(this);
        this.state = 'committed';
        return result;
      } catch (e) {
        this.state = 'aborted';
        throw e;
      } finally {
        await this.cleanUp();
      }
    });
  }

  /** Abandons the transaction: nothing it wrote reaches the branch. */
  abort(): Promise<void> {
    return this.serial(async () => {
      this.state = 'aborted';
      await this.cleanUp();
    });
  }

  /** Used by expiry: aborts without waiting behind queued operations. */
  async expire(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.cleanUp();
  }

  private async cleanUp(): Promise<void> {
    this.host.forget(this);
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    await this.flushing;
    if (this.refHead) await this.host.volatileRefs.compareAndSwap(this.ref, this.refHead, null);
    this.refHead = null;
    this.host.db.release(this.objects);
  }
}

/** Where a serializable transaction's reads and lists disagree with the branch as it is now. */
export async function staleReads(db: ObjectDb, tx: Transaction, now: string | null): Promise<Conflict[]> {
  const out: Conflict[] = [];
  const entryAt = (tree: string | null, path: string): Promise<TreeEntry | null> =>
    lookup(db, tree, path === '' ? [] : path.split('/'));
  for (const path of [...tx.reads, ...tx.lists]) {
    const [before, after] = [await entryAt(tx.base.tree, path), await entryAt(now, path)];
    if (before?.oid !== after?.oid || before?.mode !== after?.mode) {
      out.push({ key: path, kind: 'read-modified', base: before?.oid ?? null, ours: after?.oid ?? null, theirs: null });
    }
  }
  return out;
}

/** A transaction that cannot commit because of these keys. */
export const transactionConflict = (tx: Transaction, conflicts: Conflict[]) =>
  conflict(
    `transaction ${tx.id} conflicts on ${conflicts.map((c) => c.key).join(', ')}; it was aborted — retry it`,
    conflicts,
  );

/** The longest pause before a transaction's next attempt, in ms. */
const RETRY_PAUSE_CAP_MS = 100;

/**
 * Runs `fn` in a transaction `begin` opens and commits it; on a conflict, runs it again on the new head, up to
 * `retries` more times (default 5). `fn` may run more than once, so it should only act through the transaction.
 * Store.withTransaction and StoreClient.withTransaction both retry this way.
 *
 * Before each retry it pauses for a random whole number of ms below 2^(attempt + 1) (and below 100): callers that
 * conflicted together would otherwise all start again at once and conflict again, and over HTTP a crowd retrying
 * without a pause spends the caller's rate limit on attempts that cannot win.
 */
export async function retryTransaction<
  T,
  X extends { abort(): Promise<unknown>; commit(): Promise<{ commit: string | null }> },
>(begin: () => Promise<X>, fn: (tx: X) => Promise<T>, retries = 5): Promise<{ value: T; commit: string | null }> {
  for (let attempt = 0; ; attempt++) {
    const tx = await begin();
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
    const pause = Math.floor(Math.random() * Math.min(RETRY_PAUSE_CAP_MS, 2 ** (attempt + 1)));
    await new Promise((r) => setTimeout(r, pause));
  }
}
