import type { FastifyRequest } from 'fastify';
import type { Grants, Store } from '../src/index.js';
import { forbidden, inHistory } from './auth.js';

/**
 * History for a caller who may read only part of a branch (docs/ARCHITECTURE.md, "Access"). Every commit's tree
 * holds the whole branch, so what such a caller is shown is cut down to what it may read:
 * - the log lists only commits that changed a key it may read (a commit that changed only others is not listed, so
 *   neither is its message, which names the key it set);
 * - a commit, a diff, a bisection and a blame show only readable keys;
 * - a revision must be in the branch's own history: a commit id of a branch it may not read shows nothing.
 * A caller who may read all of the branch sees history as it is, at no extra cost.
 */

/** The caller's grants when it may read only part of `branch`; null when it may read all of it (or auth is off). */
export function partialReader(request: FastifyRequest, branch: string): Grants | null {
  const { enabled, grants } = request.access;
  return enabled && !grants.canAll('read', branch, '') ? grants : null;
}

/** The changes among `changes` to keys the caller may read on `branch`. */
export const readable = <C extends { key: string }>(grants: Grants, branch: string, changes: C[]): C[] =>
  changes.filter((c) => grants.can('read', branch, c.key));

/** FORBIDDEN unless each commit is in the history of `branch` (for a partial reader: see above). */
export async function checkInHistory(store: Store, branch: string, commits: string[]): Promise<void> {
  if (commits.length === 0) return; // nothing to check, and an unborn branch has no head to resolve
  const head = await store.resolve(branch, branch);
  for (const commit of commits) {
    if (!(await inHistory(store, commit, head))) {
      throw forbidden(`read commits outside the history of ${branch}`);
    }
  }
}

/**
 * With auth on, FORBIDDEN unless each commit is in the history of `branch`: the route checked the caller's rights on
 * that branch, and a revision naming another branch's commit (`?at=ops`, `/v1/commits/ops`, a log cursor) must not
 * carry those rights over to it. Every caller, not only partial readers: a reader of all of `main` may read nothing
 * of `ops`.
 */
export async function checkCommits(
  request: FastifyRequest,
  store: Store,
  branch: string,
  commits: (string | null | undefined)[],
): Promise<void> {
  if (!request.access.enabled) return;
  await checkInHistory(
    store,
    branch,
    commits.filter((c): c is string => typeof c === 'string'),
  );
}

/** checkCommits for revisions (ids, `branch~N`, times), resolved as the route will resolve them on `branch`. */
export async function checkRevisions(
  request: FastifyRequest,
  store: Store,
  branch: string,
  revs: (string | undefined)[],
): Promise<void> {
  if (!request.access.enabled) return;
  const given = revs.filter((r): r is string => r !== undefined);
  await checkCommits(request, store, branch, await Promise.all(given.map((r) => store.resolve(r, branch))));
}

/**
 * The revision a read names with `at`, for the read to use. With auth on it is resolved and checked FIRST (then read
 * by its id): a read at a hidden branch's commit must be refused before it says whether the key is there.
 */
export async function readAt(
  request: FastifyRequest,
  store: Store,
  branch: string,
  at: string | undefined,
  nearest: 'before' | undefined,
): Promise<{ at: string | undefined; nearest: 'before' | undefined }> {
  if (!request.access.enabled || at === undefined) return { at, nearest };
  const commit = await store.resolve(at, branch, { nearest });
  await checkCommits(request, store, branch, [commit]);
  return { at: commit, nearest: undefined };
}

/** Whether a commit changed a key the caller may read on `branch` (what the log shows it). */
export async function changesReadable(store: Store, grants: Grants, branch: string, commit: string): Promise<boolean> {
  return readable(grants, branch, await store.changesOf(commit)).length > 0;
}
