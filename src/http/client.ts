import { type ErrorCode, StoreError } from '../errors.js';
import type { BlameLine } from '../history/blame.js';
import { type CommitInfo, formatIdentity } from '../history/commit-info.js';
import type { Change } from '../history/diff.js';
import type { LogOptions, LogPage } from '../history/log.js';
import type {
  BatchOp,
  BisectResult,
  BranchInfo,
  CompactOptions,
  CompactResult,
  GcResult,
  ListEntry,
  MergeOptions,
  MergeResult,
  Precondition,
  SetResult,
  Store,
  Value,
  WriteOptions,
} from '../store/store.js';
import type { TransactionApi, TransactionOptions } from '../store/transaction.js';
import type { CommitEvents, WatchApi, WatchEvent } from '../store/watch.js';

/** What the CLI (and any caller) needs of a store: a local Store or a StoreClient talking to `store serve`. */
export type StoreApi = StoreCalls & {
  begin(options?: TransactionOptions): Promise<TransactionApi>;
  watch(options?: { branch?: string; prefix?: string; since?: string }): Promise<WatchApi>;
};

type StoreCalls = Pick<
  Store,
  | 'read'
  | 'set'
  | 'delete'
  | 'list'
  | 'batch'
  | 'branches'
  | 'createBranch'
  | 'deleteBranch'
  | 'merge'
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
>;

