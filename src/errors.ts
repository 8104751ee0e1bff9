/**
 * The closed set of errors the store raises. Every one carries a literal `code`, a message a person can act on and
 * typed `data`. Each code's exit code and HTTP status are in ONE table, `ERRORS`, which the adapters derive from.
 */

/**
 * The CLI's exit codes, by class of failure. 0–4 are the original classes; 5 and 6 exist because a script must act
 * differently on them: 5 (not allowed) will not succeed by retrying or by fixing the input — it needs other
 * credentials or permissions; 6 (unavailable) is the one class where running the same command again later can
 * succeed (a lock held, a limit reached for now, the server unreachable). 7 (invalid value): the request was
 * well-formed, but a value breaks a schema the branch declares — the data must change, not the command line.
 */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  denied: 5,
  unavailable: 6,
  invalid: 7,
} as const;

/** How an error code shows at each edge: the CLI's exit code, the HTTP status, and what it means. */
export interface ErrorClass {
  exit: (typeof EXIT)[keyof typeof EXIT];
  status: number;
  meaning: string;
}

/**
 * THE table of errors: every code a StoreError can carry, with its exit code and HTTP status. The CLI
 * (cli/exit-codes.ts) and the server (server/errors.ts) derive their mappings from it, and README's error table is
 * checked against it by test/errors-contract.test.ts, so the three cannot drift.
 */
export const ERRORS = {
  INVALID_KEY: {
    exit: EXIT.usage,
    status: 400,
    meaning: 'a key is malformed (empty segment, reserved name, bad character, too long)',
  },
  INVALID_BRANCH: {
    exit: EXIT.usage,
    status: 400,
    meaning: 'a branch name is not one `git check-ref-format --branch` accepts',
  },
  INVALID_ARGUMENT: {
    exit: EXIT.usage,
    status: 400,
    meaning: 'a request or command line that means nothing: bad option, body, policy or revision form',
  },
  TOO_LARGE: { exit: EXIT.usage, status: 413, meaning: 'a value or request body is over its size limit' },
  INVALID_VALUE: {
    exit: EXIT.invalid,
    status: 422,
    meaning: "a value breaks the branch's schemas (`data.violations`: key, JSON pointer, rule); nothing was written",
  },
  NOT_FOUND: {
    exit: EXIT.notFound,
    status: 404,
    meaning: 'no such key, directory, revision, branch, transaction or repository',
  },
  COMPACTED: {
    exit: EXIT.notFound,
    status: 410,
    meaning: 'the commit or time asked for was folded into a snapshot by compaction',
  },
  KEY_IS_DIRECTORY: { exit: EXIT.conflict, status: 409, meaning: 'a value was to be written where a directory is' },
  KEY_IS_VALUE: {
    exit: EXIT.conflict,
    status: 409,
    meaning: 'a key was to be written below a value, or a value was listed as a directory',
  },
  CONFLICT: {
    exit: EXIT.conflict,
    status: 409,
    meaning: 'a merge, revert or transaction met conflicting changes (`data.conflicts`); nothing was written',
  },
  BRANCH_EXISTS: { exit: EXIT.conflict, status: 409, meaning: 'the branch to create exists already' },
  REPOSITORY_EXISTS: {
    exit: EXIT.conflict,
    status: 409,
    meaning: 'a store exists already where one was to be created, with other settings',
  },
  REMOTE_EXISTS: { exit: EXIT.conflict, status: 409, meaning: 'the remote to add exists already, with another URL' },
  PUSH_REJECTED: {
    exit: EXIT.conflict,
    status: 409,
    meaning: 'a remote refused a push (`data.rejected`): it has commits this store lacks, or declined it',
  },
  PRECONDITION_FAILED: {
    exit: EXIT.conflict,
    status: 412,
    meaning: 'a compare-and-set (If-Match, If-None-Match, --if-match, tx check) did not hold',
  },
  UNAUTHORIZED: { exit: EXIT.denied, status: 401, meaning: 'the request carries no valid credentials' },
  FORBIDDEN: {
    exit: EXIT.denied,
    status: 403,
    meaning: 'not allowed: the default branch cannot be deleted, or the caller lacks the right',
  },
  LOCKED: {
    exit: EXIT.unavailable,
    status: 423,
    meaning: 'another writer holds the branch lock past the lock timeout; retry',
  },
  QUOTA: {
    exit: EXIT.unavailable,
    status: 429,
    meaning: 'a per-client limit is reached (open transactions); retry once some are closed',
  },
  REMOTE: {
    exit: EXIT.unavailable,
    status: 502,
    meaning: 'a store server or git remote could not be reached or gave no usable answer (or git is missing)',
  },
  CORRUPT: {
    exit: EXIT.error,
    status: 500,
    meaning: 'the repository is damaged (an object or ref does not parse); run `git fsck`',
  },
  INTERNAL: {
    exit: EXIT.error,
    status: 500,
    meaning: 'an error the store did not raise on purpose (a bug or an I/O failure); see the log',
  },
} as const satisfies Record<string, ErrorClass>;

