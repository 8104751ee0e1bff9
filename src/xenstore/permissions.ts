import { XsError } from './wire.js';

/**
 * Node permissions as Xenstore has them: a list whose first entry names the owner (who may do anything) and the
 * access of every domain not listed after it; later entries give one domain `r`ead, `w`rite, `b`oth or `n`one.
 * Written as `n0 r5 b7`. Dom0 (every socket connection) may do anything.
 */

export type Access = 'n' | 'r' | 'w' | 'b';

export interface Perm {
  access: Access;
  domid: number;
}

/** What a new node gets under the root when nothing says otherwise: owned by dom0, nobody else may touch it. */
export const ROOT_PERMS: Perm[] = [{ access: 'n', domid: 0 }];

/** `r5` → { r, 5 }; EINVAL for anything else (as Xen: a letter and a whole decimal or 0x number). */
export function parsePerm(text: string): Perm {
  const m = /^([nrwb])(0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) throw new XsError('EINVAL', `invalid permission ${JSON.stringify(text)}`);
  const digits = m[2]!;
  const domid = digits.startsWith('0x')
    ? Number.parseInt(digits, 16)
    : digits.startsWith('0')
      ? Number.parseInt(digits, 8)
      : Number(digits);
  if (!Number.isSafeInteger(domid) || domid > 0xffff) throw new XsError('EINVAL', `invalid domain in ${text}`);
  return { access: m[1] as Access, domid };
}

export const formatPerms = (perms: readonly Perm[]): string[] => perms.map((p) => `${p.access}${p.domid}`);

/** The stored form: one permission per line. */
export const serializePerms = (perms: readonly Perm[]): string => `${formatPerms(perms).join('\n')}\n`;

export function parseStoredPerms(text: string): Perm[] {
  const perms = text.split('\n').filter(Boolean).map(parsePerm);
  if (perms.length === 0) throw new XsError('EIO', 'a node has an empty permission list');
  return perms;
}

/**
 * Whether domain `domid` may `want` (read or write) a node with `perms`. Dom0 and the owner may do anything;
 * otherwise the first entry naming the domain decides, else the owner entry's access (the default).
 */
export function allowed(perms: readonly Perm[], domid: number, want: 'r' | 'w'): boolean {
  if (domid === 0 || perms[0]?.domid === domid) return true;
  const entry = perms.slice(1).find((p) => p.domid === domid) ?? perms[0];
  return entry !== undefined && (entry.access === 'b' || entry.access === want);
}

/** The one check every operation of a non-dom0 caller goes through: EACCES unless allowed. */
export function checkAccess(perms: readonly Perm[], domid: number, want: 'r' | 'w', path: string): void {
  if (!allowed(perms, domid, want))
    throw new XsError('EACCES', `domain ${domid} may not ${want === 'r' ? 'read' : 'write'} ${path}`);
}

/**
 * New permissions asked for by SET_PERMS: the owner (or dom0) may set them; a domain other than dom0 may not give
 * the node away (EPERM) nor list more than `maxEntries` entries (ENOSPC), as Xen's daemon.
 */
export function checkSetPerms(current: readonly Perm[], next: readonly Perm[], domid: number, maxEntries = 5): void {
  if (next.length === 0) throw new XsError('EINVAL', 'SET_PERMS needs at least the owner');
  if (domid === 0) return;
  if (current[0]?.domid !== domid) throw new XsError('EACCES', `domain ${domid} does not own this node`);
  if (next[0]!.domid !== domid) throw new XsError('EPERM', `domain ${domid} may not give its node to another domain`);
  if (next.length > maxEntries) throw new XsError('ENOSPC', `at most ${maxEntries} permissions per node`);
}
