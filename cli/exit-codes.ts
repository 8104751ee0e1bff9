import { EXIT, exitCodeOf, StoreError } from '../src/index.js';

/** Exit codes: the classes of src/errors.ts (0 ok, 1 other, 2 usage, 3 not found, 4 conflict, 5 denied, 6 retry). */
export { EXIT };

/** The one place an error becomes an exit code: src/errors.ts's table (no second table here). */
export const exitCodeFor = exitCodeOf;

/**
 * A command that did its work and printed its answer, but whose answer is a failure for scripts: `store validate`
 * exits 4 when it found violations. Not an error: nothing more is printed.
 */
export class ExitWith extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitWith';
  }
}

/** A mistake in how the command was called: INVALID_ARGUMENT, so exit 2 and the same JSON shape as every error. */
export class UsageError extends StoreError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('INVALID_ARGUMENT', message, data);
    this.name = 'UsageError';
  }
}