/** Every code a StoreError can carry: the keys of the table, so a code cannot exist without its exit code and status. */
export type ErrorCode = keyof typeof ERRORS;

/** The table's codes in its order (README's order). */
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

// A code this build does not know (sent by a newer server) is treated as INTERNAL rather than crashing the lookup.
const classOf = (code: ErrorCode): ErrorClass => (Object.hasOwn(ERRORS, code) ? ERRORS[code] : ERRORS.INTERNAL);

/** The CLI exit code of an error: the table's for a StoreError, 1 (INTERNAL) for anything else. */
export const exitCodeOf = (e: unknown): number => classOf(isStoreError(e) ? e.code : 'INTERNAL').exit;

/** The HTTP status of an error code. */
export const statusOf = (code: ErrorCode): number => classOf(code).status;

/** The error body every failure has, over HTTP and with `--json`: `{"error":{"code","message","data"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; data?: Record<string, unknown> };
}

/** The body of an error answer. */
export const errorBody = (code: ErrorCode, message: string, data: Record<string, unknown> = {}): ErrorBody => ({
  error: { code, message, data },
});

/** An error as its body. Anything not raised on purpose is INTERNAL with `message` (never its stack or paths). */
export function errorBodyOf(e: unknown, internalMessage: string): ErrorBody {
  return isStoreError(e) ? errorBody(e.code, e.message, e.data) : errorBody('INTERNAL', internalMessage);
}

/** A per-key merge conflict, as data. Oids are blob ids (null: absent on that side). */
export interface Conflict {
  key: string;
  /** `read-modified`: a serializable transaction read (or listed) this key and the branch changed it since. */
  kind: 'both-modified' | 'modify-delete' | 'delete-modify' | 'add-add' | 'file-dir' | 'read-modified';
  base: string | null;
  ours: string | null;
  theirs: string | null;
}

/**
 * One way a value breaks a schema (`.store/schema.json`), as data. `pointer` is the JSON pointer of the offending
 * part of the value ("" for the whole value), `rule` the schema's path to the rule that failed (`#/properties/port/type`).
 */
export interface Violation {
  key: string;
  /** The pattern of `.store/schema.json` whose schema failed (for a broken schema file: the file's key). */
  pattern: string;
  pointer: string;
  /** The JSON Schema keyword that failed (`type`, `minimum`, `required`, …), or `json` / `schema` (see below). */
  keyword: string;
  rule: string;
  message: string;
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
  what: 'key' | 'directory' | 'revision' | 'branch' | 'repository' | 'object' | 'transaction' | 'token',
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

/** The violations an INVALID_VALUE lists at most: one mistake across a large tree must not make a huge answer. */
export const MAX_VIOLATIONS_LISTED = 100;

/** A write refused because values break the branch's schemas; the message names the first few. */
export function invalidValue(violations: Violation[]) {
  const keys = new Set(violations.map((v) => v.key));
  const shown = violations
    .slice(0, 3)
    .map((v) => `${v.key}${v.pointer ? ` at ${v.pointer}` : ''}: ${v.message}`)
    .join('; ');
  const rest = violations.length > 3 ? `; and ${violations.length - 3} more (see data.violations)` : '';
  return new StoreError<{ violations: Violation[]; total: number }>(
    'INVALID_VALUE',
    `${keys.size === 1 ? 'a value breaks' : `${keys.size} values break`} the branch's schemas (.store/schema.json): ${shown}${rest}; nothing was written`,
    { violations: violations.slice(0, MAX_VIOLATIONS_LISTED), total: violations.length },
  );
}

/** True for errors the store raised on purpose (as opposed to bugs or I/O failures). */
export const isStoreError = (e: unknown): e is StoreError => e instanceof StoreError;
