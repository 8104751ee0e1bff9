import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AccessRules, openStore, StoreError } from '../src/index.js';
import { diskStore, git, sleep, tempDir } from './helpers.js';

/** A token's secret: everything after `gst_<12 hex>_` (base64url, which may itself hold '_'). */
const secretOf = (token: string) => token.slice('gst_'.length + 13);

/** The access rules of `.store/access.json` and the token file (issue 15), through the library. */

const rules = (doc: unknown) => AccessRules.parse(JSON.stringify(doc));

describe('access rules', () => {
  const doc = {
    roles: {
      web: { rules: [{ branch: 'main', prefix: 'app/web/', access: 'read' }] },
      ops: {
        rules: [
          { branch: '*', prefix: '', access: 'write' },
          { branch: '*', prefix: 'secret/', access: 'deny' },
          { branch: '*', prefix: 'secret/shared/', access: 'read' },
        ],
      },
      rel: { rules: [{ branch: 'release/*', prefix: 'app/', access: 'write' }], impersonate: true },
      mixed: {
        rules: [
          { branch: 'main', prefix: 'x/', access: 'write' },
          { branch: 'main', prefix: 'x/', access: 'deny' },
          { branch: '*', prefix: 'y/', access: 'deny' },
          { branch: 'main', prefix: 'y/', access: 'read' },
        ],
      },
    },
  };
  const r = rules(doc);

  it('grants only what a rule grants, on the branches it names', () => {
    const web = r.grants(['web']);
    expect(web.can('read', 'main', 'app/web/port')).toBe(true);
    expect(web.can('read', 'dev', 'app/web/port')).toBe(false);
    expect(web.can('write', 'main', 'app/web/port')).toBe(false);
    expect(web.can('read', 'main', 'app/db/password')).toBe(false);
    expect(web.can('read', 'main', 'other')).toBe(false);
    expect(r.grants([]).can('read', 'main', 'app/web/port')).toBe(false);
    expect(r.grants(['nosuchrole']).readsBranch('main')).toBe(false);
  });

  it('the most specific rule wins; deny beats the others at equal specificity; rights nest', () => {
    const ops = r.grants(['ops']);
    expect(ops.can('write', 'dev', 'a/b')).toBe(true);
    expect(ops.can('read', 'dev', 'a/b')).toBe(true); // write includes read
    expect(ops.can('admin', 'dev', 'a/b')).toBe(false);
    expect(ops.can('read', 'dev', 'secret/db')).toBe(false);
    expect(ops.can('read', 'dev', 'secret/shared/ca')).toBe(true); // longer prefix than the deny
    expect(ops.can('write', 'dev', 'secret/shared/ca')).toBe(false);
    const mixed = r.grants(['mixed']);
    expect(mixed.can('read', 'main', 'x/1')).toBe(false); // deny and write on the same prefix and branch
    expect(mixed.can('read', 'main', 'y/1')).toBe(true); // an exact branch name is more specific than `*`
    expect(mixed.can('read', 'dev', 'y/1')).toBe(false);
    // Roles together: the union of their rules, with the same precedence.
    expect(r.grants(['web', 'ops']).can('read', 'main', 'app/web/x')).toBe(true);
  });

  it('branch patterns match any run of characters', () => {
    const rel = r.grants(['rel']);
    expect(rel.can('write', 'release/1.2', 'app/x')).toBe(true);
    expect(rel.can('write', 'release/a/b', 'app/x')).toBe(true);
    expect(rel.can('write', 'main', 'app/x')).toBe(false);
    expect(rel.impersonate).toBe(true);
    expect(r.grants(['web']).impersonate).toBe(false);
  });

  it('canAll needs the right on every key below; canSee shows a directory with something readable below', () => {
    const ops = r.grants(['ops']);
    expect(ops.canAll('write', 'main', 'app/')).toBe(true);
    expect(ops.canAll('write', 'main', '')).toBe(false); // secret/ is denied
    expect(ops.canAll('read', 'main', 'secret/shared/')).toBe(true);
    const web = r.grants(['web']);
    expect(web.canSee('main', '')).toBe(true);
    expect(web.canSee('main', 'app')).toBe(true);
    expect(web.canSee('main', 'app/web')).toBe(true);
    expect(web.canSee('main', 'app/db')).toBe(false);
    expect(web.canSee('main', 'secret')).toBe(false);
    expect(web.canSee('dev', '')).toBe(false);
    expect(web.readsBranch('main')).toBe(true);
    expect(web.readsBranch('dev')).toBe(false);
  });

  it('admin (built in) may do everything; writing .store/ needs admin', () => {
    const admin = r.grants(['admin']);
    expect(admin.canAll('admin', '*', '')).toBe(true);
    expect(admin.can('write', 'any/branch', '.store/access.json')).toBe(true);
    expect(r.has('admin')).toBe(true);
    expect(r.has('web')).toBe(true);
    expect(r.has('nosuch')).toBe(false);
    // A writer of everything is not an admin.
    expect(r.grants(['ops']).canAll('admin', '*', '')).toBe(false);
    expect(admin.isAdmin()).toBe(true);
    expect(r.grants(['ops']).isAdmin()).toBe(false);
  });

  it('is admin only where no rule narrows it: `*` admin beside a deny on one branch or prefix is not admin', () => {
    const almost = rules({
      roles: {
        a: {
          rules: [
            { branch: '*', prefix: '', access: 'admin' },
            { branch: 'ops', prefix: '', access: 'deny' },
          ],
        },
        b: {
          rules: [
            { branch: '*', prefix: '', access: 'admin' },
            { branch: 'prod*', prefix: 'x/', access: 'read' },
          ],
        },
        c: { rules: [{ branch: '*', prefix: '', access: 'admin' }] },
      },
    });
    expect(almost.grants(['a']).can('read', 'ops', 'k')).toBe(false);
    expect(almost.grants(['a']).isAdmin()).toBe(false);
    expect(almost.grants(['b']).isAdmin()).toBe(false);
    expect(almost.grants(['c']).isAdmin()).toBe(true);
  });

  it('refuses a malformed document, naming what is wrong', () => {
    const bad: [unknown, RegExp][] = [
      [[], /the document must be an object/],
      [{ roles: [] }, /"roles" must be an object/],
      [{ roles: {}, extra: 1 }, /unknown field "extra"/],
      [{ roles: { admin: { rules: [] } } }, /role "admin" is built in/],
      [{ roles: { a: { rules: {} } } }, /role "a" "rules" must be an array/],
      [{ roles: { a: { rules: [{ access: 'all' }] } } }, /rule 0 "access" must be one of read, write, admin, deny/],
      [{ roles: { a: { rules: [{ access: 'read', prefix: 3 }] } } }, /"prefix" must be a string/],
      [{ roles: { a: { rules: [{ access: 'read', key: 'x' }] } } }, /unknown field "key"/],
      [{ roles: { a: { rules: [], impersonate: 'yes' } } }, /"impersonate" must be true or false/],
    ];
    for (const [doc, message] of bad) expect(() => rules(doc), JSON.stringify(doc)).toThrow(message);
    expect(() => AccessRules.parse('{')).toThrow(/not JSON/);
  });
});

