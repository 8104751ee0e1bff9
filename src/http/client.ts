import type { TokenInfo } from '../access/tokens.js';
import { StoreError } from '../errors.js';
import type { BlameLine } from '../history/blame.js';
import type { CommitInfo, Identity } from '../history/commit-info.js';
import type { Change } from '../history/diff.js';
import type { LogOptions, LogPage } from '../history/log.js';
import type { ReadAt } from '../history/revision.js';
import type { GitObject } from '../objects/object.js';
import { decodeObjects } from '../objects/object-stream.js';
import type { CreatedToken, TokenAdmin } from '../store/access.js';
import type { Precondition } from '../store/precondition.js';
import type {
  BatchOp,
  BisectResult,
  BranchInfo,
  CompactOptions,
  CompactResult,
  FetchOptions,
  FetchResult,
  GcResult,
  ListEntry,
  MergeOptions,
  MergePreview,
  MergeResult,
  PullOptions,
  PullResult,
  PushOptions,
  PushResult,
  ReadOptions,
  RemoteInfo,
  Remotes,
  SetResult,
  Store,
  ValidationReport,
  Value,
  WriteOptions,
  WriteResult,
} from '../store/store.js';
import {
  type Isolation,
  retryTransaction,
  type TransactionApi,
  type TransactionOptions,
} from '../store/transaction.js';
import type { CommitEvents, WatchApi } from '../store/watch.js';
import { ClientTransaction } from './client-transaction.js';
import {
  CONTENT_TYPES,
  createTokenBody,
  decodeValue,
  EventStreamReader,
  encodeValue,
  errorOfResponse,
  etagOid,
  HEADERS,
  type Me,
  pathOf,
  type Query,
  ROUTES,
  type Route,
  type WireValue,
  writeHeaders,
} from './contract.js';

/** What the CLI (and any caller) needs of a store: a local Store or a StoreClient talking to `store serve`. */
export type StoreApi = StoreCalls & {
  begin(options?: TransactionOptions): Promise<TransactionApi>;
  watch(options?: { branch?: string; prefix?: string; since?: string }): Promise<WatchApi>;
};

type StoreCalls = Pick<
  Store,
  | 'read'
  | 'get'
  | 'getText'
  | 'stat'
  | 'resolve'
  | 'close'
  | 'set'
  | 'delete'
  | 'list'
  | 'batch'
  | 'branches'
  | 'createBranch'
  | 'deleteBranch'
  | 'merge'
  | 'mergePreview'
  | 'log'
  | 'commit'
  | 'changesOf'
  | 'diff'
  | 'revert'
  | 'snapshot'
  | 'gc'
  | 'compact'
  | 'bisect'
  | 'blame'
  | 'validate'
  | 'remotes'
  | 'fetch'
  | 'pull'
  | 'push'
  | 'tokens'
>;

/** A commit as the library gives it: the server adds `time` (the committer's) for readers of the JSON. */
function fromWire(c: CommitInfo & { time?: string }): CommitInfo {
  const { time: _time, ...info } = c;
  return info;
}

/** Options of a StoreClient. */
export interface ClientOptions {
  /** Author of commits whose caller names none (default: the server's). */
  author?: Identity;
  /** A token of `store token create`, sent as `Authorization: Bearer` (needed once the server's store has tokens). */
  token?: string;
}

type Params = Record<string, string>;

/**
 * The HTTP API as a StoreApi: the same calls, results and StoreError codes as a local store, so a caller cannot
 * tell the difference but for latency. Every URL, header and body format comes from the contract (./contract.ts).
 */
export class StoreClient implements StoreApi {
  private defaultBranch: string | undefined;
  private readonly author: Identity | undefined;
  private readonly authorization: Record<string, string>;
  /** Open watches, ended by close(). */
  private readonly watches = new Set<WatchApi>();

  constructor(
    private readonly base: string,
    options: ClientOptions = {},
  ) {
    this.base = base.replace(/\/+$/, '');
    this.author = options.author;
    this.authorization = options.token ? { authorization: `Bearer ${options.token}` } : {};
  }

  private async request(
    method: string,
    path: string,
    init: { body?: string | Uint8Array<ArrayBuffer>; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ) {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        body: init.body,
        headers: { ...this.authorization, ...init.headers },
        signal: init.signal,
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new StoreError(
        'REMOTE',
        `cannot reach the store server at ${this.base} (${cause}); is \`store serve\` running?`,
        { url: this.base },
      );
    }
    if (response.ok || response.status === 304) return response;
    throw errorOfResponse(response.status, await response.text());
  }

