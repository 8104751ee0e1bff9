/**
 * The HTTP wire format of the store, defined once: routes and how their paths are built, header names, entity tags and
 * conditional headers (RFC 9110), commit metadata headers, the error body and the event-stream framing. StoreClient
 * (src/http/client.ts) speaks it and the server (server/) answers it, so the two cannot drift apart. Plain TypeScript:
 * no HTTP framework here.
 */

import type { CreateTokenOptions } from '../access/tokens.js';
import { type ErrorBody, errorBody, StoreError } from '../errors.js';
import { formatIdentity, type Identity } from '../history/commit-info.js';
import { checkRemoteName } from '../remote/config.js';
import { ANY_VALUE } from '../store/precondition.js';
import type { CommitEvents, WatchEvent } from '../store/watch.js';
import { checkBranchName, normalizeKey } from '../tree/keys.js';

/**
 * Every route, in the router's syntax: `:name` is one path segment, `*` the rest of the path (a key or prefix). The
 * server registers exactly these; the client builds its URLs from them with `pathOf`.
 */
export const ROUTES = {
  health: '/v1/health',
  openapi: '/v1/openapi.json',
  docs: '/docs',
  metrics: '/metrics',
  branches: '/v1/branches',
  branch: '/v1/branches/:branch',
  key: '/v1/branches/:branch/keys/*',
  list: '/v1/branches/:branch/list/*',
  listRoot: '/v1/branches/:branch/list',
  batch: '/v1/branches/:branch/batch',
  merge: '/v1/branches/:branch/merge',
  mergePreview: '/v1/branches/:branch/merge/preview',
  log: '/v1/branches/:branch/log',
  commit: '/v1/commits/:rev',
  diff: '/v1/diff',
  bisect: '/v1/branches/:branch/bisect',
  validate: '/v1/branches/:branch/validate',
  blame: '/v1/branches/:branch/blame/*',
  blameRoot: '/v1/branches/:branch/blame',
  gc: '/v1/gc',
  compact: '/v1/branches/:branch/compact',
  revert: '/v1/branches/:branch/revert',
  begin: '/v1/branches/:branch/transactions',
  transaction: '/v1/transactions/:id',
  txCommit: '/v1/transactions/:id/commit',
  txKey: '/v1/transactions/:id/keys/*',
  txList: '/v1/transactions/:id/list/*',
  txListRoot: '/v1/transactions/:id/list',
  watch: '/v1/branches/:branch/watch',
  replication: '/v1/replication',
  replicationObjects: '/v1/replication/branches/:branch/objects',
  remotes: '/v1/remotes',
  remote: '/v1/remotes/:remote',
  fetch: '/v1/remotes/:remote/fetch',
  pull: '/v1/remotes/:remote/pull',
  push: '/v1/remotes/:remote/push',
  tokens: '/v1/tokens',
  token: '/v1/tokens/:name',
  me: '/v1/me',
} as const;

export type Route = (typeof ROUTES)[keyof typeof ROUTES];

/**
 * Where `store serve` answers git's smart HTTP protocol: `git clone http://HOST:PORT/git`. git's protocol, not this
 * API: not in ROUTES, and not in the OpenAPI document (server/git/).
 */
export const GIT_PATH = '/git';

/** Where `store serve` serves the web UI's files (its page is `/`); not part of the API either (server/ui.ts). */
export const UI_PATH = '/ui';

/** What `GET /v1/me` answers: who the caller is, and its rights at each path asked about on one branch. */
export interface Me {
  /** Whether the store requires tokens (false: everyone may do everything). */
  auth: boolean;
  /** The token's name and roles (null and [] without auth). */
  name: string | null;
  roles: string[];
  admin: boolean;
  branch: string;
  /** For each `path` asked (a key, or a directory with `/` at its end; '' the top): what the caller may do there. */
  paths: Record<string, { read: boolean; write: boolean }>;
}

