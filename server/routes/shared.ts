import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  CONTENT_TYPES,
  decodeMessage,
  formatEtag,
  HEADERS,
  ifMatchOf,
  ifNoneMatchHits,
} from '../../src/http/contract.js';
import { type Identity, parseIdentity, type Store, StoreError } from '../../src/index.js';
import { forbidden } from '../auth.js';

/** A request header as one string (node joins repeated ones), or undefined when absent or empty. */
export function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text === undefined || text === '' ? undefined : text;
}

/**
 * `Name <email>` (optionally with git's raw date `<epoch> <+hhmm>`) from X-Store-Author, when given. With auth on,
 * the author is the token's identity: naming another needs a role with `impersonate`.
 */
export function authorOf(request: FastifyRequest): Identity | undefined {
  const value = header(request, HEADERS.author);
  const named = value === undefined ? undefined : parseIdentity(value, 'X-Store-Author');
  return asPrincipal(request, named, 'X-Store-Author') ?? request.access.principal?.author;
}

/** The committer, in the same form, from X-Store-Committer (default: the author, dated now). */
export function committerOf(request: FastifyRequest): Identity | undefined {
  const value = header(request, HEADERS.committer);
  const named = value === undefined ? undefined : parseIdentity(value, 'X-Store-Committer');
  return asPrincipal(request, named, 'X-Store-Committer');
}

/** A named identity, refused when the token may not speak for others (its own name and email always pass). */
function asPrincipal(request: FastifyRequest, named: Identity | undefined, where: string): Identity | undefined {
  const { principal, grants } = request.access;
  if (!named || !principal || grants.impersonate) return named;
  if (named.name === principal.author.name && named.email === principal.author.email) return named;
  throw forbidden(`name another person in ${where}: commits are signed with the token's identity`);
}

/** The optional commit message (X-Store-Message, percent-decoded so it may hold newlines). */
export function messageOf(request: FastifyRequest): string | undefined {
  const value = header(request, HEADERS.message);
  return value === undefined ? undefined : decodeMessage(value);
}

const branchName = { type: 'string', minLength: 1, description: 'A branch name; `/` in it sent as `%2F`.' };

export const branchParams = {
  type: 'object',
  properties: { branch: branchName },
  required: ['branch'],
} as const;

/** A branch and a key path (the route's wildcard). */
export const keyParams = {
  type: 'object',
  properties: { branch: branchName, '*': { type: 'string' } },
  required: ['branch', '*'],
} as const;

export const hex40 = { type: 'string', pattern: '^[0-9a-f]{40}$' } as const;
export const nullableHex40 = { type: ['string', 'null'], pattern: '^[0-9a-f]{40}$' } as const;

const signatureSchema = {
  type: 'object',
  required: ['name', 'email', 'time', 'timezoneOffset'],
  properties: {
    name: { type: 'string' },
    email: { type: 'string' },
    time: { type: 'string', format: 'date-time' },
    timezoneOffset: { type: 'integer', description: 'Minutes east of UTC.' },
  },
} as const;

export const commitSchema = {
  type: 'object',
  required: ['id', 'tree', 'parents', 'subject', 'message', 'author', 'committer', 'time'],
  properties: {
    id: hex40,
    tree: hex40,
    parents: { type: 'array', items: hex40 },
    subject: { type: 'string' },
    message: { type: 'string' },
    author: signatureSchema,
    committer: signatureSchema,
    time: { type: 'string', format: 'date-time', description: 'The committer’s time.' },
  },
} as const;

/**
 * The query of a read at a revision: `at`, and `nearest=before` to read, for a time inside a compacted interval,
 * the kept snapshot at or before it instead of answering 410 COMPACTED.
 */
export const readAtQuery = {
  at: { type: 'string', description: 'A revision to read at: commit id or prefix, branch~N, ISO time.' },
  nearest: { type: 'string', enum: ['before'], description: 'before: the kept snapshot at or before a compacted time' },
} as const;

/** How current a read is: `cached` trades linearizability for speed (see ReadOptions in src/store/types.ts). */
export const consistencyQuery = {
  type: 'string',
  enum: ['linearizable', 'cached'],
  description: 'linearizable (default): every write acknowledged before the read; cached: may lag ~10 ms.',
} as const;

/**
 * Names the commit a read at a revision used and its time (X-Store-Commit, X-Store-Commit-Time): with `nearest` it
 * may be older than the time asked for.
 */
