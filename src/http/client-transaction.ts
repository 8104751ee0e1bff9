import type { Isolation, TransactionApi } from '../store/transaction.js';
import { CONTENT_TYPES, etagOid, HEADERS, type Query, ROUTES, type Route } from './contract.js';

/** What a transaction needs of its StoreClient: requests on routes below /v1/transactions/<id>. */
export interface TransactionTransport {
  request(
    method: string,
    route: Route,
    params: Record<string, string>,
    init?: { body?: string | Uint8Array<ArrayBuffer>; headers?: Record<string, string> },
  ): Promise<Response>;
  json<T>(method: string, route: Route, params: Record<string, string>, query?: Query): Promise<T>;
  writeHeaders(): Record<string, string>;
}

/**
 * A transaction on the server, driven over HTTP: the calls of a local Transaction, with its id, branch, isolation,
 * the commit it forked from (`base`) and the commit of its last write (`head`).
 */
export class ClientTransaction implements TransactionApi {
  readonly id: string;
  readonly branch: string;
  readonly isolation: Isolation;
  readonly base: { commit: string | null };
  readonly head: { commit: string | null };

  constructor(
    begun: { id: string; branch: string; base: string | null; isolation: Isolation },
    private readonly http: TransactionTransport,
  ) {
    this.id = begun.id;
    this.branch = begun.branch;
    this.isolation = begun.isolation;
    this.base = { commit: begun.base };
    this.head = { commit: begun.base };
  }

  async read(key: string) {
    const r = await this.http.request('GET', ROUTES.txKey, { key });
    return {
      value: new Uint8Array(await r.arrayBuffer()),
      oid: etagOid(r.headers.get(HEADERS.etag) ?? ''),
      commit: r.headers.get(HEADERS.commit),
    };
  }

  async get(key: string): Promise<Uint8Array> {
    return (await this.read(key)).value;
  }

  async getText(key: string): Promise<string> {
    return new TextDecoder().decode(await this.get(key));
  }

  async set(key: string, value: Uint8Array | string) {
    const r = await this.http.request(
      'PUT',
      ROUTES.txKey,
      { key },
      {
        body: typeof value === 'string' ? value : new Uint8Array(value),
        headers: { [HEADERS.contentType]: CONTENT_TYPES.value, ...this.http.writeHeaders() },
      },
    );
    const written = (await r.json()) as { commit: string; key: string; oid: string };
    this.head.commit = written.commit;
    return written;
  }

  async delete(key: string, options: { recursive?: boolean } = {}) {
    const r = await this.http.json<{ commit: string }>(
      'DELETE',
      ROUTES.txKey,
      { key },
      { recursive: options.recursive },
    );
    this.head.commit = r.commit;
    return r;
  }

  list(prefix = '', options: { recursive?: boolean } = {}) {
    const query = { recursive: options.recursive };
    return prefix
      ? this.http.json<Awaited<ReturnType<TransactionApi['list']>>>('GET', ROUTES.txList, { key: prefix }, query)
      : this.http.json<Awaited<ReturnType<TransactionApi['list']>>>('GET', ROUTES.txListRoot, {}, query);
  }

  commit() {
    return this.http.json<Awaited<ReturnType<TransactionApi['commit']>>>('POST', ROUTES.txCommit, {});
  }

  abort() {
    return this.http.json<void>('DELETE', ROUTES.transaction, {});
  }
}
