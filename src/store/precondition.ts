import { preconditionFailed, StoreError } from '../errors.js';

/** Stands for "any value" in `ifMatch`, as `If-Match: *` does in HTTP (RFC 9110 §13.1.1). */
export const ANY_VALUE = '*';

/**
 * Compare-and-set. `ifMatch` is the blob oid the key must have; a list matches when the key has any of them, and
 * `'*'` when it has any value at all (a directory or nothing is no value). `ifNoneMatch` requires the key to be absent.
 * These are HTTP's If-Match / If-None-Match: * semantics, so the server maps its headers onto them one to one.
 */
export interface Precondition {
  ifMatch?: string | readonly string[];
  ifNoneMatch?: boolean;
}

/**
 * Throws PRECONDITION_FAILED unless `p` holds for a key whose entry is `existing` (any tree entry, a directory
 * included) with value oid `current` (null: no value there).
 */
export function checkPrecondition(key: string, p: Precondition, existing: boolean, current: string | null): void {
  if (p.ifNoneMatch && existing) throw preconditionFailed(key, null, current ?? 'a directory');
  if (p.ifMatch === undefined) return;
  const wanted = typeof p.ifMatch === 'string' ? [p.ifMatch] : p.ifMatch;
  if (current !== null && wanted.some((oid) => oid === ANY_VALUE || oid === current)) return;
  if (wanted.length === 1 && wanted[0] !== ANY_VALUE) throw preconditionFailed(key, wanted[0]!, current);
  const expected = wanted.includes(ANY_VALUE) ? 'any value' : `one of ${wanted.map((o) => o.slice(0, 12)).join(', ')}`;
  throw new StoreError(
    'PRECONDITION_FAILED',
    `${key} is ${current ? `at ${current.slice(0, 12)}` : 'absent'}, not ${expected} as required; re-read it and retry`,
    { key, expected: [...wanted], actual: current },
  );
}