export async function commitHeaders(reply: FastifyReply, store: Store, commit: string | null): Promise<void> {
  if (!commit) return;
  reply.header(HEADERS.commit, commit);
  reply.header(HEADERS.commitTime, (await store.commit(commit)).committer.time);
}

/** The answer of a write: the commit made. */
export const commitResult = { type: 'object', required: ['commit'], properties: { commit: hex40 } } as const;

/** The answer of a value written. */
export const setResult = {
  type: 'object',
  required: ['commit', 'key', 'oid'],
  properties: { commit: hex40, key: { type: 'string' }, oid: hex40 },
} as const;

/** In this plugin, request bodies are values: whatever the content type, they are taken as the bytes they are. */
export function acceptRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
}

/**
 * X-Store-Force: true, for a schema change that stored values do not meet yet. Only an admin may: it lets values
 * stand that the rules refuse (docs/ARCHITECTURE.md, "Schemas").
 */
export function forceOf(request: FastifyRequest): boolean {
  const value = header(request, HEADERS.force);
  if (value === undefined || value === 'false') return false;
  if (value !== 'true') throw new StoreError('INVALID_ARGUMENT', 'X-Store-Force takes "true" or "false"');
  if (!request.access.grants.isAdmin()) throw forbidden('force a schema change past the values it breaks');
  return true;
}

/** One way a value breaks a schema, as INVALID_VALUE's data and previews list it (src/errors.ts, Violation). */
export const violationSchema = {
  type: 'object',
  required: ['key', 'pattern', 'pointer', 'keyword', 'rule', 'message'],
  properties: {
    key: { type: 'string' },
    pattern: { type: 'string', description: 'The pattern of .store/schema.json whose schema failed.' },
    pointer: { type: 'string', description: 'JSON pointer into the value ("" for the whole value).' },
    keyword: { type: 'string', description: 'The rule’s keyword (`type`, `minimum`, …), or `json` / `schema`.' },
    rule: { type: 'string', description: 'The path of the rule in its schema (`#/properties/port/type`).' },
    message: { type: 'string' },
  },
} as const;

/** The parts of a write request that preconditions and commit metadata come from. */
export function writeOptionsOf(request: FastifyRequest) {
  const ifNoneMatch = header(request, HEADERS.ifNoneMatch);
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
    throw new StoreError('INVALID_ARGUMENT', 'on writes, If-None-Match only takes "*" (create only)');
  }
  return {
    ifMatch: ifMatchOf(header(request, HEADERS.ifMatch)),
    ifNoneMatch: ifNoneMatch !== undefined,
    message: messageOf(request),
    author: authorOf(request),
    committer: committerOf(request),
    force: forceOf(request),
  };
}

/** What a write answers: its commit, or with `changed: false` the head it left as it was (no empty commits). */
export const writeResult = {
  type: 'object',
  required: ['commit', 'changed'],
  properties: { commit: hex40, changed: { type: 'boolean' } },
} as const;

/** What setting a key on a branch answers: the write's result, the key and its blob oid. */
export const setWriteResult = {
  type: 'object',
  required: [...writeResult.required, 'key', 'oid'],
  properties: { ...writeResult.properties, key: { type: 'string' }, oid: hex40 },
} as const;

/** The response schema of a listing. */
export const listResponse = {
  type: 'object',
  required: ['commit', 'entries'],
  properties: {
    commit: { ...nullableHex40, description: 'The commit listed (null: the branch has no commit yet).' },
    entries: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'type', 'oid'],
        properties: { key: { type: 'string' }, type: { type: 'string', enum: ['value', 'dir'] }, oid: hex40 },
      },
    },
    total: { type: 'integer', description: 'With `limit` or `offset`: how many entries the whole listing has.' },
  },
} as const;

/** Answers a value: raw bytes, its oid as ETag (304 when the client has it), the commit it was read at. */
export function sendValue(
  request: FastifyRequest,
  reply: FastifyReply,
  read: { value: Uint8Array; oid: string; commit: string | null },
) {
  reply.header(HEADERS.etag, formatEtag(read.oid));
  if (read.commit) reply.header(HEADERS.commit, read.commit);
  if (ifNoneMatchHits(header(request, HEADERS.ifNoneMatch), read.oid)) return reply.status(304).send();
  return reply.type(CONTENT_TYPES.value).send(Buffer.from(read.value));
}
