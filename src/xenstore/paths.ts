import { XsError } from './wire.js';

/**
 * Xenstore paths: absolute (`/local/domain/5/name`) or relative to the caller's domain home
 * (`/local/domain/<domid>`); letters, digits and `-/_@` only; `@introduceDomain` and `@releaseDomain` are watch-only
 * names. A path maps to store key segments (`/` is the root, no segments).
 */

const VALID = /^[A-Za-z0-9\-/_@]+$/;
/** Longest relative path (Xen's XENSTORE_REL_PATH_MAX); an absolute one may add its domain home. */
const REL_PATH_MAX = 2048;
const ABS_PATH_MAX = 3072;

/** The special watch paths. */
export const SPECIAL_PATHS = ['@introduceDomain', '@releaseDomain'] as const;

export const domainPath = (domid: number) => `/local/domain/${domid}`;

/** A node path made absolute and checked; EINVAL otherwise. `special` admits the `@` watch paths. */
export function resolvePath(path: string, domid: number, special = false): string {
  if (special && (SPECIAL_PATHS as readonly string[]).includes(path)) return path;
  const abs = path.startsWith('/') ? path : `${domainPath(domid)}/${path}`;
  const invalid =
    path.length === 0 ||
    path.length > REL_PATH_MAX + (path.startsWith('/') ? ABS_PATH_MAX - REL_PATH_MAX : 0) ||
    !VALID.test(abs) ||
    abs.includes('//') ||
    (abs.length > 1 && abs.endsWith('/')) ||
    path.startsWith('@');
  if (invalid) throw new XsError('EINVAL', `invalid path ${JSON.stringify(path)}`);
  return abs;
}

/** A resolved path's segments (none for `/`). */
export const segmentsOf = (abs: string): string[] => (abs === '/' ? [] : abs.slice(1).split('/'));

/** The path as the watcher gave it: relative to its domain home when its watch was relative. */
export function asWatched(abs: string, watched: string, domid: number): string {
  if (watched.startsWith('/') || watched.startsWith('@')) return abs;
  const home = domainPath(domid);
  return abs === home ? '' : abs.slice(home.length + 1);
}
