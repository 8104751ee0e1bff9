import { StoreError } from './errors.js';
import { type Commit, type Signature, serializeCommit } from './objects/commit.js';
import { ObjectBatch, type ObjectDb } from './objects/db.js';
import type { Tree } from './objects/tree.js';

/** A branch head: the commit and its tree (both null on an unborn branch). */
export interface Head {
  commit: string | null;
  tree: string | null;
}

/** What a write request sees and builds on: the head as left by the requests before it in the batch. */
export class WriteContext {
  readonly batch = new ObjectBatch();
  readonly trees = new Map<string, Tree>();
  readonly commits = new Map<string, Commit>();

  constructor(readonly head: Head) {}

  /** Builds a commit object in this request's batch. */
  commit(tree: string, parents: string[], message: string, author: Signature, committer = author): Head {
    const commit: Commit = { tree, parents, author, committer, message };
    const oid = this.batch.add('commit', serializeCommit(commit));
    this.commits.set(oid, commit);
    return { commit: oid, tree };
  }
}

/** A request's effect: the new head (maybe an existing commit, for a fast-forward) and what to answer. */
export interface Applied<T> {
  head: Head;
  result: T;
}

/** One write: a function of the head it lands on. It may run more than once if another writer moves the branch. */
export type Apply<T> = (ctx: WriteContext) => Promise<Applied<T>>;

interface Pending {
  apply: Apply<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** What the writer needs from the store: the ref it moves and where durable objects go. */
export interface BranchIo {
  readHead(): Promise<Head>;
  /** Locks the ref and checks it still holds `expected` (see Refs.prepareSwap); null when it moved. */
  prepareSwap(
    expected: string | null,
    next: string,
  ): Promise<{ commit(): Promise<void>; abort(): Promise<void> } | null>;
  published(head: Head): void;
}

/** Requests taken as one batch at most: bounds the latency of the first one. */
const MAX_BATCH = 2048;
/** Attempts before a batch that keeps losing compare-and-swap races fails (the caller sees LOCKED). */
const MAX_ATTEMPTS = 1000;

/**
 * The serial writer of one branch (DESIGN §3): requests queue; each turn takes all that wait, applies them in order
 * (each its own commit, chained), writes their objects as one durable pack, then moves the branch by compare-and-swap
 * and only then answers. If the branch moved meanwhile, the whole batch is applied again on the new head.
 */
export class BranchWriter {
  private readonly queue: Pending[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: ObjectDb,
    private readonly io: BranchIo,
    private readonly onBatch: (size: number) => void = () => {},
  ) {}

  submit<T>(apply: Apply<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ apply, resolve: resolve as (v: unknown) => void, reject });
      this.running ??= this.drain();
    });
  }

  /** Resolves when every queued request has been answered. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await this.run(batch);
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    // Cleared in the same synchronous step as the empty-queue check: a request submitted after it starts a new
    // drain, and none can slip in between and be left waiting.
    this.running = null;
  }

  private async run(batch: Pending[]): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const start = await this.io.readHead();
      let head = start;
      const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
      const objects = new ObjectBatch();
      // Until the pack is written, the batch's objects exist only here: keep them readable for the requests after
      // (the caches alone may evict a large tree before the next commit reads it).
      this.db.hold(objects);
      try {
        for (const p of batch) {
          const ctx = new WriteContext(head);
          this.db.hold(ctx.batch);
          try {
            const applied = await p.apply(ctx);
            for (const [oid, o] of ctx.batch.objects) objects.objects.set(oid, o);
            this.db.remember(ctx.batch, ctx.trees, ctx.commits);
            head = applied.head;
            outcomes.push({ ok: true, value: applied.result });
          } catch (error) {
            outcomes.push({ ok: false, error });
          } finally {
            this.db.release(ctx.batch);
          }
        }
        if (head.commit !== start.commit) {
          // The pack's fsyncs and the ref lock's run side by side; the ref moves only once both are done, so it
          // never points at objects that are not yet durable.
          const [written, swap] = await Promise.allSettled([
            this.db.write(objects),
            this.io.prepareSwap(start.commit, head.commit!),
          ]);
          if (written.status === 'rejected' || swap.status === 'rejected') {
            if (swap.status === 'fulfilled') await swap.value?.abort();
            throw written.status === 'rejected' ? written.reason : (swap as PromiseRejectedResult).reason;
          }
          if (!swap.value) continue;
          await swap.value.commit();
          this.io.published(head);
          this.onBatch(outcomes.filter((o) => o.ok).length);
        }
      } finally {
        this.db.release(objects);
      }
      batch.forEach((p, i) => {
        const o = outcomes[i]!;
        if (o.ok) p.resolve(o.value);
        else p.reject(o.error);
      });
      return;
    }
    throw new StoreError('LOCKED', `gave up after ${MAX_ATTEMPTS} attempts: other writers keep moving the branch`);
  }
}