/** Header names (lower case, as node hands them over). */
export const HEADERS = {
  /** The commit message to add below the generated first line, percent-encoded (so it may hold newlines). */
  message: 'x-store-message',
  /** The commit author, `Name <email>`. */
  author: 'x-store-author',
  /** The committer, when not the author (as git's GIT_COMMITTER_*): `Name <email>` and optionally `<epoch> <+hhmm>`. */
  committer: 'x-store-committer',
  /** The commit a value was read at. */
  commit: 'x-store-commit',
  /** With `at`: the time of the commit read (ISO 8601). */
  commitTime: 'x-store-commit-time',
  /** `true`: a schema change stands although stored values break the new schemas (WriteOptions.force). */
  force: 'x-store-force',
  /** Who a transaction belongs to, for the per-client cap (default: the client's address). */
  client: 'x-store-client',
  etag: 'etag',
  ifMatch: 'if-match',
  ifNoneMatch: 'if-none-match',
  lastEventId: 'last-event-id',
  contentType: 'content-type',
} as const;

export const CONTENT_TYPES = {
  json: 'application/json',
  value: 'application/octet-stream',
  events: 'text/event-stream',
} as const;

/**
 * A key or prefix as ONE path segment: every `/` is sent as `%2F`. OpenAPI cannot describe a parameter that spans
 * segments, so this is what a generated client does too; the server also accepts the `/`s as they are.
 */
export const encodeKey = (key: string): string => encodeURIComponent(key);

export type Query = Record<string, string | number | boolean | string[] | undefined>;

/** `?a=1&b=x` from the defined entries (empty when none); an array repeats its name (`?path=a&path=b`). */
export function queryString(params: Query = {}): string {
  const q = Object.entries(params)
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((one) => [k, one] as const) : [[k, v] as const]))
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return q.length ? `?${q.join('&')}` : '';
}

/**
 * A URL cannot carry `.` or `..` as a path segment, encoded or not: URL parsing resolves them away (RFC 3986 §5.2.4,
 * and the WHATWG URL standard treats `%2E` alike). Neither is a valid key or branch name, so the store's own check
 * refuses it here with the error the server would give.
 */
function refuseDotSegment(name: string, value: string): void {
  if (value !== '.' && value !== '..') return;
  if (name === 'branch') checkBranchName(value);
  else if (name === 'remote') checkRemoteName(value);
  else normalizeKey(value);
  throw new StoreError('INVALID_ARGUMENT', `${JSON.stringify(value)} cannot be sent as part of a URL path`);
}

/** The URL path of a route: `:name` from `params[name]`, `*` from `params.key`, each percent-encoded. */
export function pathOf(route: Route, params: Record<string, string> = {}, query?: Query): string {
  const path = route
    .split('/')
    .map((part) => {
      if (part === '*') {
        refuseDotSegment('key', params.key ?? '');
        return encodeKey(params.key ?? '');
      }
      if (!part.startsWith(':')) return part;
      const value = params[part.slice(1)];
      if (value === undefined) throw new Error(`pathOf(${route}): no value for ${part}`);
      refuseDotSegment(part.slice(1), value);
      return encodeURIComponent(value);
    })
    .join('/');
  return `${path}${queryString(query)}`;
}

// ---- entity tags and conditional requests (RFC 9110 §8.8.3, §13.1) -------------------------------------------

/** A value's entity tag: its blob oid, quoted (a strong validator: equal tags mean equal bytes). */
export const formatEtag = (oid: string): string => `"${oid}"`;

/** The oid in an entity tag: `"abc"`, `W/"abc"` or a bare `abc` → `abc`. */
export const etagOid = (tag: string): string => tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

interface EntityTag {
  oid: string;
  weak: boolean;
}

/**
 * An If-Match / If-None-Match value: `*`, or a list of entity tags. Tags are parsed, not split at commas (a quoted tag
 * may hold one); an unquoted token is taken as a tag too, for clients that forget the quotes.
 */
