import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Identity, parseIdentity, StoreError } from '../../src/index.js';

/** `Name <email>` (optionally with git's raw date `<epoch> <+hhmm>`) from X-Store-Author, when given. */
export function authorOf(request: FastifyRequest): Identity | undefined {
  const header = request.headers['x-store-author'];
  if (typeof header !== 'string' || header === '') return undefined;
  return parseIdentity(header, 'X-Store-Author');
}

/** The committer, in the same form, from X-Store-Committer (default: the author, dated now). */
export function committerOf(request: FastifyRequest): Identity | undefined {
  const header = request.headers['x-store-committer'];
  if (typeof header !== 'string' || header === '') return undefined;
  return parseIdentity(header, 'X-Store-Committer');
}

/** The optional commit message (X-Store-Message, percent-decoded so it may hold newlines). */
export function messageOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-store-message'];
  if (typeof header !== 'string' || header === '') return undefined;
  try {
    return decodeURIComponent(header);
  } catch {
    return header;
  }
}

/** An entity tag's oid: `"abc…"` or `W/"abc…"` → `abc…`. */
export const etagOid = (tag: string): string => tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

export const branchParams = {
  type: 'object',
  properties: { b: { type: 'string', minLength: 1 } },
  required: ['b'],
} as const;

/** A branch and a key path (the route's wildcard). */
export const keyParams = {
  type: 'object',
  properties: { b: { type: 'string', minLength: 1 }, '*': { type: 'string' } },
  required: ['b', '*'],
} as const;

const signatureSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    email: { type: 'string' },
    time: { type: 'string' },
    timezoneOffset: { type: 'number' },
  },
} as const;

export const commitSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    tree: { type: 'string' },
    parents: { type: 'array', items: { type: 'string' } },
    subject: { type: 'string' },
    message: { type: 'string' },
    author: signatureSchema,
    committer: signatureSchema,
    time: { type: 'string' },
  },
} as const;

/** In this plugin, request bodies are values: whatever the content type, they are taken as the bytes they are. */
export function acceptRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
}

/** The parts of a write request that preconditions and commit metadata come from. */
export function writeOptionsOf(request: FastifyRequest) {
  const ifMatch = request.headers['if-match'];
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined && ifNoneMatch !== '*') {
    throw new StoreError('INVALID_ARGUMENT', 'on writes, If-None-Match only takes "*" (create only)');
  }
  return {
    ifMatch: typeof ifMatch === 'string' ? etagOid(ifMatch) : undefined,
    ifNoneMatch: ifNoneMatch === '*',
    message: messageOf(request),
    author: authorOf(request),
    committer: committerOf(request),
  };
}

/** The response schema of a listing. */
export const listResponse = {
  type: 'object',
  properties: {
    commit: { type: ['string', 'null'] },
    entries: {
      type: 'array',
      items: {
        type: 'object',
        properties: { key: { type: 'string' }, type: { type: 'string' }, oid: { type: 'string' } },
      },
    },
  },
} as const;

/** Answers a value: raw bytes, its oid as ETag (304 when the client has it), the commit it was read at. */
export function sendValue(
  request: FastifyRequest,
  reply: FastifyReply,
  read: { value: Uint8Array; oid: string; commit: string | null },
) {
  reply.header('etag', `"${read.oid}"`);
  if (read.commit) reply.header('x-store-commit', read.commit);
  const ifNoneMatch = request.headers['if-none-match'];
  if (typeof ifNoneMatch === 'string' && ifNoneMatch.split(',').some((t) => etagOid(t) === read.oid)) {
    return reply.status(304).send();
  }
  return reply.type('application/octet-stream').send(Buffer.from(read.value));
}
