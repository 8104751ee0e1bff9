/**
 * Schemas (`.store/schema.json`, issue 18) on every write path of the API — set, delete, batch, transactions,
 * merges, reverts — against every store factory (memfs, disk, and a real `store serve` over HTTP): a value that
 * breaks a schema is INVALID_VALUE, the head does not move, and on disk `git fsck --strict` stays clean. Then
 * Store.validate, bisect with `invalid`, and what changing the schemas themselves takes.
 */
import { describe, expect, it } from 'vitest';
import type { Store, StoreError, Violation } from '../../src/index.js';
import { errorOf, git } from '../helpers.js';
import { factories } from './store-factories.js';

const SCHEMA = {
  'vm/*/memory': { type: 'integer', minimum: 128, maximum: 1048576 },
  'app/*/config.json': { $ref: '.store/schemas/app.json' },
  'host/**/name': { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
};
const APP = {
  type: 'object',
  required: ['port', 'replicas'],
  properties: {
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    replicas: { type: 'integer', minimum: 0 },
  },
};

const violationsOf = (e: StoreError) => (e.data as { violations: Violation[] }).violations;

/** A store with the schemas above and a valid value under each. */
async function typed(s: Store): Promise<void> {
  await s.batch([
    { op: 'set', key: '.store/schemas/app.json', value: JSON.stringify(APP) },
    { op: 'set', key: '.store/schema.json', value: JSON.stringify(SCHEMA) },
    { op: 'set', key: 'vm/web1/memory', value: '2048' },
    { op: 'set', key: 'app/web/config.json', value: '{"port": 80, "replicas": 2}' },
    { op: 'set', key: 'host/eu/web1/name', value: 'web1' },
    { op: 'set', key: 'free/form', value: 'anything at all' },
  ]);
}

for (const factory of factories) {
  describe(`schemas (${factory.name})`, () => {
    /** Asserts `write` is refused as INVALID_VALUE naming `key`, and that the branch did not move. */
    async function refused(s: Store, write: () => Promise<unknown>, key: string, branch = 'main') {
      const before = (await s.branches()).find((b) => b.name === branch)!.head;
      const e = await errorOf(write());
      expect(e.code, e.message).toBe('INVALID_VALUE');
      expect(violationsOf(e).map((v) => v.key)).toContain(key);
      expect((await s.branches()).find((b) => b.name === branch)!.head).toBe(before);
      const local = factory.local(s);
      if (factory.name === 'disk' && local) {
        git(['--git-dir', local.dir, 'fsck', '--strict', '--no-progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
      }
      return violationsOf(e);
    }

    it('refuses a set that breaks a schema, naming the key, the JSON pointer and the rule', async () => {
      const s = await factory.open();
      await typed(s);
      const [low] = await refused(s, () => s.set('vm/web2/memory', '64'), 'vm/web2/memory');
      expect(low).toMatchObject({ pattern: 'vm/*/memory', pointer: '', keyword: 'minimum', rule: '#/minimum' });
      // Not JSON at all, where the schema wants an integer.
      const [text] = await refused(s, () => s.set('vm/web1/memory', '80a'), 'vm/web1/memory');
      expect(text).toMatchObject({ keyword: 'json' });
      // A JSON document, through a $ref to a schema stored in the branch: the pointer says where in it.
      const doc = await refused(
        s,
        () => s.set('app/api/config.json', '{"port": "80a", "replicas": -1}'),
        'app/api/config.json',
      );
      expect(doc.map((v) => [v.pointer, v.keyword]).sort()).toEqual([
        ['/port', 'type'],
        ['/replicas', 'minimum'],
      ]);
      const [missing] = await refused(s, () => s.set('app/api/config.json', '{"port": 80}'), 'app/api/config.json');
      expect(missing).toMatchObject({ keyword: 'required', rule: '.store/schemas/app.json#/required' });
      // Plain text against `type: string` with a pattern, at any depth of `**`.
      const [name] = await refused(s, () => s.set('host/us/east/db1/name', 'DB 1'), 'host/us/east/db1/name');
      expect(name).toMatchObject({ keyword: 'pattern' });
      // What the schemas accept is written; what no pattern matches is anything.
      await s.set('vm/web2/memory', '4096\n');
      await s.set('host/us/east/db1/name', 'db1');
      await s.set('free/form', '{not json');
      await s.set('vm/web2/state', 'running');
      expect(await s.getText('vm/web2/memory')).toBe('4096\n');
    });

    it('refuses a whole batch (and an import) for one bad value, and never checks a delete', async () => {
      const s = await factory.open();
      await typed(s);
      await refused(
        s,
        () =>
          s.batch([
            { op: 'set', key: 'vm/a/memory', value: '256' },
            { op: 'set', key: 'vm/b/memory', value: '1' },
          ]),
        'vm/b/memory',
      );
      await expect(s.get('vm/a/memory')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await s.delete('vm/web1/memory');
      await s.batch([{ op: 'delete', key: 'app', recursive: true }]);
    });

    it('checks a transaction at commit, against the merged result', async () => {
      const s = await factory.open();
      await typed(s);
      // Inside the transaction the value is accepted (it is checked where it lands: on the branch)...
      const tx = await s.begin();
      await tx.set('vm/web1/memory', '100');
      await refused(s, () => tx.commit(), 'vm/web1/memory');
      // ...and a value valid when written is refused when the branch's schemas moved on before the commit.
      await s.set('.store/schema.json', JSON.stringify({ ...SCHEMA, 'vm/*/memory': { type: 'integer', minimum: 64 } }));
      const tx2 = await s.begin();
      await tx2.set('vm/web3/memory', '100');
      await s.set('.store/schema.json', JSON.stringify(SCHEMA));
      await refused(s, () => tx2.commit(), 'vm/web3/memory');
      const ok = await s.begin();
      await ok.set('vm/web3/memory', '512');
      expect((await ok.commit()).commit).toMatch(/^[0-9a-f]{40}$/);
    });

    it('refuses a merge whose sides are each valid but whose merged result is not, naming the keys', async () => {
      const s = await factory.open();
      await typed(s);
      await s.set('.store/schema.json', JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 64 } }));
      await s.createBranch('dev');
      // dev: a value that is valid under the schemas as they are.
      await s.set('vm/small/memory', '100', { branch: 'dev' });
      // main: the schemas tightened, and every value of main meets them.
      await s.set('.store/schema.json', JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 128 } }));
      expect((await s.validate({ branch: 'dev' })).valid).toBe(true);
      expect((await s.validate()).valid).toBe(true);
      const preview = await s.mergePreview('dev');
      expect(preview.outcome).toBe('merged');
      expect(preview.violations.map((v) => v.key)).toEqual(['vm/small/memory']);
      await refused(s, () => s.merge('dev'), 'vm/small/memory');
      // The other way round too: dev takes main's schemas with the merge, and its own value breaks them.
      await refused(s, () => s.merge('main', { into: 'dev' }), 'vm/small/memory', 'dev');
      await s.set('vm/small/memory', '256', { branch: 'dev' });
      expect((await s.merge('dev')).outcome).toBe('merged');
    });

    it('checks the result of a revert', async () => {
      const s = await factory.open();
      await s.set('vm/web1/memory', '64');
      const raise = await s.set('vm/web1/memory', '256');
      await s.set('.store/schema.json', JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 128 } }));
      await refused(s, () => s.revert(raise.commit), 'vm/web1/memory');
    });

    it('refuses a schema change that stored values break (listing them), unless forced', async () => {
      const s = await factory.open();
      await typed(s);
      await s.set('vm/web2/memory', '256');
      const tighter = JSON.stringify({ ...SCHEMA, 'vm/*/memory': { type: 'integer', minimum: 1024 } });
      const listed = await refused(s, () => s.set('.store/schema.json', tighter), 'vm/web2/memory');
      expect(listed.map((v) => v.key)).toEqual(['vm/web2/memory']);
      // A schema file that is not JSON, not a schema (a typo is not a comment), or names a file that is not there.
      for (const broken of [
        '{"vm/*/memory": ',
        '{"vm/*/memory": {"type": "integer", "minimun": 128}}',
        '{"app/*/config.json": {"$ref": ".store/schemas/nope.json"}}',
        '["vm/*/memory"]',
      ]) {
        const [v] = await refused(s, () => s.set('.store/schema.json', broken), '.store/schema.json');
        expect(v!.keyword).toBe('schema');
      }
      // --force adopts the schemas; the values it writes itself are still checked.
      await refused(
        s,
        () =>
          s.batch(
            [
              { op: 'set', key: '.store/schema.json', value: tighter },
              { op: 'set', key: 'vm/new/memory', value: '512' },
            ],
            { force: true },
          ),
        'vm/new/memory',
      );
      await s.set('.store/schema.json', tighter, { force: true });
      const report = await s.validate();
      expect(report.valid).toBe(false);
      expect(report.violations.map((v) => v.key)).toEqual(['vm/web2/memory']);
      expect(report.patterns).toEqual(Object.keys(SCHEMA));
      expect(report.checked).toBe(4);
      // A write that leaves the schemas alone is checked on what it changes only.
      await s.set('free/form', 'x');
      await refused(s, () => s.set('vm/web3/memory', '512'), 'vm/web3/memory');
    });

    it('finds the first commit that broke today’s schemas (bisect with invalid)', async () => {
      const s = await factory.open();
      const commits: string[] = [];
      for (let i = 0; i < 40; i++) {
        const key = i === 23 ? 'vm/odd/memory' : `vm/v${i % 5}/memory`;
        commits.push((await s.set(key, i === 23 ? '16' : String(256 + i))).commit);
      }
      // Today's rules arrive after the fact, forced past the bad value still stored.
      await s.set('.store/schema.json', JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 128 } }), {
        force: true,
      });
      const r = await s.bisect({ invalid: true });
      expect(r.firstBad.id).toBe(commits[23]);
      expect(r.violations?.map((v) => v.key)).toEqual(['vm/odd/memory']);
      expect(r.tested.length).toBeLessThan(12);
      // Fixed later: the head is valid, so there is no bad end to search from.
      await s.set('vm/odd/memory', '512');
      expect((await errorOf(s.bisect({ invalid: true }))).code).toBe('INVALID_ARGUMENT');
    });
  });
}
