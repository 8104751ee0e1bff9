import { invalidArgument, notFound, tooLarge } from '../errors.js';
import { type Identity, signatureTime } from '../history/commit-info.js';
import { CompactionMaps, type MapHit, reaches } from '../history/compaction-map.js';
import { type ResolveOptions, resolveRevision } from '../history/revision.js';
import { MERGE_CONFIG_KEY, type MergePolicy, policyFromFile } from '../merge/config.js';
import type { Signature } from '../objects/commit.js';
import { ObjectDb } from '../objects/db.js';
import { EMPTY_TREE, utf8 } from '../objects/object.js';
import { isTreeMode } from '../objects/tree.js';
import type { Files } from '../storage/fs.js';
import { Journal } from '../storage/journal.js';
import { Leftovers } from '../storage/leftovers.js';
import { Refs } from '../storage/refs.js';
import { lookup } from '../tree/editor.js';
import { branchNameProblem, checkBranchName } from '../tree/keys.js';
import { StoreSchemas } from './schemas.js';
import type { Consistency, OpenOptions, Value } from './types.js';
import type { BranchFeed } from './watch.js';
import { type Apply, type BranchIo, BranchWriter, type Head, type WriteContext } from './writer.js';

const DEFAULT_AUTHOR: Identity = { name: 'gitstore', email: 'gitstore@localhost' };

export const toBytes = (value: Value): Uint8Array => (typeof value === 'string' ? utf8.encode(value) : value);

/** A commit message: the generated subject line, then the caller's text after a blank line. */
export const commitMessage = (subject: string, extra?: string): string =>
  extra?.trim() ? `${subject}\n\n${extra.trim()}\n` : `${subject}\n`;

interface CachedHead extends Head {
  checkedAt: number;
  /** The ref's version (Refs.version) the head was read at; undefined when this process moved it. */
  version?: string;
}

/** A `stat` of a branch's ref in flight, and the one readers who came too late for it wait for. */
interface VersionCheck {
  ticket: number;
  promise: Promise<string>;
  next?: Promise<string>;
}

/**
 * What the store's facade and its facets (history, merges, transactions, maintenance) share: the repository, the
 * branch heads readers see, one serial writer per branch, commit signatures, and revision resolution. Facets are
 * given the core, never the facade, so the layering runs one way (docs/ARCHITECTURE.md, "The store").
 */
export class StoreCore {
  readonly db: ObjectDb;
  readonly refs: Refs;
  /** This process's write-ahead journal (null: durability `sync`, or a store that is not durable). */
  readonly journal: Journal | null;
  /** The refs the branch writers move: without fsync when the journal makes their moves durable. */
  private readonly writeRefs: Refs;
  readonly maps: CompactionMaps;
  /** The branches' schemas: every write is checked against them before it can be published. */
  readonly schemas: StoreSchemas;
  /** Locks and temporary files that dead store processes left: removed at open and by a periodic sweep. */
  readonly leftovers: Leftovers;
  /** Branch feeds of watches, poked when this process moves a branch. */
  readonly feeds = new Map<string, BranchFeed>();
  readonly batchListeners = new Set<(event: { branch: string; writes: number }) => void>();
  readonly clock: () => Date;
  private readonly writers = new Map<string, BranchWriter>();
  private readonly heads = new Map<string, CachedHead>();
  private readonly loadingHeads = new Map<string, { ticket: number; promise: Promise<CachedHead> }>();
  private readonly checks = new Map<string, VersionCheck>();
  /** Orders reads, ref checks and reloads of heads (see head()). */
  private ticket = 0;
  private readonly consistency: Consistency;
  private readonly author: Identity;
  private readonly refreshMs: number;
  private readonly maxValueBytes: number;

  constructor(
    readonly files: Files,
    readonly dir: string,
    readonly defaultBranch: string,
    readonly options: OpenOptions,
  ) {
    this.db = new ObjectDb(files, dir);
    this.refs = new Refs(files, dir, {
      lockTimeoutMs: options.lockTimeoutMs ?? 10_000,
      staleLockMs: options.staleLockMs ?? 30_000,
    });
    this.journal = files.durable && options.durability !== 'sync' ? new Journal(files, dir, options.journal) : null;
    this.writeRefs = this.journal ? this.refs.volatile() : this.refs;
    this.clock = options.clock ?? (() => new Date());
    this.author = options.author ?? DEFAULT_AUTHOR;
    this.refreshMs = options.refreshMs ?? 10;
    this.consistency = options.consistency ?? 'linearizable';
    this.maxValueBytes = options.maxValueBytes ?? 16 << 20;
    this.maps = new CompactionMaps(this.db, this.refs);
    this.schemas = new StoreSchemas(this.db);
    this.leftovers = new Leftovers(files, dir, options.staleLockMs ?? 30_000);
  }

