import { isStoreError, notFound, StoreError } from '../errors.js';
import { parsePolicy } from '../merge/config.js';
import { isAncestor } from '../merge/merge-base.js';
import { incoming } from '../objects/incoming.js';
import type { GitObject } from '../objects/object.js';
import { outgoing } from '../objects/outgoing.js';
import { addRemote, listRemotes, removeRemote, resolveRemote } from '../remote/config.js';
import { fetchRemote } from '../remote/fetch.js';
import { notOnDisk } from '../remote/git.js';
import { pushRemote } from '../remote/push.js';
import { checkBranchName, checkMessage } from '../tree/keys.js';
import type { StoreCore } from './core.js';
import type {
  FetchOptions,
  FetchResult,
  MergeOptions,
  MergeResult,
  PullOptions,
  PullResult,
  PushOptions,
  PushResult,
  RefUpdate,
  RemoteInfo,
  Remotes,
} from './types.js';

/** Most objects `outgoing` sends in one answer (a few seconds of writes at most; a first sync takes git's packs). */
const OUTGOING_LIMIT = 20_000;

/** How the facet merges what it fetched: the store's merge (StoreMerges.merge), given as a function. */
type Merge = (from: string, options: MergeOptions & { deterministic?: boolean }) => Promise<MergeResult>;

/**
 * Remotes, fetch, pull and push: git's own transports, run by the `git` program on the store's repository
 * (src/remote/). A pull merges what it fetched with the store's merge, so its conflicts are a merge's.
 */
export class StoreRemotes implements Remotes {
  constructor(
    private readonly core: StoreCore,
    private readonly merge: Merge,
  ) {}

  /** The repository git works on; an in-memory store has none (git cannot open memfs). */
  private gitDir(what: string): string {
    if (this.core.options.memory) throw notOnDisk(what);
    return this.core.dir;
  }

  private readonly isAncestor = (a: string, b: string) => isAncestor((o) => this.core.db.readCommit(o), a, b);

  async add(name: string, url: string): Promise<RemoteInfo> {
    return addRemote(this.gitDir('add a remote'), name, url);
  }

  async list(): Promise<RemoteInfo[]> {
    return listRemotes(this.gitDir('list the remotes'));
  }

  async remove(name: string): Promise<void> {
    return removeRemote(this.gitDir('remove a remote'), name);
  }

  /** Fetches every branch of a remote (default `origin`; or a URL) into its remote-tracking refs. */
  async fetch(remote = 'origin', options: FetchOptions = {}): Promise<FetchResult> {
    const gitDir = this.gitDir(`fetch from ${remote}`);
    const target = await resolveRemote(gitDir, remote);
    const updated = await fetchRemote(gitDir, this.core.refs, target, this.isAncestor, options);
    return { remote, updated };
  }

  /**
   * Fetches one branch of a remote and merges it into the same branch here, with the branch's strategies
   * (`.store/merge.json`) unless `strategy` overrides them. A branch with nothing of its own moves to the remote's
   * commit (as `git pull` fast-forwards); one that does not exist here is created there. CONFLICT (with
   * `data.conflicts`) writes nothing to the branch; the remote-tracking ref has moved all the same.
   */
  async pull(remote = 'origin', options: PullOptions = {}): Promise<PullResult> {
    const { core } = this;
    const branch = checkBranchName(options.branch ?? core.defaultBranch);
    // Bad input fails before anything is fetched.
    checkMessage(options.message);
    if (options.strategy !== undefined) parsePolicy(options.strategy, 'the strategy option');
    core.signatures(options);
    const gitDir = this.gitDir(`pull from ${remote}`);
    const target = await resolveRemote(gitDir, remote);
    const fetched = await fetchRemote(gitDir, core.refs, target, this.isAncestor, {
      branch,
      onProgress: options.onProgress,
      timeoutMs: options.timeoutMs,
      token: options.token,
    });
    const tracking = `refs/remotes/${target.tracking}/${branch}`;
    const theirs = await core.refs.read(tracking);
    if (!theirs) throw notFound('branch', branch, `${target.label} has no branch ${branch}`);
    const merge = await this.mergeFetched(tracking, theirs, branch, options);
    return { remote, branch, fetched, merge };
  }

