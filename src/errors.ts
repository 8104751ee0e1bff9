/**
 * The closed set of errors the store raises. Every one carries a literal `code`, a message a person can act on and
 * typed `data`; adapters map the code once (HTTP status in server/, exit code in cli/).
 */

/** Every code a StoreError can carry. */
export type ErrorCode =
  | 'INVALID_KEY'
  | 'INVALID_BRANCH'
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'KEY_IS_DIRECTORY'
  | 'KEY_IS_VALUE'
  | 'PRECONDITION_FAILED'
  | 'CONFLICT'
  | 'BRANCH_EXISTS'
  | 'REPOSITORY_EXISTS'
  | 'LOCKED'
  | 'COMPACTED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'TOO_LARGE'
  | 'QUOTA'
  | 'REMOTE'
  | 'CORRUPT'
  | 'INTERNAL';

/** A per-key merge conflict, as data. Oids are blob ids (null: absent on that side). */
export interface Conflict {
  key: string;
  /** `read-modified`: a serializable transaction read (or listed) this key and the branch changed it since. */
  kind: 'both-modified' | 'modify-delete' | 'delete-modify' | 'add-add' | 'file-dir' | 'read-modified';
  base: string | null;
  ours: string | null;
  theirs: string | null;
}

/** The base of every error the store raises on purpose. */
export class StoreError<D extends Record<string, unknown> = Record<string, unknown>> extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly data: D = {} as D,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export const invalidKey = (key: string, why: string) =>
  new StoreError('INVALID_KEY', `invalid key ${JSON.stringify(key)}: ${why}`, { key });

export const invalidBranch = (name: string, why: string) =>
  new StoreError('INVALID_BRANCH', `invalid branch name ${JSON.stringify(name)}: ${why}`, { branch: name });

export const invalidArgument = (message: string, data: Record<string, unknown> = {}) =>
  new StoreError('INVALID_ARGUMENT', message, data);

export const notFound = (
  what: 'key' | 'revision' | 'branch' | 'repository' | 'object' | 'transaction',
  name: string,
  hint = '',
) => new StoreError('NOT_FOUND', `${what} ${name} not found${hint ? ` — ${hint}` : ''}`, { kind: what, name });

export const keyIsDirectory = (key: string) =>
  new StoreError('KEY_IS_DIRECTORY', `${key} is a directory; delete it recursively first or write below it`, { key });

export const keyIsValue = (key: string, value: string) =>
  new StoreError('KEY_IS_VALUE', `${value} is a value, not a directory, so ${key} cannot be below it`, {
    key,
    value,
  });

export const preconditionFailed = (key: string, expected: string | null, actual: string | null) =>
  new StoreError(
    'PRECONDITION_FAILED',
    `${key} is ${actual ? `at ${actual.slice(0, 12)}` : 'absent'}, not ${expected ? `at ${expected.slice(0, 12)}` : 'absent'} as required; re-read it and retry`,
    { key, expected, actual },
  );

export const conflict = (message: string, conflicts: Conflict[]) =>
  new StoreError<{ conflicts: Conflict[] }>('CONFLICT', message, { conflicts });

export const tooLarge = (what: string, size: number, limit: number) =>
  new StoreError('TOO_LARGE', `${what} is ${size} bytes, over the limit of ${limit}`, { size, limit });

/** True for errors the store raised on purpose (as opposed to bugs or I/O failures). */
export const isStoreError = (e: unknown): e is StoreError => e instanceof StoreError;
