import { StoreError } from '../errors.js';
import { StoreClient } from '../http/client.js';
import { isAncestor } from '../merge/merge-base.js';
import type { GitObject } from '../objects/object.js';
import type { Store } from '../store/store.js';
import type { PullResult } from '../store/types.js';
import type { ReplicationConfig } from './config.js';

/**
 * Keeps a store's branches in step with its peers (docs/ARCHITECTURE.md, "Replication"). Every replica takes writes
 * locally; for each peer and branch a loop pulls the peer's head over git and merges it with the branch's strategies,
 * and on each timer tick pushes our head back when the peer lacks it (the peer takes it when it is a fast-forward).
 * Merges are deterministic (same heads in, same commit out, on every replica), so replicas that merged each other's
 * heads end on one commit and stop: no ping-pong. A round runs at once when the peer's watch reports a commit, and
 * on the timer (`intervalMs`) whatever happens, which is what catches up a peer whose watch is down.
 */

/** Where one branch stands with one peer. */
export interface PeerBranchStatus {
  peer: string;
  branch: string;
  /**
   * `ok`: the last round pulled and merged; `conflict`: a key under the `conflict` strategy (or a value a strategy
   * cannot merge) differs on both sides, and this branch stops replicating from this peer until a person merges by
   * hand (local writes go on); `invalid`: the merged result would break the branch's schemas (.store/schema.json),
   * so it is not taken — until the values are fixed on one side, or an admin merges by hand with `--force` where the
   * schemas changed; `unreachable`: the peer did not answer, retried every interval; `starting`: no round finished
   * yet.
   */
  state: 'starting' | 'ok' | 'conflict' | 'invalid' | 'unreachable';
  /** ISO time of the last round that pulled without error. */
  lastSync: string | null;
  /** The peer's head we last fetched, and ours after merging it. */
  peerHead: string | null;
  localHead: string | null;
  /** Rounds run, and rounds that merged something in. */
  rounds: number;
  merges: number;
  /** With `conflict`: the keys; with `invalid` and `unreachable`: why. */
  conflicts?: string[];
  error?: string;
  /** ISO time the current conflict or outage started. */
  since?: string;
}

export interface ReplicationStatus {
  peers: string[];
  branches: string[];
  intervalMs: number;
  links: PeerBranchStatus[];
}

export interface ReplicatorOptions {
  /** Told of state changes (a conflict found or cleared, a peer lost or back); `store serve` logs them. */
  log?: (level: 'info' | 'warn', message: string) => void;
  /** Limit for one git fetch or push (default 30 s). */
  timeoutMs?: number;
  /**
   * The token sent to every peer (`store serve` reads it from $STORE_PEER_TOKEN), once peers have auth on. It needs
   * write on the replicated branches there, and admin on them when `.store/` files replicate too.
   */
  token?: string;
}

/** The git server of a peer (`store serve` serves git under /git). */
export const gitUrlOf = (peer: string) => `${peer}/git`;

const nowIso = () => new Date().toISOString();

/** Least time from the start of one round of a link to the next (triggers in between are coalesced). */
const MIN_GAP_MS = 250;

/** One peer and one branch: a loop that runs one round at a time and coalesces the triggers that arrive meanwhile. */
class Link {
  readonly status: PeerBranchStatus;
  private running: Promise<void> | null = null;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private pushDue = false;
  private watchClient: StoreClient | null = null;
  /** Speaks to the peer's API for pulls (kept, so its connection is reused). */
  private client: StoreClient | null = null;
  /** Our head at the last timer tick: a peer that has not taken it since is pushed to. */
  private offered: string | null = null;

  constructor(
    private readonly store: Store,
    private readonly config: ReplicationConfig,
    readonly peer: string,
    readonly branch: string,
    private readonly options: ReplicatorOptions,
  ) {
    this.status = {
      peer,
      branch,
      state: 'starting',
      lastSync: null,
      peerHead: null,
      localHead: null,
      rounds: 0,
      merges: 0,
    };
  }

  start(): void {
    this.trigger(true);
    void this.watchPeer();
  }

