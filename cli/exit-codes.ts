import { type ErrorCode, isStoreError } from '../src/index.js';

/** Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 conflict or failed precondition. */
export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, conflict: 4 } as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_KEY: EXIT.usage,
  INVALID_BRANCH: EXIT.usage,
  INVALID_ARGUMENT: EXIT.usage,
  NOT_FOUND: EXIT.notFound,
  COMPACTED: EXIT.notFound,
  CONFLICT: EXIT.conflict,
  PRECONDITION_FAILED: EXIT.conflict,
  BRANCH_EXISTS: EXIT.conflict,
  REPOSITORY_EXISTS: EXIT.conflict,
};

/** The one place an error becomes an exit code. */
export function exitCodeFor(error: unknown): number {
  return isStoreError(error) ? (BY_CODE[error.code] ?? EXIT.error) : EXIT.error;
}

/** A mistake in how the command was called (exit 2). */
export class UsageError extends Error {}
