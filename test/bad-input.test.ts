import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, isStoreError, MAX_KEY_BYTES, type Store, StoreError } from '../src/index.js';
import { factories } from './conformance/store-factories.js';
import { gitEnv } from './helpers.js';

/** A key of exactly `bytes` UTF-8 bytes, made of valid segments (each under the 255-byte segment limit). */
const keyOfBytes = (bytes: number, last = 'z') => `${`${'k'.repeat(199)}/`.repeat(15)}${last.repeat(bytes - 3000)}`;

const invalidKeys: [string, string][] = [
  ['empty', ''],
  ['only a slash', '/'],
  ['a .. segment', 'a/../b'],
  ['just ..', '..'],
  ['a . segment', 'a/./b'],
  ['.git', '.git'],
  ['.git inside', 'a/.git/b'],
  ['.GIT in another case', 'a/.GIT'],
  ['an empty segment', 'a//b'],
  ['a trailing slash', 'a/'],
  ['a NUL byte', 'a\0b'],
  ['a control character', 'a\u0001b'],
  ['a newline', 'a\nb'],
  ['DEL', 'a\u007fb'],
  ['a backslash', 'a\\b'],
  ['a segment over 255 bytes', `a/${'s'.repeat(256)}`],
  [`${MAX_KEY_BYTES + 1} bytes`, keyOfBytes(MAX_KEY_BYTES + 1)],
  // 3,037 characters but 3,074 bytes: the limit is in bytes.
  ['over the limit in bytes, not characters', `${`${'k'.repeat(199)}/`.repeat(15)}${'é'.repeat(37)}`],
];

const invalidBranches = [
  'a..b',
  '-x',
  'x.lock',
  'a b',
  'a~1',
  'a^b',
  'a:b',
  'a?',
  'a*',
  'a[b',
  'a/',
  '.hidden',
  'a@{1}',
];

/** The branches and their heads: what must be unchanged after a refused request. */
const heads = async (store: Store) => (await store.branches()).map((b) => `${b.name} ${b.head}`);

/**
 * Runs `action`, which must fail with a StoreError of `code` whose message is one human sentence (no stack trace),
 * and checks that no branch moved, appeared or disappeared.
 */