export function parseEntityTags(header: string): '*' | EntityTag[] {
  let rest = header.trim();
  if (rest === '*') return '*';
  const tags: EntityTag[] = [];
  while (rest !== '') {
    const m = /^(W\/)?(?:"([^"]*)"|([^\s,"]+))\s*(?:,\s*|$)/.exec(rest);
    if (!m) break;
    tags.push({ oid: m[2] ?? m[3] ?? '', weak: m[1] !== undefined });
    rest = rest.slice(m[0].length);
  }
  if (rest !== '' || tags.length === 0) {
    throw new StoreError(
      'INVALID_ARGUMENT',
      `malformed entity tag list ${JSON.stringify(header)}; send "oid", "oid2" or *`,
    );
  }
  return tags;
}

/**
 * What an If-Match header asks of a write, as the store's `ifMatch`: `'*'` (any value), or the oids of which the key
 * must have one. If-Match compares strongly, so a weak tag matches nothing (RFC 9110 §13.1.1).
 */
export function ifMatchOf(header: string | undefined): string | string[] | undefined {
  if (header === undefined) return undefined;
  const tags = parseEntityTags(header);
  if (tags === '*') return ANY_VALUE;
  return tags.filter((t) => !t.weak).map((t) => t.oid);
}

/** Whether an If-None-Match header on a read matches a value's oid (weak comparison, RFC 9110 §13.1.2). */
export function ifNoneMatchHits(header: string | undefined, oid: string): boolean {
  if (header === undefined) return false;
  const tags = parseEntityTags(header);
  return tags === '*' || tags.some((t) => t.oid === oid);
}

// ---- commit metadata -------------------------------------------------------------------------------------------

/** X-Store-Message: percent-encoded, since a header cannot carry a newline. */
export const encodeMessage = (message: string): string => encodeURIComponent(message);

/** X-Store-Message as sent; a value that is not valid percent-encoding is taken literally. */
export function decodeMessage(header: string): string {
  try {
    return decodeURIComponent(header);
  } catch {
    return header;
  }
}

/** The headers a write sends for its metadata and preconditions. */
export function writeHeaders(options: {
  author?: Identity;
  committer?: Identity;
  message?: string;
  ifMatch?: string | readonly string[];
  ifNoneMatch?: boolean;
  force?: boolean;
}): Record<string, string> {
  const h: Record<string, string> = {};
  // `Name <email>`, with the raw git date after it when the identity has one.
  if (options.author) h[HEADERS.author] = formatIdentity(options.author);
  if (options.committer) h[HEADERS.committer] = formatIdentity(options.committer);
  if (options.message) h[HEADERS.message] = encodeMessage(options.message);
  if (options.ifMatch !== undefined) {
    const oids = typeof options.ifMatch === 'string' ? [options.ifMatch] : options.ifMatch;
    h[HEADERS.ifMatch] = oids.map((o) => (o === ANY_VALUE ? o : formatEtag(o))).join(', ');
  }
  if (options.ifNoneMatch) h[HEADERS.ifNoneMatch] = '*';
  if (options.force) h[HEADERS.force] = 'true';
  return h;
}

// ---- errors ----------------------------------------------------------------------------------------------------

export { type ErrorBody, errorBody };

/** The StoreError an error answer stands for; a body that is not ours (a proxy's, say) is a REMOTE error. */
export function errorOfResponse(status: number, text: string): StoreError {
  let error: Partial<ErrorBody['error']> | undefined;
  try {
    error = (JSON.parse(text) as Partial<ErrorBody>).error;
  } catch {
    // not one of our error bodies: reported by status below
  }
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    return new StoreError(error.code, error.message, error.data ?? {});
  }
  return new StoreError('REMOTE', `the server answered ${status} ${text.slice(0, 200)}`, { status });
}

// ---- the event stream of a watch -------------------------------------------------------------------------------

/** A commit's events as one Server-Sent Events chunk: `data:` per event, the commit as `id:` of the last one. */
export function formatEvents(group: CommitEvents): string {
  let text = '';
  group.events.forEach((event, i) => {
    if (i === group.events.length - 1) text += `id: ${group.commit}\n`;
    text += `data: ${JSON.stringify(event)}\n\n`;
  });
  return text;
}

/** The first bytes of a stream: where it starts (as an id-only message, so a resuming client has a Last-Event-ID). */
export const formatStreamStart = (after: string | null): string =>
  after ? `: watching\nid: ${after}\n\n` : ': watching\n\n';

