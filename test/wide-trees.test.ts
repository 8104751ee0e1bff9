import { describe, expect, it } from 'vitest';
import { diskStore, git } from './helpers.js';

/**
 * Wide directories are serialised by patching one body in place from version to version (src/objects/tree.ts); an
 * older version asked for again (a transaction forked from it, a replayed batch) is rebuilt by undoing patches.
 * These tests interleave exactly those cases and compare every value with a model, and git's view with ours.
 */
describe('wide trees patched in place', () => {
  const VMS = 300;
  const key = (vm: number) => `local/domain/${vm}/name`;

  it('transactions forked from older versions, concurrent writers and merges keep every value right', async () => {
    const store = await diskStore();
    const model = new Map<string, string>();
    await store.batch(
      Array.from({ length: VMS }, (_, vm) => {
        model.set(key(vm), `vm-${vm}`);
        return { op: 'set' as const, key: key(vm), value: `vm-${vm}` };
      }),
    );
    const history: { commit: string; state: Map<string, string>; forked: Map<string, string>; touched: number[] }[] =
      [];
    for (let round = 0; round < 6; round++) {
      // A transaction forks from the head; the branch writer then moves on from that same version (taking its
      // body over); the transaction's writes must still start from the version it forked from.
      const tx = await store.begin();
      const forked = new Map(model);
      const writes = Array.from({ length: 25 }, (_, i) => (round * 37 + i * 11) % VMS);
      const results = await Promise.all(
        writes.map((vm, i) => store.set(key(vm), `r${round}-w${i}`).then((r) => ({ vm, i, r }))),
      );
      for (const { vm, i } of results.sort((a, b) => a.i - b.i)) model.set(key(vm), `r${round}-w${i}`);
      const txVm = (round * 53 + 5) % VMS;
      expect(await tx.getText(key(txVm))).toBe(history.at(-1)?.state.get(key(txVm)) ?? model.get(key(txVm)));
      await tx.set(`local/domain/${txVm}/tx`, `tx-${round}`);
      const outcome = await tx.commit();
      expect(outcome.outcome).toBe('merged');
      model.set(`local/domain/${txVm}/tx`, `tx-${round}`);
      const head = (await store.log({ limit: 1 })).commits[0]!.id;
      history.push({ commit: head, state: new Map(model), forked, touched: writes });
    }
    for (const [k, v] of model) expect(await store.getText(k)).toBe(v);
    // Old versions read back as they were.
    for (const { commit, state } of history) {
      for (const vm of [0, 5, 58, 111, 299]) {
        expect(await store.getText(key(vm), { at: commit })).toBe(state.get(key(vm)));
      }
    }
    await store.close();
    git(['--git-dir', store.dir, 'fsck', '--strict', '--full']);
    for (const vm of [0, 17, 123, 299]) {
      expect(git(['--git-dir', store.dir, 'show', `main:${key(vm)}`]).toString()).toBe(model.get(key(vm)));
    }
    // The transaction's own commit (the merge's second parent) holds the tree it forked from plus its write: the
    // VMs the branch writer changed meanwhile still have their old values there.
    for (const { commit, forked, touched } of history) {
      for (const vm of touched.slice(0, 5)) {
        expect(git(['--git-dir', store.dir, 'show', `${commit}^2:${key(vm)}`]).toString()).toBe(forked.get(key(vm)));
      }
    }
    const listed = git(['--git-dir', store.dir, 'ls-tree', '-r', '--name-only', 'main']).toString().trim().split('\n');
    expect(new Set(listed)).toEqual(new Set(model.keys()));
  });

  it('one commit of 100,000 keys (more objects than a function call takes arguments)', async () => {
    const store = await diskStore();
    const ops = Array.from({ length: 100_000 }, (_, i) => ({
      op: 'set' as const,
      key: `local/domain/${Math.floor(i / 7)}/cfg/k${i % 7}`,
      value: `v${i}`,
    }));
    await store.batch(ops);
    expect(await store.getText('local/domain/14285/cfg/k4')).toBe('v99999');
    expect((await store.list('local/domain')).entries).toHaveLength(14_286);
    await store.close();
  });
});