async function refused(store: Store, code: ErrorCode, action: () => unknown): Promise<StoreError> {
  const before = await heads(store);
  let caught: unknown = null;
  try {
    // Some methods throw before returning their promise; treat both alike.
    await action();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}, but it succeeded`).not.toBeNull();
  expect(isStoreError(caught), `expected a StoreError, got ${String(caught)}`).toBe(true);
  const error = caught as StoreError;
  expect(error).toBeInstanceOf(StoreError);
  expect(error.code, error.message).toBe(code);
  expect(error.name).toBe('StoreError');
  const message = error.message;
  expect(message.trim().length).toBeGreaterThan(10);
  expect(message).toMatch(/[A-Za-z]{2,} [A-Za-z]{2,}/);
  expect(message).not.toMatch(/\n\s*at\s|node_modules|\.(ts|js):\d+|Error:|undefined|\[object Object\]/);
  expect(message).not.toContain('\n');
  expect(await heads(store)).toEqual(before);
  return error;
}

for (const f of factories) {
  describe(f.name, () => {
    /** A store with a little content: dir/x, val and a branch dev. */
    async function seeded(options: Parameters<typeof f.open>[0] = {}) {
      const store = await f.open(options);
      await store.set('dir/x', '1');
      await store.set('val', 'v');
      await store.createBranch('dev');
      return store;
    }

    /** After refused requests: the store still reads and writes, and (on disk) git finds nothing wrong. */
    async function stillWorks(store: Store) {
      const head = await store.resolve('main');
      const w = await store.set('still/works', 'yes');
      expect(await store.getText('still/works')).toBe('yes');
      expect((await store.commit('main')).parents).toEqual([head]);
      expect(w.commit).toBe(await store.resolve('main'));
      if (f.name === 'disk') {
        const r = spawnSync('git', ['--git-dir', store.dir, 'fsck', '--strict'], { env: gitEnv, encoding: 'utf8' });
        expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
        expect(`${r.stdout}${r.stderr}`).not.toMatch(/^(error|warning|missing|broken)/im);
      }
      await store.close();
    }

    it('refuses invalid keys everywhere with INVALID_KEY', async () => {
      const store = await seeded();
      for (const [label, key] of invalidKeys) {
        const e = await refused(store, 'INVALID_KEY', () => store.set(key, 'value'));
        expect(e.data.key, label).toBe(key);
        await refused(store, 'INVALID_KEY', () => store.set(key, 'value', { branch: 'dev' }));
        await refused(store, 'INVALID_KEY', () => store.get(key));
        await refused(store, 'INVALID_KEY', () => store.delete(key));
        await refused(store, 'INVALID_KEY', () =>
          store.batch([
            { op: 'set', key: 'fine', value: 'x' },
            { op: 'set', key, value: 'value' },
          ]),
        );
      }
      const long = await refused(store, 'INVALID_KEY', () => store.set(keyOfBytes(MAX_KEY_BYTES + 1), 'v'));
      expect(long.message).toContain(`longer than ${MAX_KEY_BYTES} bytes`);
      const nul = await refused(store, 'INVALID_KEY', () => store.set('a\0b', 'v'));
      expect(nul.message).toContain('0x00');
      await expect(store.get('fine')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      // The boundary: exactly MAX_KEY_BYTES bytes is a valid key.
      const atLimit = keyOfBytes(MAX_KEY_BYTES);
      expect(new TextEncoder().encode(atLimit).length).toBe(MAX_KEY_BYTES);
      await store.set(atLimit, 'at the limit');
      expect(await store.getText(atLimit)).toBe('at the limit');
      await stillWorks(store);
    });

    it('refuses invalid branch names with INVALID_BRANCH', async () => {
      const store = await seeded();
      for (const name of invalidBranches) {
        const e = await refused(store, 'INVALID_BRANCH', () => store.createBranch(name));
        expect(e.data.branch).toBe(name);
        await refused(store, 'INVALID_BRANCH', () => store.set('k', 'v', { branch: name }));
        await refused(store, 'INVALID_BRANCH', () => store.delete('val', { branch: name }));
        await refused(store, 'INVALID_BRANCH', () =>
          store.batch([{ op: 'set', key: 'k', value: 'v' }], { branch: name }),
        );
        await refused(store, 'INVALID_BRANCH', () => store.deleteBranch(name));
        await refused(store, 'INVALID_BRANCH', () => store.merge('dev', { into: name }));
        // Plain git agrees these are not branch names.
        const r = spawnSync('git', ['check-ref-format', '--branch', name], { env: gitEnv, encoding: 'utf8' });
        expect(r.status, name).not.toBe(0);
      }
      await expect(store.get('k')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect((await store.branches()).map((b) => b.name)).toEqual(['dev', 'main']);
      // A valid name with a slash is fine.
      await store.createBranch('team/feature-1.x');
      expect((await store.branches()).map((b) => b.name)).toEqual(['dev', 'main', 'team/feature-1.x']);
      await stillWorks(store);
    });

    it('refuses a value where a directory is, and below a value', async () => {
      const store = await seeded();
      const dirError = await refused(store, 'KEY_IS_DIRECTORY', () => store.set('dir', 'flat'));
      expect(dirError.data.key).toBe('dir');
      await refused(store, 'KEY_IS_DIRECTORY', () => store.delete('dir'));
      await refused(store, 'KEY_IS_DIRECTORY', () => store.batch([{ op: 'set', key: 'dir', value: 'flat' }]));
      const valueError = await refused(store, 'KEY_IS_VALUE', () => store.set('val/sub', 'x'));
      expect(valueError.data).toMatchObject({ key: 'val/sub', value: 'val' });
      await refused(store, 'KEY_IS_VALUE', () => store.set('val/sub/deeper', 'x'));
      await refused(store, 'KEY_IS_VALUE', () => store.set('dir/x/y', 'x', { branch: 'dev' }));
      expect(await store.getText('val')).toBe('v');
      expect(await store.getText('dir/x')).toBe('1');
      await stillWorks(store);
    });

    it('answers NOT_FOUND for missing keys, revisions and branches', async () => {
      const store = await seeded();
      const missing = await refused(store, 'NOT_FOUND', () => store.delete('missing'));
      expect(missing.message).toContain('missing');
      await refused(store, 'NOT_FOUND', () => store.delete('dir/missing'));
      await refused(store, 'NOT_FOUND', () => store.delete('missing', { branch: 'dev' }));
      await refused(store, 'NOT_FOUND', () => store.get('missing'));
      await refused(store, 'NOT_FOUND', () => store.get('dir'));
      const at = await refused(store, 'NOT_FOUND', () => store.get('val', { at: 'nope' }));
      expect(at.message).toContain('nope');
      await refused(store, 'NOT_FOUND', () => store.get('val', { at: 'main~50' }));
      await refused(store, 'NOT_FOUND', () => store.resolve('deadbeef'));
      await refused(store, 'NOT_FOUND', () => store.resolve('0'.repeat(40)));
      await refused(store, 'NOT_FOUND', () => store.deleteBranch('nope'));
      await refused(store, 'NOT_FOUND', () => store.merge('nope'));
      await refused(store, 'NOT_FOUND', () => store.createBranch('new', { from: 'nope' }));
      // Writing to a branch that does not exist does not create it.
      const ghost = await refused(store, 'NOT_FOUND', () => store.set('k', 'v', { branch: 'ghost' }));
      expect(ghost.message).toContain('ghost');
      await refused(store, 'NOT_FOUND', () => store.batch([{ op: 'set', key: 'k', value: 'v' }], { branch: 'ghost' }));
      await refused(store, 'NOT_FOUND', () => store.get('val', { branch: 'ghost' }));
      expect((await store.branches()).map((b) => b.name)).toEqual(['dev', 'main']);
      await stillWorks(store);
    });

    it('forbids deleting the default branch and merging a branch into itself', async () => {
      const store = await seeded();
      const forbidden = await refused(store, 'FORBIDDEN', () => store.deleteBranch('main'));
      expect(forbidden.message).toContain('main');
      await store.set('on-dev', 'x', { branch: 'dev' });
      await refused(store, 'INVALID_ARGUMENT', () => store.merge('main'));
      await refused(store, 'INVALID_ARGUMENT', () => store.merge('main', { into: 'main' }));
      await refused(store, 'INVALID_ARGUMENT', () => store.merge('dev', { into: 'dev' }));
      // Merging the other way round still works, so the refusals were about the self-merge.
      expect((await store.merge('dev')).outcome).not.toBe('up-to-date');
      expect(await store.getText('on-dev')).toBe('x');
      await stillWorks(store);
    });

    it('a batch with one bad op writes nothing at all', async () => {
      const store = await seeded();
      const good: { op: 'set'; key: string; value: string }[] = [
        { op: 'set', key: 'batch/one', value: '1' },
        { op: 'set', key: 'batch/two', value: '2' },
      ];
      const valOid = (await store.stat('val')).oid;
      const cases: [ErrorCode, Parameters<Store['batch']>[0]][] = [
        ['INVALID_KEY', [...good, { op: 'set', key: 'a//b', value: 'x' }]],
        ['NOT_FOUND', [...good, { op: 'delete', key: 'missing' }]],
        ['KEY_IS_VALUE', [...good, { op: 'set', key: 'val/sub', value: 'x' }]],
        ['KEY_IS_DIRECTORY', [...good, { op: 'delete', key: 'batch' }]],
        ['PRECONDITION_FAILED', [...good, { op: 'set', key: 'val', value: 'x', ifMatch: 'f'.repeat(40) }]],
        ['PRECONDITION_FAILED', [...good, { op: 'set', key: 'val', value: 'x', ifNoneMatch: true }]],
        [
          'PRECONDITION_FAILED',
          [{ op: 'delete', key: 'val' }, ...good, { op: 'set', key: 'val', value: 'x', ifMatch: valOid }],
        ],
        ['INVALID_ARGUMENT', [...good, { op: 'rename', key: 'val' } as unknown as Parameters<Store['batch']>[0][0]]],
        ['INVALID_ARGUMENT', []],
      ];
      for (const [code, ops] of cases) {
        await refused(store, code, () => store.batch(ops));
        await refused(store, code, () => store.batch(ops, { branch: 'dev' }));
        for (const key of ['batch/one', 'batch/two']) {
          await expect(store.get(key), `${code}: ${key}`).rejects.toMatchObject({ code: 'NOT_FOUND' });
        }
        expect(await store.getText('val')).toBe('v');
        expect(await store.getText('dir/x')).toBe('1');
      }
      // The same good ops alone go through, as one commit.
      await store.batch(good);
      expect(await store.getText('batch/two')).toBe('2');
      expect((await store.commit('main')).subject).toBe('batch: 2 changes');
      await stillWorks(store);
    });

    // maxValueBytes is a store setting `store serve` does not take.
    it.runIf(f.can('settings'))('refuses a value over maxValueBytes with TOO_LARGE', async () => {
      const store = await seeded({ maxValueBytes: 10 });
      const e = await refused(store, 'TOO_LARGE', () => store.set('big', '12345678901'));
      expect(e.data).toMatchObject({ size: 11, limit: 10 });
      // Six characters, twelve bytes.
      await refused(store, 'TOO_LARGE', () => store.set('big', 'éééééé'));
      await refused(store, 'TOO_LARGE', () => store.set('big', new Uint8Array(11)));
      await refused(store, 'TOO_LARGE', () => store.set('val', 'x'.repeat(1000), { branch: 'dev' }));
      await refused(store, 'TOO_LARGE', () =>
        store.batch([
          { op: 'set', key: 'small', value: 'ok' },
          { op: 'set', key: 'big', value: 'x'.repeat(11) },
        ]),
      );
      await expect(store.get('small')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(store.get('big')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await store.getText('val')).toBe('v');
      // Exactly the limit is accepted.
      await store.set('big', '1234567890');
      expect(await store.getText('big')).toBe('1234567890');
      await stillWorks(store);
    });

    it('refuses a write whose precondition does not hold with PRECONDITION_FAILED', async () => {
      const store = await seeded();
      const { oid } = await store.stat('val');
      const wrong = 'f'.repeat(40);
      const e = await refused(store, 'PRECONDITION_FAILED', () => store.set('val', 'new', { ifMatch: wrong }));
      expect(e.data).toMatchObject({ key: 'val', expected: wrong, actual: oid });
      await refused(store, 'PRECONDITION_FAILED', () => store.set('missing', 'new', { ifMatch: oid }));
      await refused(store, 'PRECONDITION_FAILED', () => store.set('val', 'new', { ifNoneMatch: true }));
      await refused(store, 'PRECONDITION_FAILED', () => store.set('dir', 'new', { ifNoneMatch: true }));
      await refused(store, 'PRECONDITION_FAILED', () => store.delete('val', { ifMatch: wrong }));
      await refused(store, 'PRECONDITION_FAILED', () => store.set('val', 'new', { ifMatch: wrong, branch: 'dev' }));
      expect(await store.getText('val')).toBe('v');
      // The right oid passes.
      const ok = await store.set('val', 'new', { ifMatch: oid });
      expect(ok.created).toBe(false);
      expect(await store.getText('val')).toBe('new');
      await refused(store, 'PRECONDITION_FAILED', () => store.set('val', 'newer', { ifMatch: oid }));
      expect(await store.getText('val')).toBe('new');
      await stillWorks(store);
    });

    it('refuses to create a branch that exists with BRANCH_EXISTS', async () => {
      const store = await seeded();
      await store.set('moved', 'x', { branch: 'dev' });
      const devHead = await store.resolve('dev');
      const e = await refused(store, 'BRANCH_EXISTS', () => store.createBranch('dev'));
      expect(e.data.branch).toBe('dev');
      await refused(store, 'BRANCH_EXISTS', () => store.createBranch('main', { from: 'dev' }));
      expect(await store.resolve('dev')).toBe(devHead);
      expect(await store.getText('moved', { branch: 'dev' })).toBe('x');
      await expect(store.get('moved')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await stillWorks(store);
    });
  });
}
