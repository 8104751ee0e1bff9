import { describe, expect, it } from 'vitest';
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
