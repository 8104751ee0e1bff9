import { describe, expect, it } from 'vitest';
import { resolvePath } from '../src/xenstore/paths.js';
import {
  allowed,
  checkAccess,
  checkSetPerms,
  parsePerm,
  parseStoredPerms,
  serializePerms,
} from '../src/xenstore/permissions.js';
import { XsError } from '../src/xenstore/wire.js';

/**
 * The permission check every non-dom0 operation goes through. Socket connections are dom0, so the daemon's own tests
 * never reach a refusal: these tests pin the rules down, as Xen's daemon applies them.
 */

const errnoOf = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof XsError ? e.errno : String(e);
  }
};

describe('Xenstore permissions', () => {
  const perms = ['n5', 'r7', 'w8', 'b9', 'n10'].map(parsePerm);

  it('the owner and dom0 may do anything; others get their own entry, else the owner entry as default', () => {
    for (const want of ['r', 'w'] as const) {
      expect(allowed(perms, 0, want)).toBe(true);
      expect(allowed(perms, 5, want)).toBe(true);
      expect(allowed(perms, 9, want)).toBe(true);
      expect(allowed(perms, 10, want)).toBe(false);
      expect(allowed(perms, 11, want)).toBe(false); // default: n
    }
    expect(allowed(perms, 7, 'r')).toBe(true);
    expect(allowed(perms, 7, 'w')).toBe(false);
    expect(allowed(perms, 8, 'w')).toBe(true);
    expect(allowed(perms, 8, 'r')).toBe(false);
    const readable = ['r5', 'n7'].map(parsePerm);
    expect(allowed(readable, 11, 'r')).toBe(true); // default r
    expect(allowed(readable, 11, 'w')).toBe(false);
    expect(allowed(readable, 7, 'r')).toBe(false); // its own entry beats the default
    expect(errnoOf(() => checkAccess(readable, 11, 'w', '/x'))).toBe('EACCES');
    expect(errnoOf(() => checkAccess(readable, 11, 'r', '/x'))).toBeNull();
  });

  it('parses what xenstore-chmod sends and refuses anything else', () => {
    expect(parsePerm('b0x10')).toEqual({ access: 'b', domid: 16 });
    expect(parsePerm('r010')).toEqual({ access: 'r', domid: 8 });
    expect(parsePerm('w32767')).toEqual({ access: 'w', domid: 32767 });
    for (const bad of ['', 'x5', 'r', 'r-1', 'r5 ', 'rr5', 'r99999999', 'R5']) {
      expect(
        errnoOf(() => parsePerm(bad)),
        bad,
      ).toBe('EINVAL');
    }
    expect(parseStoredPerms(serializePerms(perms))).toEqual(perms);
  });

  it('SET_PERMS: only the owner (or dom0); a domain may not give its node away or list more than 5 entries', () => {
    const mine = ['n5'].map(parsePerm);
    expect(errnoOf(() => checkSetPerms(mine, ['b5', 'r6'].map(parsePerm), 5))).toBeNull();
    expect(errnoOf(() => checkSetPerms(mine, ['b6'].map(parsePerm), 5))).toBe('EPERM');
    expect(errnoOf(() => checkSetPerms(mine, ['b5'].map(parsePerm), 6))).toBe('EACCES');
    expect(errnoOf(() => checkSetPerms(mine, ['n5', 'r1', 'r2', 'r3', 'r4', 'r6'].map(parsePerm), 5))).toBe('ENOSPC');
    expect(errnoOf(() => checkSetPerms(mine, ['n6', 'r1', 'r2', 'r3', 'r4', 'r7'].map(parsePerm), 0))).toBeNull();
    expect(errnoOf(() => checkSetPerms(mine, [], 0))).toBe('EINVAL');
  });

  it('paths: relative ones live under the domain home; only letters, digits and -/_@; @ names only for watches', () => {
    expect(resolvePath('xenstore-test/7', 0)).toBe('/local/domain/0/xenstore-test/7');
    expect(resolvePath('name', 5)).toBe('/local/domain/5/name');
    expect(resolvePath('/', 0)).toBe('/');
    expect(resolvePath('@introduceDomain', 0, true)).toBe('@introduceDomain');
    for (const bad of ['', '/a/', '//a', '/a//b', '/a/../b', '/a b', '/a.b', '@introduceDomain', '@x', '/é']) {
      expect(
        errnoOf(() => resolvePath(bad, 0)),
        bad,
      ).toBe('EINVAL');
    }
    expect(errnoOf(() => resolvePath('@other', 0, true))).toBe('EINVAL');
    expect(errnoOf(() => resolvePath(`/${'a'.repeat(3100)}`, 0))).toBe('EINVAL');
  });
});