  refName(branch: string): string {
    return `refs/heads/${checkBranchName(branch)}`;
  }

  // ---- heads -------------------------------------------------------------------------------------------------

  /** Reads a branch's head from its ref (bypassing the cache) and caches it. */
  async loadHead(branch: string): Promise<CachedHead> {
    const ref = this.refName(branch);
    // The version first: what is read after it is at least that new, so the cache never claims a newer version.
    const version = await this.refs.version(ref);
    const commit = await this.refs.read(ref);
    const head: CachedHead = {
      commit,
      tree: commit ? (await this.db.readCommit(commit)).tree : null,
      checkedAt: Date.now(),
      version,
    };
    this.heads.set(branch, head);
    return head;
  }

  /**
   * The head a read sees. Linearizable (the default): every write acknowledged before the read began, by any process
   * or plain git, is in it — one `stat` of the ref tells whether the cached head is still the branch's head.
   * `cached`: the cached head, re-checked at most every `refreshMs` (faster; may miss the last few ms of other
   * processes' writes). See docs/ARCHITECTURE.md, "Readers and the head cache".
   */
  async head(branch: string, consistency: Consistency = this.consistency): Promise<Head> {
    const ticket = ++this.ticket;
    const cached = this.heads.get(branch);
    if (cached) {
      if (consistency === 'cached') {
        if (Date.now() - cached.checkedAt < this.refreshMs) return this.existing(branch, cached);
      } else if (cached.version !== undefined && cached.version === (await this.refVersion(branch, ticket))) {
        return this.existing(branch, cached);
      }
    }
    // Concurrent readers share one reload of the ref — but only one that began after they did, or it might have
    // read the ref before a write they must see.
    let loading = this.loadingHeads.get(branch);
    if (!loading || loading.ticket < ticket) {
      const started = { ticket: ++this.ticket, promise: this.loadHead(branch) };
      loading = started;
      this.loadingHeads.set(branch, started);
      void started.promise
        .finally(() => {
          if (this.loadingHeads.get(branch) === started) this.loadingHeads.delete(branch);
        })
        .catch(() => {});
    }
    return this.existing(branch, await loading.promise);
  }

  /**
   * The branch ref's version, from a `stat` that began after the read holding `ticket` did. Readers arriving while
   * an older stat is in flight share the next one: under load one stat serves a whole wave of reads.
   */
  private refVersion(branch: string, ticket: number): Promise<string> {
    const current = this.checks.get(branch);
    if (current && current.ticket > ticket) return current.promise;
    if (current) {
      current.next ??= current.promise.catch(() => {}).then(() => this.refVersion(branch, ticket));
      return current.next;
    }
    const check: VersionCheck = { ticket: ++this.ticket, promise: this.refs.version(this.refName(branch)) };
    this.checks.set(branch, check);
    void check.promise
      .finally(() => {
        if (this.checks.get(branch) === check) this.checks.delete(branch);
      })
      .catch(() => {});
    return check.promise;
  }

  /** Forgets what this process knows of a branch (it was created or deleted). */
  forget(branch: string): void {
    this.heads.delete(branch);
    this.writers.delete(branch);
  }

  /** A head without a commit is the unborn default branch, or a branch that does not exist: NOT_FOUND for that. */
  existing<H extends Head>(branch: string, head: H): H {
    if (!head.commit && branch !== this.defaultBranch) {
      throw notFound('branch', branch, `create it with \`store branch ${branch}\``);
    }
    return head;
  }

  // ---- the write path ----------------------------------------------------------------------------------------

  /** How a branch's writer reads and moves its ref, and tells this process that it moved. */
  private branchIo(branch: string): BranchIo {
    const ref = this.refName(branch);
    return {
      readHead: async () => this.existing(branch, await this.loadHead(branch)),
      prepareSwap: (expected, next) => this.writeRefs.prepareSwap(ref, expected, next),
      holdRef: async () => {
        const held = await this.writeRefs.hold(ref);
        try {
          const tree = held.current ? (await this.db.readCommit(held.current)).tree : null;
          const head = { commit: held.current, tree, checkedAt: Date.now() };
          this.heads.set(branch, head);
          return { ...held, head: this.existing(branch, head) };
        } catch (e) {
          await held.abort();
          throw e;
        }
      },
      writeObjects: (objects) => this.db.write(objects, !this.journal),
      durably: (written, old, next, move) =>
        this.journal
          ? this.journal.append({ refs: [{ ref, old, next }], packs: written ? [written] : [] }, move)
          : move(),
      published: (head) => {
        this.heads.set(branch, { ...head, checkedAt: Date.now() });
        void this.feeds
          .get(branch)
          ?.poke()
          .catch(() => {});
      },
    };
  }

