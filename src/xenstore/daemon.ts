import type { Store } from '../store/store.js';
import type { Watch } from '../store/watch.js';
import { Connection, type ConnectionHost, type Peer, type WatchEntry } from './connection.js';

export type { Peer };

import { mkdirNode, nodeEdit, pathOfKey, readNode, treeSource } from './nodes.js';
import { segmentsOf } from './paths.js';
import { DEFAULT_QUOTAS, EntryCounter, type Quotas } from './quota.js';

export { DEFAULT_QUOTAS, type Quotas };

/**
 * The Xenstore daemon on top of a store: one branch holds the tree, every change is a commit (`xenstore: write
 * /local/domain/5/name`), a Xenstore transaction is a store transaction merged back as one merge commit, and it
 * fails with EAGAIN only when a node it read (value, children or permissions) changed meanwhile — disjoint work
 * never conflicts. Connections come from a transport (a Unix socket: dom0, privileged, as in Xen).
 */

/** Where a connection's bytes go. */

export class Xenstored implements ConnectionHost {
  readonly quotas: Quotas;
  private readonly connections = new Set<Connection>();
  private readonly introduced = new Set<number>([0]);
  private watch: Watch | null = null;
  /** Counts since start: requests answered, transactions committed, and those that failed with EAGAIN. */
  readonly stats = { requests: 0, committed: 0, eagain: 0 };
  readonly entries: EntryCounter;
  private pump: Promise<void> = Promise.resolve();

  private constructor(
    readonly store: Store,
    readonly branch: string,
    quotas: Partial<Quotas>,
    readonly log: (line: string) => void,
  ) {
    this.quotas = { ...DEFAULT_QUOTAS, ...quotas };
    this.entries = new EntryCounter(store.objects);
  }

  /** Starts serving a branch (created with the root nodes Xen's daemon starts with, when it has no commit yet). */
  static async start(
    store: Store,
    options: { branch?: string; quotas?: Partial<Quotas>; log?: (line: string) => void } = {},
  ): Promise<Xenstored> {
    const branch = options.branch ?? store.defaultBranch;
    const d = new Xenstored(store, branch, options.quotas ?? {}, options.log ?? (() => {}));
    if (!(await store.tip(branch).catch(() => ({ commit: null }))).commit) {
      await store.update('xenstore: initial nodes', (edit) => mkdirNode(nodeEdit(edit), ['tool', 'xenstored']), {
        branch,
      });
    }
    d.watch = await store.watch({ branch });
    d.pump = d.dispatchEvents(d.watch);
    return d;
  }

  /** A new client (dom0 for a socket connection). */
  connect(peer: Peer, domid = 0): Connection {
    const c = new Connection(this, peer, domid);
    this.connections.add(c);
    return c;
  }

  disconnected(c: Connection): void {
    this.connections.delete(c);
  }

  async close(): Promise<void> {
    for (const c of this.connections) await c.close();
    this.watch?.close();
    await this.pump.catch(() => {});
  }

  /**
   * Every committed change of the branch, as node paths, to the watches that cover them. A removed subtree also
   * fires for each of its nodes that has no value file of its own (a directory node), from the top down, as Xen's
   * daemon fires for every node an RM took.
   */
  private async dispatchEvents(watch: Watch): Promise<void> {
    for await (const { commit, events } of watch.commits()) {
      const paths = new Set<string>();
      const after = treeSource(this.store.objects, (await this.store.objects.readCommit(commit)).tree);
      for (const e of events) {
        const p = pathOfKey(e.key);
        if (!p) continue;
        if (e.oid === null) {
          const segments = segmentsOf(p);
          for (let n = 1; n < segments.length; n++) {
            if (!(await readNode(after, segments.slice(0, n)))) paths.add(`/${segments.slice(0, n).join('/')}`);
          }
        }
        paths.add(p);
      }
      // A watch registered after this daemon acknowledged the commit must not hear of it (as in Xen, where the
      // write happened before the watch existed). The branch feed can deliver it later than that under load.
      const ack = this.acks.get(commit);
      this.acks.delete(commit);
      for (const path of paths) this.fire(path, ack);
    }
  }

  /** How many commits of this daemon's clients have been acknowledged: a watch records it when registered. */
  acknowledgements = 0;
  private readonly acks = new Map<string, number>();

  /** A commit of one of this daemon's clients was acknowledged (before the feed may have delivered it). */
  acknowledged(commit: string): void {
    this.acks.set(commit, ++this.acknowledgements);
    // The feed delivers every commit and takes its entry; a bound all the same, should one never come.
    if (this.acks.size > 100_000) this.acks.delete(this.acks.keys().next().value!);
  }

  /** Watches by the path they watch: an event looks up its path's ancestors, not every connection. */
  private readonly watchers = new Map<string, Set<{ connection: Connection; entry: WatchEntry }>>();

  addWatch(connection: Connection, entry: WatchEntry): void {
    const set = this.watchers.get(entry.abs) ?? new Set();
    this.watchers.set(entry.abs, set);
    set.add({ connection, entry });
  }

  removeWatch(connection: Connection, entry: WatchEntry): void {
    const set = this.watchers.get(entry.abs);
    if (!set) return;
    for (const w of set) if (w.connection === connection && w.entry === entry) set.delete(w);
    if (set.size === 0) this.watchers.delete(entry.abs);
  }

  /** Sends `path` to every watch on it or an ancestor (or on `@introduceDomain` / `@releaseDomain`). */
  fire(path: string, acknowledgedAs?: number): void {
    const covering = path.startsWith('@')
      ? [path]
      : ['/', ...segmentsOf(path).map((_, i, all) => `/${all.slice(0, i + 1).join('/')}`)];
    for (const p of covering)
      for (const { connection, entry } of this.watchers.get(p) ?? []) {
        if (acknowledgedAs === undefined || entry.since < acknowledgedAs) connection.deliver(path, entry);
      }
  }

  introduce(domid: number): void {
    this.introduced.add(domid);
    this.fire('@introduceDomain');
  }

  release(domid: number): boolean {
    const had = this.introduced.delete(domid);
    if (had) this.fire('@releaseDomain');
    return had;
  }

  isIntroduced(domid: number): boolean {
    return this.introduced.has(domid);
  }
}