  /**
   * The commits of `branch` that a repository holding `haves` lacks, with their trees and blobs: what a replica asks
   * its peer for each round instead of running git (src/objects/outgoing.ts). TOO_LARGE past `limit` objects: a
   * transfer that big (a first sync, a history compaction rewrote) is git's.
   */
  async outgoing(
    branch: string,
    haves: readonly string[],
    limit = OUTGOING_LIMIT,
  ): Promise<{ head: string; objects: GitObject[] }> {
    const { core } = this;
    const name = checkBranchName(branch);
    const head = await core.refs.read(core.refName(name));
    if (!head) throw notFound('branch', name);
    const oids = await outgoing(core.db, head, haves, limit);
    if (oids === null) {
      throw new StoreError('TOO_LARGE', `more than ${limit} objects are new since the commits given: fetch with git`, {
        limit,
      });
    }
    const objects: GitObject[] = [];
    for (const oid of oids) objects.push(await core.db.read(oid));
    return { head, objects };
  }

  /**
   * A pull from objects a peer sent (`outgoing` there) instead of from git: they are stored once they are known to be
   * whole (src/objects/incoming.ts), the tracking ref of `remote` (a URL: refs/remotes/<its tracking name>/<branch>)
   * moves to `head`, and `head` is merged as `pull` merges.
   */
  async pullObjects(
    remote: string,
    head: string,
    objects: readonly GitObject[],
    options: PullOptions = {},
  ): Promise<PullResult> {
    const { core } = this;
    const branch = checkBranchName(options.branch ?? core.defaultBranch);
    checkMessage(options.message);
    const target = await resolveRemote(core.dir, remote);
    const batch = await incoming(core.db, objects, head);
    await core.db.write(batch);
    const tracking = `refs/remotes/${target.tracking}/${branch}`;
    const old = await core.refs.read(tracking);
    const fetched: RefUpdate[] = [];
    // Not fsynced: a tracking ref lost in a crash is fetched again next round (its objects are durable, above).
    if (old !== head && (await core.refs.volatile().compareAndSwap(tracking, old, head))) {
      fetched.push({
        ref: tracking,
        old,
        new: head,
        ...(old && !(await this.isAncestor(old, head)) ? { forced: true } : {}),
      });
    }
    const merge = await this.mergeFetched(tracking, head, branch, options);
    return { remote, branch, fetched, merge };
  }

  private async mergeFetched(from: string, theirs: string, branch: string, options: PullOptions): Promise<MergeResult> {
    const { core } = this;
    const ref = core.refName(branch);
    const { strategy, message, author, committer, deterministic, force } = options;
    const mergeOptions = { into: branch, strategy, message, author, committer, deterministic, force };
    const ours = await core.refs.read(ref);
    if (ours === null && branch !== core.defaultBranch) {
      // A branch the remote has and this store has not: created at the remote's commit, as createBranch would.
      if (await core.refs.compareAndSwap(ref, null, theirs)) {
        core.forget(branch);
        return { commit: theirs, outcome: 'fast-forward' };
      }
    } else if (ours === null || (ours !== theirs && (await this.isAncestor(ours, theirs)))) {
      try {
        return await this.merge(from, { ...mergeOptions, ff: true });
      } catch (e) {
        // The branch moved on meanwhile: no longer a fast-forward, so a merge after all.
        const lost = isStoreError(e) && e.code === 'CONFLICT' && (e.data.conflicts as unknown[]).length === 0;
        if (!lost) throw e;
      }
    }
    return this.merge(from, mergeOptions);
  }

  /**
   * Pushes a branch (default: the default branch) to the same branch of a remote. PUSH_REJECTED when the remote
   * has commits this store lacks (pull first, or `force`), or declines the push.
   */
  async push(remote = 'origin', options: PushOptions = {}): Promise<PushResult> {
    const { core } = this;
    const branch = checkBranchName(options.branch ?? core.defaultBranch);
    const gitDir = this.gitDir(`push to ${remote}`);
    const target = await resolveRemote(gitDir, remote);
    const head = await core.refs.read(core.refName(branch));
    if (!head) throw notFound('branch', branch, 'it has no commits to push');
    const pullCommand = `store pull ${target.label}${branch === core.defaultBranch ? '' : ` --branch ${branch}`}`;
    const updated = await pushRemote(gitDir, target, {
      branch,
      head,
      force: options.force,
      pullCommand,
      onProgress: options.onProgress,
      timeoutMs: options.timeoutMs,
      token: options.token,
    });
    return { remote, updated };
  }
}