  private async json<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const init =
      body === undefined
        ? { headers }
        : { body: JSON.stringify(body), headers: { [HEADERS.contentType]: CONTENT_TYPES.json, ...headers } };
    const response = await this.request(method, path, init);
    return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
  }

  private async branch(name: string | undefined): Promise<string> {
    if (name) return name;
    this.defaultBranch ??= (await this.branches()).find((b) => b.default)?.name ?? 'main';
    return this.defaultBranch;
  }

  /** The route's path on a branch (default: the default branch). */
  private async on(route: Route, branch: string | undefined, params: Params = {}, query?: Query): Promise<string> {
    return pathOf(route, { branch: await this.branch(branch), ...params }, query);
  }

  private writeHeaders(options: WriteOptions & Precondition): Record<string, string> {
    return writeHeaders({ ...options, author: options.author ?? this.author });
  }

  private static async value(r: Response) {
    return {
      value: new Uint8Array(await r.arrayBuffer()),
      oid: etagOid(r.headers.get(HEADERS.etag) ?? ''),
      commit: r.headers.get(HEADERS.commit),
    };
  }

  async read(key: string, options: ReadOptions = {}) {
    const query = { at: options.at, nearest: options.nearest, consistency: options.consistency };
    const r = await this.request('GET', await this.on(ROUTES.key, options.branch, { key }, query));
    const { value, oid, commit } = await StoreClient.value(r);
    return { value, oid, commit: commit ?? '' };
  }

  /** A key's value as bytes. */
  async get(key: string, options: ReadOptions = {}): Promise<Uint8Array> {
    return (await this.read(key, options)).value;
  }

  /** A key's value as UTF-8 text. */
  async getText(key: string, options: ReadOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.get(key, options));
  }

  /** The blob oid and commit of a key (NOT_FOUND when absent or a directory). */
  async stat(key: string, options: ReadOptions = {}): Promise<{ oid: string; commit: string }> {
    const { oid, commit } = await this.read(key, options);
    return { oid, commit };
  }

  async set(key: string, value: Value, options: WriteOptions & Precondition = {}): Promise<SetResult> {
    const r = await this.request('PUT', await this.on(ROUTES.key, options.branch, { key }), {
      body: typeof value === 'string' ? value : new Uint8Array(value),
      headers: { [HEADERS.contentType]: CONTENT_TYPES.value, ...this.writeHeaders(options) },
    });
    return { ...((await r.json()) as Omit<SetResult, 'created'>), created: r.status === 201 };
  }

  async delete(key: string, options: WriteOptions & Precondition & { recursive?: boolean } = {}) {
    const path = await this.on(ROUTES.key, options.branch, { key }, { recursive: options.recursive });
    return this.json<WriteResult>('DELETE', path, undefined, this.writeHeaders(options));
  }

  /** A listing; with `limit` or `offset`, one page of it, and `total`, the whole listing's length. */
  async list(prefix = '', options: ReadOptions & { recursive?: boolean; limit?: number; offset?: number } = {}) {
    const { at, nearest, recursive, consistency, limit, offset } = options;
    const query = { at, nearest, recursive, consistency, limit, offset };
    const path = prefix
      ? await this.on(ROUTES.list, options.branch, { key: prefix }, query)
      : await this.on(ROUTES.listRoot, options.branch, {}, query);
    return this.json<{ commit: string | null; entries: ListEntry[]; total?: number }>('GET', path);
  }

  async batch(ops: BatchOp[], options: WriteOptions & { onProgress?: (done: number, total: number) => void } = {}) {
    const body = {
      message: options.message,
      ops: ops.map((op) =>
        op.op === 'set' && typeof op.value !== 'string' ? { ...op, ...encodeValue(op.value) } : op,
      ),
    };
    const r = await this.json<WriteResult>(
      'POST',
      await this.on(ROUTES.batch, options.branch),
      body,
      this.writeHeaders({ author: options.author, committer: options.committer, force: options.force }),
    );
    options.onProgress?.(ops.length, ops.length);
    return r;
  }

  async branches(): Promise<BranchInfo[]> {
    return this.json<BranchInfo[]>('GET', ROUTES.branches);
  }

  async createBranch(name: string, options: { from?: string } = {}): Promise<BranchInfo> {
    return this.json<BranchInfo>('POST', ROUTES.branches, { name, from: options.from });
  }

  async deleteBranch(name: string): Promise<void> {
    await this.json<void>('DELETE', pathOf(ROUTES.branch, { branch: name }));
  }

  async merge(from: string, options: MergeOptions = {}): Promise<MergeResult> {
    if (typeof options.strategy === 'object')
      throw new StoreError('INVALID_ARGUMENT', 'over HTTP, a merge takes one strategy name');
    return this.json<MergeResult>(
      'POST',
      await this.on(ROUTES.merge, options.into),
      {
        from,
        strategy: options.strategy,
        ff: options.ff,
        message: options.message,
        resolutions:
          options.resolutions &&
          Object.fromEntries(
            Object.entries(options.resolutions).map(([k, v]) => [k, v === null ? null : encodeValue(v)]),
          ),
      },
      this.writeHeaders({ author: options.author, committer: options.committer, force: options.force }),
    );
  }

  async mergePreview(from: string, options: MergeOptions = {}): Promise<MergePreview> {
    if (typeof options.strategy === 'object')
      throw new StoreError('INVALID_ARGUMENT', 'over HTTP, a merge takes one strategy name');
    type Wire = Omit<MergePreview, 'conflicts'> & {
      conflicts: (Omit<MergePreview['conflicts'][number], 'values'> & {
        values: Record<'base' | 'ours' | 'theirs', WireValue | null>;
      })[];
    };
    const wire = await this.json<Wire>('POST', await this.on(ROUTES.mergePreview, options.into), {
      from,
      strategy: options.strategy,
    });
    const bytes = (v: WireValue | null) => {
      if (v === null) return null;
      const d = decodeValue(v, 'a value the server sent');
      return typeof d === 'string' ? new TextEncoder().encode(d) : d;
    };
    return {
      ...wire,
      conflicts: wire.conflicts.map((c) => ({
        ...c,
        values: { base: bytes(c.values.base), ours: bytes(c.values.ours), theirs: bytes(c.values.theirs) },
      })),
    };
  }

  async log(options: LogOptions & { branch?: string; rev?: string } = {}): Promise<LogPage> {
    const query = { key: options.path, limit: options.limit, cursor: options.cursor ?? options.rev };
    const page = await this.json<LogPage>('GET', await this.on(ROUTES.log, options.branch, {}, query));
    return { ...page, commits: page.commits.map(fromWire) };
  }

  /** Resolves a revision to a commit id, on the server. */
  async resolve(rev: string, contextBranch?: string): Promise<string> {
    return (await this.commit(rev, { branch: contextBranch })).id;
  }

  async commit(rev: string, options: { branch?: string } = {}): Promise<CommitInfo> {
    const { changes: _changes, ...info } = await this.json<CommitInfo & { changes: Change[] }>(
      'GET',
      pathOf(ROUTES.commit, { rev }, { branch: options.branch }),
    );
    return fromWire(info);
  }

  async changesOf(rev: string, options: { branch?: string } = {}): Promise<Change[]> {
    const path = pathOf(ROUTES.commit, { rev }, { branch: options.branch });
    return (await this.json<{ changes: Change[] }>('GET', path)).changes;
  }

  async diff(from: string, to?: string, options: { branch?: string; prefix?: string } = {}): Promise<Change[]> {
    const query = { from, to, branch: options.branch, prefix: options.prefix };
    return (await this.json<{ changes: Change[] }>('GET', pathOf(ROUTES.diff, {}, query))).changes;
  }

  /** Key predicates only: a `test` function cannot travel over HTTP (the CLI's --run needs the repository). */
  async bisect(options: Parameters<Store['bisect']>[0]): Promise<BisectResult> {
    if (options.test || (!options.predicate && !options.invalid)) {
      throw new StoreError('INVALID_ARGUMENT', 'over HTTP, bisect takes a key predicate or invalid, not a test to run');
    }
    const r = await this.json<BisectResult>('POST', await this.on(ROUTES.bisect, options.branch), {
      good: options.good,
      bad: options.bad,
      ...(options.invalid ? { invalid: true } : options.predicate),
    });
    return { ...r, firstBad: fromWire(r.firstBad) };
  }

  async validate(options: ReadAt = {}): Promise<ValidationReport> {
    const { at, nearest } = options;
    return this.json<ValidationReport>('GET', await this.on(ROUTES.validate, options.branch, {}, { at, nearest }));
  }

  async blame(prefix = '', options: ReadOptions = {}): Promise<BlameLine[]> {
    const query = { at: options.at, nearest: options.nearest };
    const path = prefix
      ? await this.on(ROUTES.blame, options.branch, { key: prefix }, query)
      : await this.on(ROUTES.blameRoot, options.branch, {}, query);
    return (await this.json<{ keys: BlameLine[] }>('GET', path)).keys.map((l) => ({
      ...l,
      commit: fromWire(l.commit),
    }));
  }

  gc(): Promise<GcResult> {
    return this.json('POST', ROUTES.gc, {});
  }

  /** Compacts a branch on the server (progress is not reported over HTTP). */
  async compact(options: CompactOptions = {}): Promise<CompactResult> {
    return this.json('POST', await this.on(ROUTES.compact, options.branch), {
      dryRun: options.dryRun,
      policy: options.policy,
    });
  }

  async revert(rev: string, options: WriteOptions = {}): Promise<WriteResult> {
    return this.json(
      'POST',
      await this.on(ROUTES.revert, options.branch),
      { commit: rev, message: options.message },
      this.writeHeaders({ author: options.author, committer: options.committer, force: options.force }),
    );
  }

  async begin(options: TransactionOptions = {}): Promise<ClientTransaction> {
    const headers: Record<string, string> = {
      ...this.writeHeaders({ author: options.author }),
      ...(options.client ? { [HEADERS.client]: options.client } : {}),
    };
    const begun = await this.json<{ id: string; branch: string; base: string | null; isolation: Isolation }>(
      'POST',
      await this.on(ROUTES.begin, options.branch),
      { isolation: options.isolation },
      headers,
    );
    return new ClientTransaction(begun, {
      request: (method, route, params, init) => this.request(method, pathOf(route, { id: begun.id, ...params }), init),
      json: (method, route, params, query) => this.json(method, pathOf(route, { id: begun.id, ...params }, query)),
      writeHeaders: () => this.writeHeaders({}),
    });
  }

  /**
   * Runs `fn` in a transaction and commits it; on a conflict, runs it again on the new head, up to `retries` more
   * times (default 5), as Store.withTransaction does.
   */
  withTransaction<T>(
    fn: (tx: ClientTransaction) => Promise<T>,
    options: TransactionOptions & { retries?: number } = {},
  ): Promise<{ value: T; commit: string | null }> {
    return retryTransaction(() => this.begin(options), fn, options.retries);
  }

  /** Follows the server's event stream; resumes after a dropped connection from the last whole commit. */
  async watch(options: { branch?: string; prefix?: string; since?: string } = {}): Promise<WatchApi> {
    const b = await this.branch(options.branch);
    const controller = new AbortController();
    const open = (since: string | undefined) =>
      this.request('GET', pathOf(ROUTES.watch, { branch: b }, { prefix: options.prefix, since }), {
        signal: controller.signal,
      });
    let response = await open(options.since);
    const reader = new EventStreamReader(options.since);
    // A dropped stream is reopened from the last whole commit, retrying for ~1.5 s (a server restarting, say).
    const reopen = async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await open(reader.last);
        } catch (e) {
          if (attempt >= 4 || controller.signal.aborted || (e as StoreError).code !== 'REMOTE') throw e;
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)));
        }
      }
    };
    const watches = this.watches;
    const close = () => {
      watches.delete(watch);
      controller.abort();
    };
    // Leaving a for-await loop early (break, throw) ends the watch, as it does on a local store.
    async function* commits(): AsyncGenerator<CommitEvents> {
      try {
        yield* follow();
      } finally {
        close();
      }
    }
    async function* follow(): AsyncGenerator<CommitEvents> {
      const decoder = new TextDecoder();
      while (!controller.signal.aborted) {
        reader.reset();
        const chunks = (response.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
        for (;;) {
          let next: IteratorResult<Uint8Array>;
          try {
            next = await chunks.next();
          } catch {
            break; // the connection dropped: reconnect below, from the last whole commit
          }
          if (next.done) break;
          // An `event: error` from the server throws here: it is an answer, not a dropped connection.
          yield* reader.push(decoder.decode(next.value, { stream: true }));
        }
        if (controller.signal.aborted) return;
        response = await reopen();
      }
    }
    const watch: WatchApi = {
      commits,
      close,
      async *[Symbol.asyncIterator]() {
        for await (const group of commits()) yield* group.events;
      },
    };
    watches.add(watch);
    return watch;
  }

  // ---- remotes: the server's, run there (progress and timeouts stay on the server) ------------------------------

  /** The server's remotes. */
  readonly remotes: Remotes = {
    add: (name, url) => this.json<RemoteInfo>('PUT', pathOf(ROUTES.remote, { remote: name }), { url }),
    list: () => this.json<RemoteInfo[]>('GET', ROUTES.remotes),
    remove: async (name) => {
      await this.json<void>('DELETE', pathOf(ROUTES.remote, { remote: name }));
    },
  };

  /** The server's tokens (an admin token's business; the first token is made where the repository is). */
  readonly tokens: TokenAdmin = {
    create: (name, options) => this.json<CreatedToken>('POST', ROUTES.tokens, createTokenBody(name, options)),
    list: () => this.json<TokenInfo[]>('GET', ROUTES.tokens),
    revoke: async (name) => {
      await this.json<void>('DELETE', pathOf(ROUTES.token, { name }));
    },
  };

  /** Who this client's token is, and what it may do at `paths` of `branch` (default: the default branch). */
  async me(options: { branch?: string; paths?: string[] } = {}): Promise<Me> {
    const query: Query = { branch: options.branch, path: options.paths };
    return this.json<Me>('GET', pathOf(ROUTES.me, {}, query));
  }

  /** Fetches a remote of the server's (by name: the server does not fetch from URLs its clients give). */
  async fetch(remote = 'origin', _options: FetchOptions = {}): Promise<FetchResult> {
    return this.json<FetchResult>('POST', pathOf(ROUTES.fetch, { remote }), {});
  }

  async pull(remote = 'origin', options: PullOptions = {}): Promise<PullResult> {
    if (typeof options.strategy === 'object')
      throw new StoreError('INVALID_ARGUMENT', 'over HTTP, a pull takes one strategy name');
    return this.json<PullResult>(
      'POST',
      pathOf(ROUTES.pull, { remote }),
      { branch: options.branch, strategy: options.strategy, message: options.message },
      this.writeHeaders({ author: options.author, committer: options.committer, force: options.force }),
    );
  }

  async push(remote = 'origin', options: PushOptions = {}): Promise<PushResult> {
    return this.json<PushResult>('POST', pathOf(ROUTES.push, { remote }), {
      branch: options.branch,
      force: options.force,
    });
  }

  /**
   * The commits of `branch` this caller lacks, given commits it has, with their objects (the server's
   * Store.outgoing): what a replica pulls a peer with each round.
   */
  async outgoing(
    branch: string,
    have: readonly string[],
    options: { signal?: AbortSignal } = {},
  ): Promise<{ head: string; objects: GitObject[] }> {
    const r = await this.request('POST', pathOf(ROUTES.replicationObjects, { branch }), {
      body: JSON.stringify({ have }),
      headers: { [HEADERS.contentType]: CONTENT_TYPES.json },
      signal: options.signal,
    });
    const head = r.headers.get(HEADERS.commit) ?? '';
    if (!/^[0-9a-f]{40}$/.test(head)) throw new StoreError('REMOTE', `${this.base} sent objects without a valid head`);
    return { head, objects: decodeObjects(new Uint8Array(await r.arrayBuffer())) };
  }

  /** Ends this client's open watches (the server and its store stay up). */
  async close(): Promise<void> {
    for (const watch of [...this.watches]) watch.close();
  }

  async snapshot(prefix = '', options: ReadOptions = {}) {
    const { commit, entries } = await this.list(prefix, { ...options, recursive: true });
    // Pin the reads to the listed commit, so the snapshot is one consistent state (`nearest` chose it already).
    const at = commit ?? options.at;
    const nearest = commit ? undefined : options.nearest;
    const values = [];
    for (let i = 0; i < entries.length; i += 16) {
      const chunk = entries.slice(i, i + 16);
      values.push(
        ...(await Promise.all(
          chunk.map(async (e) => ({
            key: e.key,
            value: (await this.read(e.key, { branch: options.branch, at, nearest })).value,
          })),
        )),
      );
    }
    return { commit, entries: values };
  }
}