const enc = encodeURIComponent;
// The key goes to the server as given, so it applies the same rule as a local store (one leading "/" names the root;
// "//a" is INVALID_KEY). A leading "/" travels as %2F: proxies that merge "//" in paths would otherwise change the key.
const keyPath = (key: string) =>
  (key.startsWith('/') ? '%2F' : '') + key.replace(/^\//, '').split('/').map(enc).join('/');

/**
 * The HTTP API as a StoreApi: the same calls, results and StoreError codes as a local store, so a caller cannot
 * tell the difference but for latency.
 */
export class StoreClient implements StoreApi {
  private defaultBranch: string | undefined;

  constructor(private readonly base: string) {
    this.base = base.replace(/\/+$/, '');
  }

  private async request(
    method: string,
    path: string,
    init: { body?: string | Uint8Array; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ) {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        body: init.body,
        headers: init.headers,
        signal: init.signal,
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new StoreError(
        'REMOTE',
        `cannot reach the store server at ${this.base} (${cause}); is \`store serve\` running?`,
        {
          url: this.base,
        },
      );
    }
    if (response.ok || response.status === 304) return response;
    const text = await response.text();
    let error: { code?: ErrorCode; message?: string; data?: Record<string, unknown> } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      // not one of our error bodies (a proxy, say): report the status below
    }
    throw new StoreError(
      error?.code ?? 'REMOTE',
      error?.message ?? `the server answered ${response.status} ${text.slice(0, 200)}`,
      error?.data ?? {},
    );
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
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } };
    const response = await this.request(method, path, init);
    return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
  }

  private async branch(name: string | undefined): Promise<string> {
    if (name) return name;
    this.defaultBranch ??= (await this.branches()).find((b) => b.default)?.name ?? 'main';
    return this.defaultBranch;
  }

  private static writeHeaders(options: WriteOptions & Precondition): Record<string, string> {
    const h: Record<string, string> = {};
    if (options.author) h['x-store-author'] = formatIdentity(options.author);
    if (options.committer) h['x-store-committer'] = formatIdentity(options.committer);
    if (options.message) h['x-store-message'] = encodeURIComponent(options.message);
    if (options.ifMatch) h['if-match'] = `"${options.ifMatch}"`;
    if (options.ifNoneMatch) h['if-none-match'] = '*';
    return h;
  }

  private static query(params: Record<string, string | number | boolean | undefined>): string {
    const q = Object.entries(params)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${enc(String(v))}`);
    return q.length ? `?${q.join('&')}` : '';
  }

  async read(key: string, options: { branch?: string; at?: string } = {}) {
    const b = await this.branch(options.branch);
    const r = await this.request(
      'GET',
      `/v1/branches/${enc(b)}/keys/${keyPath(key)}${StoreClient.query({ at: options.at })}`,
    );
    return {
      value: new Uint8Array(await r.arrayBuffer()),
      oid: (r.headers.get('etag') ?? '').replace(/"/g, ''),
      commit: r.headers.get('x-store-commit') ?? '',
    };
  }

  async set(key: string, value: Value, options: WriteOptions & Precondition = {}): Promise<SetResult> {
    const b = await this.branch(options.branch);
    const r = await this.request('PUT', `/v1/branches/${enc(b)}/keys/${keyPath(key)}`, {
      body: typeof value === 'string' ? value : Buffer.from(value),
      headers: { 'content-type': 'application/octet-stream', ...StoreClient.writeHeaders(options) },
    });
    return { ...((await r.json()) as Omit<SetResult, 'created'>), created: r.status === 201 };
  }

  async delete(key: string, options: WriteOptions & Precondition & { recursive?: boolean } = {}) {
    const b = await this.branch(options.branch);
    const q = StoreClient.query({ recursive: options.recursive });
    return this.json<{ commit: string }>(
      'DELETE',
      `/v1/branches/${enc(b)}/keys/${keyPath(key)}${q}`,
      undefined,
      StoreClient.writeHeaders(options),
    );
  }

  async list(prefix = '', options: { branch?: string; at?: string; recursive?: boolean } = {}) {
    const b = await this.branch(options.branch);
    const q = StoreClient.query({ at: options.at, recursive: options.recursive });
    return this.json<{ commit: string | null; entries: ListEntry[] }>(
      'GET',
      `/v1/branches/${enc(b)}/list/${keyPath(prefix)}${q}`,
    );
  }

  async batch(ops: BatchOp[], options: WriteOptions & { onProgress?: (done: number, total: number) => void } = {}) {
    const b = await this.branch(options.branch);
    const body = {
      message: options.message,
      ops: ops.map((op) =>
        op.op === 'set' && typeof op.value !== 'string'
          ? { ...op, value: Buffer.from(op.value).toString('base64'), encoding: 'base64' }
          : op,
      ),
    };
    const r = await this.json<{ commit: string }>(
      'POST',
      `/v1/branches/${enc(b)}/batch`,
      body,
      StoreClient.writeHeaders(options),
    );
    options.onProgress?.(ops.length, ops.length);
    return r;
  }

  async branches(): Promise<BranchInfo[]> {
    return this.json<BranchInfo[]>('GET', '/v1/branches');
  }

  async createBranch(name: string, options: { from?: string } = {}): Promise<BranchInfo> {
    return this.json<BranchInfo>('POST', '/v1/branches', { name, from: options.from });
  }

  async deleteBranch(name: string): Promise<void> {
    await this.json<void>('DELETE', `/v1/branches/${enc(name)}`);
  }

  async merge(from: string, options: MergeOptions = {}): Promise<MergeResult> {
    const into = await this.branch(options.into);
    if (typeof options.strategy === 'object')
      throw new StoreError('INVALID_ARGUMENT', 'over HTTP, a merge takes one strategy name');
    return this.json<MergeResult>(
      'POST',
      `/v1/branches/${enc(into)}/merge`,
      { from, strategy: options.strategy, ff: options.ff, message: options.message },
      StoreClient.writeHeaders(options),
    );
  }

  async log(options: LogOptions & { branch?: string; rev?: string } = {}): Promise<LogPage> {
    const b = await this.branch(options.branch);
    const q = StoreClient.query({ key: options.path, limit: options.limit, cursor: options.cursor ?? options.rev });
    return this.json<LogPage>('GET', `/v1/branches/${enc(b)}/log${q}`);
  }

  async commit(rev: string, options: { branch?: string } = {}): Promise<CommitInfo> {
    const { changes: _changes, ...info } = await this.json<CommitInfo & { changes: Change[] }>(
      'GET',
      `/v1/commits/${enc(rev)}${StoreClient.query({ branch: options.branch })}`,
    );
    return info;
  }

  async changesOf(rev: string, options: { branch?: string } = {}): Promise<Change[]> {
    const r = await this.json<{ changes: Change[] }>(
      'GET',
      `/v1/commits/${enc(rev)}${StoreClient.query({ branch: options.branch })}`,
    );
    return r.changes;
  }

  async diff(from: string, to?: string, options: { branch?: string; prefix?: string } = {}): Promise<Change[]> {
    const q = StoreClient.query({ from, to, branch: options.branch, prefix: options.prefix });
    return (await this.json<{ changes: Change[] }>('GET', `/v1/diff${q}`)).changes;
  }

  /** Key predicates only: a `test` function cannot travel over HTTP (the CLI's --run needs the repository). */
  async bisect(options: Parameters<Store['bisect']>[0]): Promise<BisectResult> {
    if (options.test || !options.predicate) {
      throw new StoreError('INVALID_ARGUMENT', 'over HTTP, bisect takes a key predicate, not a test to run', {});
    }
    const b = await this.branch(options.branch);
    return this.json('POST', `/v1/branches/${enc(b)}/bisect`, {
      good: options.good,
      bad: options.bad,
      ...options.predicate,
    });
  }

  async blame(prefix = '', options: { branch?: string; at?: string } = {}): Promise<BlameLine[]> {
    const b = await this.branch(options.branch);
    const q = StoreClient.query({ at: options.at });
    return (await this.json<{ keys: BlameLine[] }>('GET', `/v1/branches/${enc(b)}/blame/${keyPath(prefix)}${q}`)).keys;
  }

  gc(): Promise<GcResult> {
    return this.json('POST', '/v1/gc', {});
  }

  /** Compacts a branch on the server (progress is not reported over HTTP). */
  async compact(options: CompactOptions = {}): Promise<CompactResult> {
    const b = await this.branch(options.branch);
    return this.json('POST', `/v1/branches/${enc(b)}/compact`, {
      dryRun: options.dryRun,
      policy: options.policy,
    });
  }

  async revert(rev: string, options: WriteOptions = {}): Promise<{ commit: string }> {
    const b = await this.branch(options.branch);
    return this.json(
      'POST',
      `/v1/branches/${enc(b)}/revert`,
      { commit: rev, message: options.message },
      StoreClient.writeHeaders(options),
    );
  }

  async begin(options: TransactionOptions = {}): Promise<TransactionApi> {
    const b = await this.branch(options.branch);
    const headers: Record<string, string> = options.client ? { 'x-store-client': options.client } : {};
    const { id } = await this.json<{ id: string }>(
      'POST',
      `/v1/branches/${enc(b)}/transactions`,
      { isolation: options.isolation },
      headers,
    );
    const at = `/v1/transactions/${enc(id)}`;
    return {
      id,
      read: async (key) => {
        const r = await this.request('GET', `${at}/keys/${keyPath(key)}`);
        const value = new Uint8Array(await r.arrayBuffer());
        return { value, oid: (r.headers.get('etag') ?? '').replace(/"/g, ''), commit: r.headers.get('x-store-commit') };
      },
      set: async (key, value) => {
        const body = typeof value === 'string' ? value : Buffer.from(value);
        const r = await this.request('PUT', `${at}/keys/${keyPath(key)}`, {
          body,
          headers: { 'content-type': 'application/octet-stream' },
        });
        return (await r.json()) as { commit: string; key: string; oid: string };
      },
      delete: (key, o = {}) =>
        this.json('DELETE', `${at}/keys/${keyPath(key)}${StoreClient.query({ recursive: o.recursive })}`),
      list: (prefix = '', o = {}) =>
        this.json('GET', `${at}/list/${keyPath(prefix)}${StoreClient.query({ recursive: o.recursive })}`),
      commit: () => this.json('POST', `${at}/commit`),
      abort: () => this.json<void>('DELETE', at),
    };
  }

  /** Follows the server's event stream; resumes after a dropped connection from the last whole commit. */
  async watch(options: { branch?: string; prefix?: string; since?: string } = {}): Promise<WatchApi> {
    const b = await this.branch(options.branch);
    const controller = new AbortController();
    const base = `/v1/branches/${enc(b)}/watch${StoreClient.query({ prefix: options.prefix })}`;
    const open = (since: string | undefined) =>
      this.request('GET', `${base}${since ? `${base.includes('?') ? '&' : '?'}since=${enc(since)}` : ''}`, {
        signal: controller.signal,
      });
    let response = await open(options.since);
    let last = options.since;
    // A dropped stream is reopened from the last whole commit, retrying for ~1.5 s (a server restarting, say).
    const reopen = async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await open(last);
        } catch (e) {
          if (attempt >= 4 || controller.signal.aborted || (e as StoreError).code !== 'REMOTE') throw e;
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)));
        }
      }
    };
    async function* commits(): AsyncGenerator<CommitEvents> {
      const decoder = new TextDecoder();
      while (!controller.signal.aborted) {
        let buffer = '';
        let pending: WatchEvent[] = [];
        try {
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            buffer += decoder.decode(chunk, { stream: true });
            for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
              const message = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              let id: string | undefined;
              for (const line of message.split('\n')) {
                if (line.startsWith('data: ')) pending.push(JSON.parse(line.slice(6)) as WatchEvent);
                else if (line.startsWith('id: ')) id = line.slice(4);
              }
              if (id) {
                last = id;
                // An id without events marks where the stream starts; nothing to hand out.
                if (pending.length > 0) yield { commit: id, events: pending };
                pending = [];
              }
            }
          }
        } catch {
          // the connection dropped: reconnect below, from the last whole commit
        }
        if (controller.signal.aborted) return;
        response = await reopen();
      }
    }
    const close = () => controller.abort();
    return {
      commits,
      close,
      async *[Symbol.asyncIterator]() {
        for await (const group of commits()) yield* group.events;
      },
    };
  }

  async snapshot(prefix = '', options: { branch?: string; at?: string } = {}) {
    const { commit, entries } = await this.list(prefix, { ...options, recursive: true });
    // Pin the reads to the listed commit, so the snapshot is one consistent state.
    const at = commit ?? options.at;
    const values = [];
    for (let i = 0; i < entries.length; i += 16) {
      const chunk = entries.slice(i, i + 16);
      values.push(
        ...(await Promise.all(
          chunk.map(async (e) => ({ key: e.key, value: (await this.read(e.key, { ...options, at })).value })),
        )),
      );
    }
    return { commit, entries: values };
  }
}
