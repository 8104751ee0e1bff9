import type { FastifyRequest } from 'fastify';
import { type Identity, StoreError } from '../../src/index.js';

/** `Name <email>` from X-Store-Author, when given. */
export function authorOf(request: FastifyRequest): Identity | undefined {
  const header = request.headers['x-store-author'];
  if (typeof header !== 'string' || header === '') return undefined;
  const m = /^\s*([^<>]+?)\s*<([^<>]*)>\s*$/.exec(header);
  if (!m) throw new StoreError('INVALID_ARGUMENT', 'X-Store-Author must look like "Name <email>"');
  return { name: m[1]!, email: m[2]! };
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
