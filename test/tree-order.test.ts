import { describe, expect, it } from 'vitest';
import { gitValues } from './git-packs.js';
import { diskStore, git } from './helpers.js';

// git fsck --strict rejects trees whose entries are out of git's order ("treeNotSorted"): by name bytes, with a
// directory compared as if its name ended in '/'. These names sit where JavaScript's string order and git's differ.
const names = ['a', 'a-b', 'a.b', 'a0', 'ab', 'é', 'z', '\ue000', '😀', 'Z', '_', '~x', 'a b'];

describe('tree entry order', () => {
  it('writes trees git accepts, for names where string order and byte order part ways', async () => {
    const store = await diskStore();
    // Each name both as a value at the root and as a directory one level down, so directories sort among values.
    await store.batch(
      names.flatMap((n) => [
        { op: 'set' as const, key: `v/${n}`, value: n },
        { op: 'set' as const, key: `d/${n}/x`, value: n },
      ]),
    );
    await store.set('d/a-c', 'a value beside the directory a');
    git(['--git-dir', store.dir, 'fsck', '--strict']);
    const listed = git(['--git-dir', store.dir, 'ls-tree', '-z', '--name-only', 'main:d']).toString().split('\0');
    expect(new Set(listed.filter(Boolean))).toEqual(new Set([...names, 'a-c']));
    for (const n of names) expect(await store.getText(`v/${n}`)).toBe(n);
  });
});

describe('patched tree bodies', () => {
  it('keeps wide trees exact through oid-only updates, additions and deletions (checked by git)', async () => {
    const store = await diskStore();
    const ops = Array.from({ length: 300 }, (_, i) => ({ op: 'set' as const, key: `vm/${i}/state`, value: 'halted' }));
    await store.batch(ops);
    const expected = new Map(ops.map((o) => [o.key, o.value]));
    // Oid-only changes (patched bodies at two levels), then reshaping ones, interleaved, some in one commit.
    for (let round = 0; round < 40; round++) {
      const i = (round * 37) % 300;
      await store.set(`vm/${i}/state`, `running ${round}`);
      expected.set(`vm/${i}/state`, `running ${round}`);
      if (round % 7 === 0) {
        await store.batch([
          { op: 'set', key: `vm/${i}/extra`, value: 'x' },
          { op: 'set', key: `vm/${(i + 1) % 300}/state`, value: `batched ${round}` },
        ]);
        expected.set(`vm/${i}/extra`, 'x');
        expected.set(`vm/${(i + 1) % 300}/state`, `batched ${round}`);
      }
      if (round % 11 === 0) {
        await store.delete(`vm/${(i + 2) % 300}`, { recursive: true });
        for (const k of [...expected.keys()]) if (k.startsWith(`vm/${(i + 2) % 300}/`)) expected.delete(k);
      }
    }
    git(['--git-dir', store.dir, 'fsck', '--strict']);
    const listed = git(['--git-dir', store.dir, 'ls-tree', '-r', '-z', '--name-only', 'main'])
      .toString()
      .split('\0')
      .filter(Boolean);
    expect(new Set(listed)).toEqual(new Set(expected.keys()));
    // Every value as git reads it (one cat-file for all: a git process per key cost ~40 s on a loaded machine).
    const values = gitValues(store.dir, [...expected.keys()]);
    for (const [key, value] of expected) expect(values.get(key)?.toString(), key).toBe(value);
  });
});
