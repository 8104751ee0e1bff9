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
  readonly batch: ObjectBatch;
  readonly trees = new Map<string, Tree>();
  readonly commits = new Map<string, Commit>();

  /** `prior`: the writer's batch so far, which this request's objects join (and may be patches of). */
  constructor(
    readonly head: Head,
    prior: ObjectBatch | null = null,
  ) {
    this.batch = new ObjectBatch(prior);
  }

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
  /** Takes the ref's lock and reads the head it guards (see Refs.hold). */
  holdRef(): Promise<{ head: Head; commit(next: string): Promise<void>; abort(): Promise<void> }>;
  published(head: Head): void;
}

/** Requests taken as one batch at most: bounds the latency of the first one. */
const MAX_BATCH = 2048;

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A batch applied in memory: the head it built on, the head it leads to, its objects and what to answer. */
interface Applied_ {
  start: Head;
  head: Head;
  objects: ObjectBatch;
  outcomes: Outcome[];
}

/** A batch on its way to disk; `done` resolves to the head it published, or null when it had to be re-run. */
interface Stage {
  head: Head;
  done: Promise<Head | null>;
}

/**
 * The serial writer of one branch (DESIGN §3): requests queue; each turn takes all that wait, applies them in order
 * (each its own commit, chained), writes their objects as one durable pack, then moves the branch by compare-and-swap
 * and only then answers. If the branch moved meanwhile, the whole batch is applied again on the new head.
 *
 * Two batches are in flight at once: while one waits for its fsyncs, the next is applied on top of the head the
 * first will publish and its pack is written; it moves the ref only after the first did. With callers that each wait
 * for their write, this keeps the CPU busy during the disk's latency instead of alternating between the two.
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
    let last: Stage | null = null;
    for (;;) {
      if (this.queue.length === 0) {
        if (!last) break;
        // The batch in flight answers its callers when done, and they may queue more.
        await last.done;
        last = null;
        continue;
      }
      const batch = this.queue.splice(0, MAX_BATCH);
      const previous: Stage | null = last;
      let applied: Applied_;
      try {
        applied = await this.apply(batch, previous ? previous.head : await this.io.readHead());
      } catch (e) {
        for (const p of batch) p.reject(e);
        continue;
      }
      last = { head: applied.head, done: this.finish(batch, applied, previous) };
    }
    // Cleared in the same synchronous step as the empty-queue check: a request submitted after it starts a new
    // drain, and none can slip in between and be left waiting.
    this.running = null;
  }

  /** Applies every request of a batch in order on `start`, each its own commit; their objects stay readable. */
  private async apply(batch: Pending[], start: Head): Promise<Applied_> {
    let head = start;
    const outcomes: Outcome[] = [];
    const objects = new ObjectBatch();
    // Until the pack is written, the batch's objects exist only here: keep them readable for the requests after
    // (the caches alone may evict a large tree before the next commit reads it). Released by `finish`.
    this.db.hold(objects);
    for (const p of batch) {
      const ctx = new WriteContext(head, objects);
      this.db.hold(ctx.batch);
      try {
        const applied = await p.apply(ctx);
        objects.merge(ctx.batch);
        this.db.remember(ctx.batch, ctx.trees, ctx.commits);
        head = applied.head;
        outcomes.push({ ok: true, value: applied.result });
      } catch (error) {
        outcomes.push({ ok: false, error });
      } finally {
        this.db.release(ctx.batch);
      }
    }
    return { start, head, objects, outcomes };
  }

  /**
   * Makes an applied batch durable and publishes it after `previous` (the batch it was built on, if any), then
   * answers. Falls back to `run` — read the head, apply again — when the head it built on did not become the branch.
   */
  private async finish(batch: Pending[], applied: Applied_, previous: Stage | null): Promise<Head | null> {
    try {
      const { start, head, objects, outcomes } = applied;
      const written = head.commit === start.commit ? Promise.resolve() : this.db.write(objects);
      // Whatever happens below, the pack write must not be left rejected and unobserved.
      written.catch(() => {});
      const before = previous ? await previous.done : start;
      if (before?.commit !== start.commit) {
        await written.catch(() => {});
        return await this.run(batch);
      }
      if (head.commit !== start.commit && !(await this.publish(written, start, head, outcomes))) {
        return await this.run(batch);
      }
      this.answer(batch, outcomes);
      return head;
    } catch (e) {
      for (const p of batch) p.reject(e);
      return null;
    } finally {
      this.db.release(applied.objects);
    }
  }

  /** Moves the ref from `start` to `head` once `written` is durable; false when another writer moved it first. */
  private async publish(written: Promise<void>, start: Head, head: Head, outcomes: Outcome[]): Promise<boolean> {
    // The pack's fsyncs and the ref lock's run side by side; the ref moves only once both are done, so it never
    // points at objects that are not yet durable.
    const [w, swap] = await Promise.allSettled([written, this.io.prepareSwap(start.commit, head.commit!)]);
    if (w.status === 'rejected' || swap.status === 'rejected') {
      if (swap.status === 'fulfilled') await swap.value?.abort();
      throw w.status === 'rejected' ? w.reason : (swap as PromiseRejectedResult).reason;
    }
    if (!swap.value) return false;
    await swap.value.commit();
    this.io.published(head);
    this.onBatch(outcomes.filter((o) => o.ok).length);
    return true;
  }

  private answer(batch: Pending[], outcomes: Outcome[]): void {
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
  }

  /**
   * The batch again, after its optimistic attempt lost the race for the ref: this time the ref's lock is taken first
   * and the batch rebuilt on the value it guards, so it cannot lose twice (and leaves no pack of orphans per retry).
   * Other processes wait on the lock meanwhile, as they would for git.
   */
  private async run(batch: Pending[]): Promise<Head> {
    const held = await this.io.holdRef();
    let applied: Applied_;
    try {
      applied = await this.apply(batch, held.head);
    } catch (e) {
      await held.abort();
      throw e;
    }
    const { start, head, objects, outcomes } = applied;
    let moved = false;
    try {
      if (head.commit !== start.commit) {
        await this.db.write(objects);
        moved = true;
        await held.commit(head.commit!);
        this.io.published(head);
        this.onBatch(outcomes.filter((o) => o.ok).length);
      }
      this.answer(batch, outcomes);
      return head;
    } finally {
      // Once commit() ran, the lock is gone (renamed, or removed on failure): removing it again could remove a lock
      // another writer has taken since.
      if (!moved) await held.abort();
      this.db.release(objects);
    }
  }
}
