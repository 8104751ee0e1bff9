import { diffRevisions } from '../history/diff.js';
import type { ObjectDb } from '../objects/db.js';

/** One key's change on a watched branch, and the commit that made it. */
export interface WatchEvent {
  commit: string;
  key: string;
  kind: 'added' | 'modified' | 'deleted';
  /** The key's blob after the change (null when deleted). */
  oid: string | null;
}

/** The events one commit made, in key order. */
export interface CommitEvents {
  commit: string;
  events: WatchEvent[];
}

/** '', 'a', 'a/b', 'a/b/c' for 'a/b/c': every prefix whose watchers see this key. */
function ancestors(key: string): string[] {
  const out = [''];
  for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) out.push(key.slice(0, i));
  out.push(key);
  return out;
}

const covers = (prefix: string, key: string) => prefix === '' || key === prefix || key.startsWith(`${prefix}/`);

/** Walks back this far at most to connect an old head to a new one; past it, the change is reported as one step. */
const MAX_CHAIN = 100_000;

/** The first-parent commits after `from` up to `to`, oldest first; null when `to` does not descend from `from`. */
async function chainBetween(db: ObjectDb, from: string | null, to: string): Promise<string[] | null> {
  const chain: string[] = [];
  for (let oid: string | undefined = to; oid && oid !== from; oid = (await db.readCommit(oid)).parents[0]) {
    chain.push(oid);
    if (chain.length > MAX_CHAIN) return null;
  }
  if (from !== null && !chain.length) return [];
  // Reached the root without meeting `from`: the branch was reset or rewritten.
  if (from !== null && (await db.readCommit(chain.at(-1)!)).parents[0] !== from) return null;
  return chain.reverse();
}

/** The per-commit events from `from` (exclusive) to `to`, for keys under `prefix`. */
export async function eventsBetween(
  db: ObjectDb,
  from: string | null,
  to: string | null,
  prefix = '',
): Promise<CommitEvents[]> {
  if (to === null || from === to) return [];
  const chain = await chainBetween(db, from, to);
  const steps: [string | null, string][] = [];
  if (chain === null) steps.push([from, to]);
  else {
    // A merge's changes are those against its first parent: what the merge brought to this branch.
    for (const commit of chain) steps.push([(await db.readCommit(commit)).parents[0] ?? null, commit]);
  }
  const out: CommitEvents[] = [];
  for (const [before, commit] of steps) {
    // Only under the prefix: subtrees elsewhere are not read (a prefix naming a single key compares just that key).
    const changes = await diffRevisions(db, before, commit, prefix);
    const events = changes
      .filter((c) => covers(prefix, c.key))
      .map((c) => ({ commit, key: c.key, kind: c.kind, oid: c.after }));
    if (events.length > 0) out.push({ commit, events });
  }
  return out;
}

interface Subscriber {
  prefix: string;
  queue: CommitEvents[];
  wake: (() => void) | null;
  closed: boolean;
}

/**
 * Follows one branch for its watchers: notices a new head (our own writes say so at once; other processes' and
 * plain git's are seen by polling the ref), works out each new commit's changes ONCE, and hands every watcher the
 * events under its prefix. A watcher may fall behind but never loses an event: its queue holds them.
 */
export class BranchFeed {
  private readonly subscribers = new Set<Subscriber>();
  /** Subscribers by prefix: an event goes to the watchers of its key's ancestors, found without scanning them all. */
  private readonly byPrefix = new Map<string, Set<Subscriber>>();
  private last: string | null = null;
  private started = false;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly db: ObjectDb,
    private readonly readHead: () => Promise<string | null>,
    private readonly pollMs: number,
  ) {}

  /** Runs feed work one step at a time, so heads are processed in order and subscriptions land between steps. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Processes whatever commits arrived since the last look. */
  poke(): Promise<void> {
    return this.serial(() => this.catchUp());
  }

  private async catchUp(): Promise<void> {
    const head = await this.readHead();
    if (!this.started) {
      this.started = true;
      this.last = head;
      return;
    }
    // A branch deleted (for now) keeps its last head: if it comes back, its watchers get the difference between
    // what they last saw and what it is then, not its whole history again.
    if (head === this.last || head === null) return;
    if (this.subscribers.size > 0) {
      for (const group of await eventsBetween(this.db, this.last, head)) {
        const perSubscriber = new Map<Subscriber, WatchEvent[]>();
        for (const event of group.events) {
          for (const prefix of ancestors(event.key)) {
            for (const sub of this.byPrefix.get(prefix) ?? []) {
              const list = perSubscriber.get(sub);
              if (list) list.push(event);
              else perSubscriber.set(sub, [event]);
            }
          }
        }
        for (const [sub, events] of perSubscriber) {
          sub.queue.push(events.length === group.events.length ? group : { commit: group.commit, events });
          sub.wake?.();
        }
      }
    }
    this.last = head;
  }

  /** Subscribes at the current head: returns the subscriber and the head its live events start after. */
  subscribe(prefix: string): Promise<{ sub: Subscriber; head: string | null }> {
    return this.serial(async () => {
      await this.catchUp();
      const sub: Subscriber = { prefix, queue: [], wake: null, closed: false };
      this.subscribers.add(sub);
      const same = this.byPrefix.get(prefix) ?? new Set<Subscriber>();
      this.byPrefix.set(prefix, same);
      same.add(sub);
      this.timer ??= setInterval(() => void this.poke().catch(() => {}), this.pollMs);
      return { sub, head: this.last };
    });
  }

  unsubscribe(sub: Subscriber): void {
    sub.closed = true;
    sub.wake?.();
    this.subscribers.delete(sub);
    const same = this.byPrefix.get(sub.prefix);
    same?.delete(sub);
    if (same?.size === 0) this.byPrefix.delete(sub.prefix);
    if (this.subscribers.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  close(): void {
    for (const sub of [...this.subscribers]) this.unsubscribe(sub);
  }
}

/** What callers use of a watch, local or over HTTP. */
export interface WatchApi extends AsyncIterable<WatchEvent> {
  commits(): AsyncIterable<CommitEvents>;
  close(): void;
}

/** An open watch: iterate it for events (or `commits()` for them grouped by commit); `close()` ends it. */
export class Watch implements WatchApi {
  constructor(
    private readonly feed: BranchFeed,
    private readonly sub: Subscriber,
    private readonly replay: CommitEvents[],
    /** The commit the events start after: `since`, or the head when the watch began (null: an empty branch). */
    readonly after: string | null,
  ) {}

  /** The events grouped by commit, oldest first: the replay of `since`, then live ones as they come. */
  async *commits(): AsyncGenerator<CommitEvents> {
    try {
      for (const group of this.replay) {
        if (this.sub.closed) return;
        yield group;
      }
      while (!this.sub.closed) {
        const next = this.sub.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.sub.wake = resolve;
        });
        this.sub.wake = null;
      }
    } finally {
      this.close();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchEvent> {
    for await (const group of this.commits()) yield* group.events;
  }

  /** Ends the watch; a pending iteration finishes. */
  close(): void {
    this.feed.unsubscribe(this.sub);
  }
}