describe('tokens', () => {
  it('are stored hashed, outside every branch, 0600, and verified in constant form', async () => {
    const store = await diskStore();
    expect(await store.access.tokens.enabled()).toBe(false);
    const { token, info } = await store.access.tokens.create('ci', { roles: ['admin'] });
    expect(token).toMatch(/^gst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(info).toMatchObject({ name: 'ci', roles: ['admin'], expires: null, lastUsed: null });
    expect(await store.access.tokens.enabled()).toBe(true);

    const file = path.join(store.dir, 'auth/tokens.json');
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain(secretOf(token));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);

    // No commit carries it: a clone has no auth/ and no object holds the file's content.
    await store.set('k', 'v');
    const clone = path.join(tempDir(), 'clone.git');
    git(['clone', '--bare', '-q', store.dir, clone]);
    expect(fs.existsSync(path.join(clone, 'auth'))).toBe(false);
    expect(git(['--git-dir', clone, 'ls-tree', '-r', '--name-only', 'main']).toString().trim()).toBe('k');

    expect(await store.access.tokens.verify(token)).toMatchObject({ name: 'ci', roles: ['admin'] });
    const id = token.slice(4, 16);
    const secret = secretOf(token);
    const flipped = `gst_${id}_${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`;
    expect(await store.access.tokens.verify(flipped)).toBeNull();
    expect(await store.access.tokens.verify(`gst_000000000000_${secret}`)).toBeNull();
    expect(await store.access.tokens.verify('nonsense')).toBeNull();
    expect(await store.access.tokens.verify('')).toBeNull();
    await store.close();
  });

  it('expire, are revoked in every process within 100 ms, and list without secrets', async () => {
    const store = await diskStore();
    const now = new Date();
    const a = await store.access.tokens.create('a', { roles: ['r'], expiresInMs: 60_000, now });
    const b = await store.access.tokens.create('b');
    expect(await store.access.tokens.verify(a.token, now.getTime() + 59_000)).not.toBeNull();
    expect(await store.access.tokens.verify(a.token, now.getTime() + 61_000)).toBeNull();

    // Another process (here another store on the same repository) revokes b: this one refuses it at once.
    expect(await store.access.tokens.verify(b.token)).not.toBeNull();
    const other = await openStore({ fs, dir: store.dir });
    await other.access.tokens.revoke('b');
    await expect(other.access.tokens.revoke('b')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await sleep(110);
    expect(await store.access.tokens.verify(b.token)).toBeNull();

    const list = await other.access.tokens.list();
    expect(list.map((t) => t.name)).toEqual(['a']);
    expect(JSON.stringify(list)).not.toContain(secretOf(a.token));
    // Revoking every token keeps auth on: the store is locked, not opened to everyone.
    await other.access.tokens.revoke('a');
    expect(await store.access.tokens.enabled()).toBe(true);
    await other.close();
    await store.close();
  });

  it('refuses bad names, duplicates and a damaged file', async () => {
    const store = await diskStore();
    await expect(store.access.tokens.create('bad name')).rejects.toThrow(/invalid token name/);
    await expect(store.access.tokens.create('x', { roles: ['no spaces'] })).rejects.toThrow(/invalid role name/);
    await expect(store.access.tokens.create('x', { expiresInMs: 0 })).rejects.toThrow(/expire in the future/);
    await store.access.tokens.create('x');
    await expect(store.access.tokens.create('x')).rejects.toThrow(/a token named x exists/);
    fs.writeFileSync(path.join(store.dir, 'auth/tokens.json'), '{broken');
    const e = await store.access.tokens.enabled().catch((e: unknown) => e);
    expect(e).toBeInstanceOf(StoreError);
    expect((e as StoreError).code).toBe('CORRUPT');
    await store.close();
  });

  it('records the last use, written back once a minute at most', async () => {
    const store = await diskStore();
    const { token } = await store.access.tokens.create('u');
    await store.access.tokens.verify(token);
    await store.access.tokens.flush();
    const used = (await store.access.tokens.list())[0]!.lastUsed;
    expect(used).not.toBeNull();
    expect(Date.now() - Date.parse(used!)).toBeLessThan(60_000);
    await store.close();
  });
});