export const KEEP_ALIVE = ': keep-alive\n\n';

/** An error that ended a stream. */
export const formatStreamError = (message: string): string => `event: error\ndata: ${JSON.stringify({ message })}\n\n`;

/**
 * Reads a watch's event stream back into commits. Feed it text as it arrives; it returns the commits completed by it.
 * `last` is the last id seen, whole commits only: where to resume after a dropped connection.
 */
export class EventStreamReader {
  private buffer = '';
  private pending: WatchEvent[] = [];
  last: string | undefined;

  constructor(since?: string) {
    this.last = since;
  }

  push(text: string): CommitEvents[] {
    this.buffer += text;
    const out: CommitEvents[] = [];
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const message = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let id: string | undefined;
      let event = 'message';
      const data: string[] = [];
      for (const line of message.split('\n')) {
        if (line.startsWith('data: ')) data.push(line.slice(6));
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('event: ')) event = line.slice(7);
      }
      if (event === 'error') {
        const why = data.length ? (JSON.parse(data.join('\n')) as { message?: string }).message : undefined;
        throw new StoreError('REMOTE', `the server ended the watch: ${why ?? 'unknown error'}`);
      }
      for (const d of data) this.pending.push(JSON.parse(d) as WatchEvent);
      if (id) {
        this.last = id;
        // An id without events marks where the stream starts; nothing to hand out.
        if (this.pending.length > 0) out.push({ commit: id, events: this.pending });
        this.pending = [];
      }
    }
    return out;
  }

  /** A dropped connection loses the events of a commit not yet complete: they come again after resuming. */
  reset(): void {
    this.buffer = '';
    this.pending = [];
  }
}

/** The body of `POST /v1/tokens`: the library's CreateTokenOptions, with the expiry in whole seconds. */
export interface CreateTokenBody {
  name: string;
  roles?: string[];
  expiresInSeconds?: number;
  author?: { name: string; email: string };
}

export const createTokenBody = (name: string, options: CreateTokenOptions = {}): CreateTokenBody => ({
  name,
  roles: options.roles,
  expiresInSeconds: options.expiresInMs === undefined ? undefined : Math.ceil(options.expiresInMs / 1000),
  author: options.author,
});

export const tokenOptionsOf = (body: CreateTokenBody): CreateTokenOptions => ({
  roles: body.roles,
  expiresInMs: body.expiresInSeconds === undefined ? undefined : body.expiresInSeconds * 1000,
  author: body.author,
});

/** A value inside a JSON body: text as it is, other bytes in base64 (RFC 4648). */
export interface WireValue {
  value: string;
  encoding: 'utf8' | 'base64';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A value for a JSON body: as text when it is UTF-8, else base64 (no Buffer: browsers use this too). */
export function encodeValue(bytes: Uint8Array | string): WireValue {
  if (typeof bytes === 'string') return { value: bytes, encoding: 'utf8' };
  try {
    return { value: strictUtf8.decode(bytes), encoding: 'utf8' };
  } catch {
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { value: btoa(binary), encoding: 'base64' };
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The bytes of a WireValue; INVALID_ARGUMENT for base64 that is not (decoders drop what they cannot read). */
export function decodeValue(
  wire: { value: string; encoding?: WireValue['encoding'] },
  where: string,
  data: Record<string, unknown> = {},
): Uint8Array | string {
  if (wire.encoding !== 'base64') return wire.value;
  if (!BASE64.test(wire.value)) {
    throw new StoreError(
      'INVALID_ARGUMENT',
      `${where} is not valid base64 (RFC 4648, padded with "=") though its encoding is "base64"`,
      data,
    );
  }
  return Uint8Array.from(atob(wire.value), (c) => c.charCodeAt(0));
}

/** JSON Schema of a WireValue, for the routes that carry one. */
export const WIRE_VALUE_SCHEMA = {
  type: 'object',
  required: ['value'],
  additionalProperties: false,
  properties: {
    value: { type: 'string' },
    encoding: { type: 'string', enum: ['utf8', 'base64'], description: 'How `value` is written (default utf8).' },
  },
} as const;