  private writer(branch: string): BranchWriter {
    let w = this.writers.get(branch);
    if (!w) {
      w = new BranchWriter(this.db, this.branchIo(branch), (writes) => {
        for (const listener of this.batchListeners) listener({ branch, writes });
      });
      this.writers.set(branch, w);
    }
    return w;
  }

  /**
   * Runs `apply` in the branch's serial writer (default: the default branch); see writer.ts. The tree it leads to
   * must satisfy the branch's schemas (schemas.ts): every write path comes through here, so none can skip them. A
   * request refused by them fails alone — its objects are dropped, and the rest of its batch is published.
   */
  write<T>(branch: string | undefined, apply: Apply<T>, options: { force?: boolean } = {}): Promise<T> {
    return this.writer(branch ?? this.defaultBranch).submit(async (ctx) => {
      const applied = await apply(ctx);
      await this.schemas.checkMove(ctx.head.tree, applied.head.tree, options.force, ctx.trees);
      return applied;
    });
  }

  /** Waits until every queued write has been answered. */
  async idle(): Promise<void> {
    for (const w of this.writers.values()) await w.idle();
  }

  /** A commit's author or committer line: the identity (default: the store's), with its own date or `now`. */
  signature(author: Identity | undefined, now = this.clock()): Signature {
    const who = author ?? this.author;
    if (!who.name?.trim() || /[<>\n]/.test(who.name + who.email)) {
      throw invalidArgument('an author needs a name, and neither name nor email may contain <, > or a newline');
    }
    return { name: who.name, email: who.email, ...signatureTime(who, now) };
  }

  /** Author and committer of a write: one clock reading, so an undated pair has the same time. */
  signatures(who: { author?: Identity; committer?: Identity }): [Signature, Signature] {
    const now = this.clock();
    const author = this.signature(who.author, now);
    return [author, this.signature(who.committer ?? { name: author.name, email: author.email }, now)];
  }

  /**
   * Commits an edited tree on the head, unless the tree came out as it was: then the head stays and `changed` is
   * false (no empty commits; see WriteResult).
   */
  commitTree(
    ctx: WriteContext,
    tree: string,
    message: string,
    who: { author?: Identity; committer?: Identity },
  ): { head: Head; changed: boolean } {
    if (ctx.head.commit && tree === (ctx.head.tree ?? EMPTY_TREE)) return { head: ctx.head, changed: false };
    const parents = ctx.head.commit ? [ctx.head.commit] : [];
    return { head: ctx.commit(tree, parents, message, ...this.signatures(who)), changed: true };
  }

  checkSize(key: string, bytes: Uint8Array): void {
    if (bytes.length > this.maxValueBytes) throw tooLarge(`the value of ${key}`, bytes.length, this.maxValueBytes);
  }

  // ---- revisions ---------------------------------------------------------------------------------------------

  /** Resolves a revision (branch, commit id or prefix, `rev~N`, `rev^N`, ISO time) to a commit id. */
  resolve(rev: string, contextBranch = this.defaultBranch, options: ResolveOptions = {}): Promise<string> {
    return resolveRevision(
      {
        db: this.db,
        contextBranch,
        // A full ref name (`refs/remotes/origin/main`, what a pull merges) is read as it is, as git reads it.
        branchHead: async (name) =>
          name.startsWith('refs/') && branchNameProblem(name) === null
            ? this.refs.read(name)
            : (await this.loadHead(checkBranchName(name))).commit,
        compacted: (id) => this.compactedId(id),
      },
      rev,
      options,
    );
  }

  /** The tree a read looks at: a branch head, or a revision when `at` is given. */
  async treeAt(
    branch: string | undefined,
    at: string | undefined,
    consistency?: Consistency,
    nearest?: ResolveOptions['nearest'],
  ): Promise<Head> {
    const b = branch ?? this.defaultBranch;
    if (at === undefined) return this.head(b, consistency);
    const commit = await this.resolve(at, b, { nearest });
    return { commit, tree: (await this.db.readCommit(commit)).tree };
  }

  /** The heads of every branch but `branch`, and of the tags. */
  async otherHeads(branch: string): Promise<string[]> {
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

  /** A value in a tree, or null when absent or a directory (the `.store/*.json` configuration files). */
  async fileAt(tree: string | null, key: string): Promise<Uint8Array | null> {
    const entry = await lookup(this.db, tree, key.split('/'));
    return entry && !isTreeMode(entry.mode) ? this.db.readBlob(entry.oid) : null;
  }

  /** The merge policy of a tree: its `.store/merge.json`. */
  async policyAt(tree: string | null): Promise<MergePolicy> {
    return policyFromFile(await this.fileAt(tree, MERGE_CONFIG_KEY));
  }
}
