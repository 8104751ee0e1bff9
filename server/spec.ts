import type { FastifySchema } from 'fastify';
import { HEADERS } from '../src/http/contract.js';
import { STATUS } from './errors.js';

/**
 * How each route is described: one object per operation gives fastify what it validates and serialises with, and
 * server/openapi.ts the rest of the OpenAPI operation (success answers with their content and headers, the error
 * statuses). Both come from the same object, so the document cannot say something the server does not do.
 */

type JsonSchema = Record<string, unknown>;

/** Request headers an operation may read, as OpenAPI header parameters. */
export const REQUEST_HEADERS = {
  message: {
    name: 'X-Store-Message',
    description: 'Commit message added below the generated first line, percent-encoded (so it may hold newlines).',
    schema: { type: 'string' },
  },
  author: {
    name: 'X-Store-Author',
    description: 'Commit author as `Name <email>`, optionally followed by git’s raw date `<epoch> <+hhmm>`.',
    schema: { type: 'string' },
  },
  committer: {
    name: 'X-Store-Committer',
    description: 'Committer when not the author (git’s GIT_COMMITTER_*), in the same form as X-Store-Author.',
    schema: { type: 'string' },
  },
  ifMatch: {
    name: 'If-Match',
    description:
      'Write only if the key’s current ETag is one of these (`"oid"`, `"oid1", "oid2"`), or `*`: only if the key has ' +
      'a value (RFC 9110 §13.1.1; weak tags never match). Otherwise 412.',
    schema: { type: 'string' },
  },
  ifNoneMatchWrite: {
    name: 'If-None-Match',
    description: '`*`: create only; 412 when the key exists. Other values are refused (400).',
    schema: { type: 'string', enum: ['*'] },
  },
  ifNoneMatchRead: {
    name: 'If-None-Match',
    description: 'ETags the client holds, or `*`: 304 without a body when the value’s ETag is one of them.',
    schema: { type: 'string' },
  },
  client: {
    name: 'X-Store-Client',
    description: 'Who the transaction belongs to, for the per-client cap (default: the client’s address).',
    schema: { type: 'string' },
  },
  force: {
    name: 'X-Store-Force',
    description:
      '`true`: change the branch’s schemas (`.store/schema.json`) even though stored values break them; the values ' +
      'this request writes are still checked. Admins only.',
    schema: { type: 'string', enum: ['true', 'false'] },
  },
  lastEventId: {
    name: 'Last-Event-ID',
    description: 'Resume after this commit (as `since`; sent by EventSource clients when they reconnect).',
    schema: { type: 'string' },
  },
} as const;

export type RequestHeader = keyof typeof REQUEST_HEADERS;

/** Response headers, as OpenAPI header objects. */
export const RESPONSE_HEADERS = {
  etag: {
    name: 'ETag',
    header: HEADERS.etag,
    description: 'The value’s blob oid, quoted: a strong entity tag for If-Match and If-None-Match.',
    schema: { type: 'string', pattern: '^"[0-9a-f]{40}"$' },
  },
  commit: {
    name: 'X-Store-Commit',
    header: HEADERS.commit,
    description: 'The commit the value was read at.',
    schema: { type: 'string', pattern: '^[0-9a-f]{40}$' },
  },
  commitTime: {
    name: 'X-Store-Commit-Time',
    header: HEADERS.commitTime,
    description:
      'With ?at: the time of the commit read (ISO 8601); with nearest=before it may be earlier than the time asked.',
    schema: { type: 'string' },
  },
} as const;

export type ResponseHeader = keyof typeof RESPONSE_HEADERS;

/** One success answer. `json` is its body's schema; `content` a body of another media type; neither: no body. */
export interface Answer {
  description: string;
  json?: JsonSchema;
  content?: { type: string; schema: JsonSchema };
  /** Headers always sent with this answer; `optional` ones only sometimes. */
  headers?: ResponseHeader[];
  optionalHeaders?: ResponseHeader[];
}

export interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  params?: JsonSchema;
  querystring?: JsonSchema;
  /** A JSON request body. */
  body?: JsonSchema;
  /** The JSON body may be left out (default: required). */
  bodyOptional?: boolean;
  /** A raw request body (the value's bytes), optional. */
  rawBody?: boolean;
  headers?: RequestHeader[];
  ok: Record<number, Answer>;
  /** Error statuses it can answer besides 500, which any operation can (and 401 and 403, unless `open`). */
  errors: number[];
  /** Served without a token even when the store has tokens (health, the API's description). */
  open?: boolean;
}

/** The error body: `{"error":{"code","message","data"}}`, `code` one of the store's error codes. */
export const errorSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: Object.keys(STATUS) },
        message: { type: 'string', description: 'One sentence a person can act on.' },
        data: { type: 'object', additionalProperties: true, description: 'Details, by code (e.g. data.conflicts).' },
      },
    },
  },
} as const;

declare module 'fastify' {
  interface FastifySchema {
    operationId?: string;
    summary?: string;
    description?: string;
    tags?: string[];
    /** The parts of the OpenAPI operation that fastify has no use for. */
    'x-operation'?: Operation;
  }
}

/** The fastify schema of an operation: what it validates (params, query, body) and serialises (JSON answers). */
export function operation(described: Operation): FastifySchema {
  // Any guarded route can answer 401 (no valid token) and 403 (not allowed) once the store has tokens,
  // and 429 past the caller's rate limit (server/limits.ts).
  const op = described.open ? described : { ...described, errors: [...new Set([...described.errors, 401, 403, 429])] };
  const response: Record<number, JsonSchema> = {};
  for (const [status, answer] of Object.entries(op.ok)) if (answer.json) response[Number(status)] = answer.json;
  for (const status of [...op.errors, 500]) response[status] = errorSchema;
  return {
    operationId: op.operationId,
    summary: op.summary,
    description: op.description,
    tags: op.tags,
    ...(op.params ? { params: op.params } : {}),
    ...(op.querystring ? { querystring: op.querystring } : {}),
    ...(op.body ? { body: op.body } : {}),
    response,
    'x-operation': op,
  };
}

/**
 * Statuses every write to a branch can answer: bad input, no branch, clash, precondition, too large, a value its
 * schemas refuse, locked.
 */
export const WRITE_ERRORS = [400, 404, 409, 412, 413, 422, 423];
/** Statuses a read at a revision can answer: bad input, not found, compacted away. */
export const READ_ERRORS = [400, 404, 410];