  /**
   * Asks for a round: now when idle, or right after the one in flight (triggers arriving meanwhile make one round).
   * Rounds start at least MIN_GAP_MS apart. `push`: this round also pushes our head when the peer lacks it. Only the
   * timer asks for that: in a mesh every peer pulls on our watch anyway, and a push costs the peer a check of what it
   * receives, so pushing on every local write would spend the CPU the writes need (measured: three replicas at
   * 100 writes/s each fell to under 5 writes/s each when every write pushed to every peer).
   */
  trigger(push = false): void {
    if (this.stopped) return;
    if (push) this.pushDue = true;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const started = Date.now();
    this.running = this.round()
      .catch((e: unknown) => {
        // Not a StoreError: a bug or an I/O failure. The loop must go on (a rejected round would end the server),
        // and the log needs the stack.
        this.settle('unreachable', { error: 'an unexpected error; see the server log' });
        this.options.log?.('warn', `replication of ${this.branch} with ${this.peer}: ${(e as Error)?.stack ?? e}`);
      })
      .finally(() => {
        this.running = null;
        if (this.stopped) return;
        const gap = Math.max(0, MIN_GAP_MS - (Date.now() - started));
        if (this.again) {
          this.again = false;
          this.timer = setTimeout(() => this.trigger(), gap);
        } else this.timer = setTimeout(() => this.trigger(true), this.config.intervalMs);
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.watchClient?.close();
    await this.running;
    await this.client?.close();
  }

  /**
   * One round: pull (the peer's new objects + a deterministic merge), then, on the timer, push our head back when
   * the peer has not taken it by itself.
   */
  private async round(): Promise<void> {
    const { store, peer, branch, status } = this;
    const remote = gitUrlOf(peer);
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    status.rounds++;
    try {
      const pulled = await this.pull(remote, timeoutMs);
      const moved = pulled.fetched.find((u) => u.ref.endsWith(`/${branch}`));
      if (moved) status.peerHead = moved.new;
      if (pulled.merge.outcome !== 'up-to-date') status.merges++;
      status.localHead = pulled.merge.commit;
      this.settle('ok');
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      if (e.code === 'CONFLICT') {
        const conflicts = ((e.data as { conflicts?: { key: string }[] }).conflicts ?? []).map((c) => c.key);
        this.settle('conflict', { conflicts });
        return; // replication of this branch from this peer stops: pushing would spread a half-merged state
      }
      if (e.code === 'INVALID_VALUE') {
        this.settle('invalid', { error: e.message });
        return; // as for a conflict: nothing is taken, and the peer is not offered ours
      }
      if (e.code !== 'NOT_FOUND') {
        this.settle('unreachable', { error: e.message });
        return;
      }
      // The peer does not have the branch yet (or neither side has): pushing ours below creates it there.
      status.peerHead = null;
      this.settle('ok');
    }
    if (!this.pushDue) return;
    this.pushDue = false;
    const ours = status.localHead ?? (await this.localHead());
    const offered = this.offered;
    this.offered = ours;
    // Nothing to push; or the peer pulls us (in a mesh every peer does, on our watch) and has taken what we had at
    // the last tick. A push would cost the peer a check of what it receives, for nothing.
    if (ours === null || ours === status.peerHead) return;
    if (offered !== null && status.peerHead !== null && (await this.has(status.peerHead, offered))) return;
    try {
      const pushed = await store.push(remote, { branch, timeoutMs, token: this.options.token });
      const moved = pushed.updated.find((u) => u.ref.endsWith(`/${branch}`));
      if (moved?.new) status.peerHead = moved.new;
    } catch (e) {
      // Rejected as a non-fast-forward: the peer moved meanwhile; it pulls us (or we pull it next round).
      if (!(e instanceof StoreError)) throw e;
      if (e.code !== 'PUSH_REJECTED' && e.code !== 'NOT_FOUND') this.settle('unreachable', { error: e.message });
    }
  }

  /**
   * Fetches the peer's branch and merges it. The peer sends the commits we lack over its API (Store.outgoing), which
   * costs no process on either side: with git's transport every round started four (git fetch here, git
   * http-backend and upload-pack there), and with three replicas at 20 writes/s each the lag's p99 was 6.2 s against
   * 0.8 s now (README, "Replication"). git still carries what is too big for one answer: a first sync, a rewritten
   * history.
   */
  private async pull(remote: string, timeoutMs: number): Promise<PullResult> {
    const { store, branch, status } = this;
    const pull = { branch, deterministic: true, timeoutMs, message: 'replicate', token: this.options.token };
    const have = [await this.localHead(), status.peerHead].filter((h): h is string => h !== null);
    let offer: { head: string; objects: GitObject[] };
    try {
      this.client ??= new StoreClient(this.peer, { token: this.options.token });
      offer = await this.client.outgoing(branch, have, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      if (e instanceof StoreError && e.code === 'TOO_LARGE') return store.pull(remote, pull);
      throw e;
    }
    return store.pullObjects(remote, offer.head, offer.objects, pull);
  }

  /** Our head of the branch (null: none yet). */
  private async localHead(): Promise<string | null> {
    return this.store.refs.read(`refs/heads/${this.branch}`);
  }

  /** Whether `commit` is in `head`'s history. */
  private has(head: string, commit: string): Promise<boolean> {
    return isAncestor((oid) => this.store.db.readCommit(oid), commit, head);
  }

  private settle(state: PeerBranchStatus['state'], detail: { conflicts?: string[]; error?: string } = {}): void {
    const { status } = this;
    const was = status.state;
    const changed =
      was !== state ||
      JSON.stringify(status.conflicts ?? null) !== JSON.stringify(detail.conflicts ?? null) ||
      ((state === 'unreachable' || state === 'invalid') && status.error !== detail.error);
    if (state === 'ok') status.lastSync = nowIso();
    if (!changed) return;
    status.state = state;
    status.conflicts = detail.conflicts;
    status.error = detail.error;
    status.since = state === 'ok' ? undefined : nowIso();
    const what = `replication of ${this.branch} from ${this.peer}`;
    if (state === 'conflict') {
      this.options.log?.(
        'warn',
        `${what} stopped: conflicting keys ${detail.conflicts?.join(', ')}; merge by hand ` +
          `(store pull ${gitUrlOf(this.peer)} --branch ${this.branch}) to resume`,
      );
    } else if (state === 'invalid') {
      this.options.log?.('warn', `${what} stopped: the merged result would break the schemas: ${detail.error}`);
    } else if (state === 'unreachable') this.options.log?.('warn', `${what}: peer unreachable (${detail.error})`);
    else if (was !== 'starting') this.options.log?.('info', `${what} resumed`);
  }

  /** Follows the peer's watch on the branch: each commit there starts a round here. Reopened while running. */
  private async watchPeer(): Promise<void> {
    while (!this.stopped) {
      try {
        this.watchClient = new StoreClient(this.peer, { token: this.options.token });
        const watch = await this.watchClient.watch({ branch: this.branch, prefix: '' });
        for await (const { commit } of watch.commits()) {
          if (this.stopped) break;
          // The peer moved to a commit we made or fetched already (it took our merge, as a fast-forward): nothing
          // to pull. In a mesh that is most of the peer's moves once writes pause.
          if (commit === this.status.localHead || commit === this.status.peerHead) continue;
          this.trigger();
        }
      } catch {
        // The peer is down or lacks the branch: the timer keeps pulling; try its watch again later.
      } finally {
        await this.watchClient?.close();
        this.watchClient = null;
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, Math.max(this.config.intervalMs, 1000)));
    }
  }
}

/** The replication loops of one store: one Link per peer and branch. */
export class Replicator {
  private readonly links: Link[] = [];

  constructor(
    store: Store,
    readonly config: ReplicationConfig,
    options: ReplicatorOptions = {},
  ) {
    for (const peer of config.peers)
      for (const branch of config.branches) this.links.push(new Link(store, config, peer, branch, options));
  }

  start(): void {
    for (const link of this.links) link.start();
  }

  status(): ReplicationStatus {
    const { peers, branches, intervalMs } = this.config;
    return { peers, branches, intervalMs, links: this.links.map((l) => ({ ...l.status })) };
  }

  async stop(): Promise<void> {
    await Promise.all(this.links.map((l) => l.stop()));
  }
}
