import { Grants } from '../access/rules.js';
import type { ErrorCode } from '../errors.js';

/**
 * What a push by a limited token may change (docs/ARCHITECTURE.md, "Access"), checked in the pre-receive hook
 * before any ref moves, with the grants the git server handed it (server/git/access.ts). The rules are those of the
 * API:
 * - a branch update needs write on every key the pushed commits change on it: each commit the branch did not
 *   have, against its first parent, and the branch's old tree against its new one (which catches what a merge
 *   commit's first-parent diff does not, such as a merge that takes back an older value);
 * - creating a branch needs write on all of it, deleting one admin on all of it, and tags admin everywhere (a tag
 *   may name a commit of any branch).
 * A refusal names the keys the caller may read and only counts the others: an error never names a key the caller
 * cannot read.
 */
export async function accessRefusals(
  updates: readonly { ref: string; old: string; next: string }[],
  objects: { changedKeys(old: string, next: string): Promise<string[]> },
  grants: Grants,
  isZero: (oid: string) => boolean,
): Promise<{ code: ErrorCode; message: string }[]> {
  const refusals: { code: ErrorCode; message: string }[] = [];
  const refuse = (message: string) =>
    refusals.push({ code: 'FORBIDDEN', message: `${message}; an admin can grant it in .store/access.json` });
  for (const { ref, old, next } of updates) {
    if (ref.startsWith('refs/tags/')) {
      if (!grants.isAdmin()) refuse(`${ref}: pushing a tag needs admin (a tag may name a commit of any branch)`);
      continue;
    }
    if (!ref.startsWith('refs/heads/')) continue; // refused by the ref check already
    const branch = ref.slice('refs/heads/'.length);
    if (isZero(next)) {
      if (!grants.canAll('admin', branch, '')) refuse(`${ref}: deleting a branch needs admin on all of it`);
    } else if (isZero(old)) {
      if (!grants.canAll('write', branch, '')) refuse(`${ref}: creating a branch needs write on all of it`);
    } else {
      const denied = (await objects.changedKeys(old, next)).filter((k) => !grants.can(Grants.writeRight(k), branch, k));
      if (denied.length === 0) continue;
      const named = denied.filter((k) => grants.can('read', branch, k)).slice(0, 10);
      const others = denied.length - named.length;
      const list = [...named.map((k) => JSON.stringify(k)), ...(others > 0 ? [`${others} more`] : [])].join(', ');
      refuse(`${ref}: these commits change keys this token may not write on ${branch}: ${list}`);
    }
  }
  return refusals;
}
