import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyDelta, makeDelta } from '../src/objects/delta.js';
import { planChain } from '../src/objects/delta-plan.js';

/** A body like a wide tree's after a few edits: bytes replaced in place, inserted or removed. */
const edited = fc
  .record({
    size: fc.integer({ min: 1024, max: 40_000 }),
    edits: fc.array(
      fc.record({
        kind: fc.constantFrom('replace', 'insert', 'remove'),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  })
  .map(({ size, edits }) => {
    const base = randomBytes(size);
    let target = Buffer.from(base);
    for (const e of edits) {
      const at = Math.min(Math.floor(e.at * target.length), target.length - 1);
      if (e.kind === 'replace') randomBytes(Math.min(20, target.length - at)).copy(target, at);
      else if (e.kind === 'insert')
        target = Buffer.concat([target.subarray(0, at), randomBytes(31), target.subarray(at)]);
      else target = Buffer.concat([target.subarray(0, at), target.subarray(Math.min(target.length, at + 31))]);
    }
    return { base, target };
  });

describe('deltas', () => {
  it('applying a made delta to its base gives the target back', () => {
    fc.assert(
      fc.property(edited, ({ base, target }) => {
        const delta = makeDelta(base, target);
        if (delta) expect(Buffer.from(applyDelta(base, delta)).equals(target)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a version that changed 20 bytes in place costs a few dozen bytes', () => {
    const base = randomBytes(320_000);
    const target = Buffer.from(base);
    randomBytes(20).copy(target, 123_456);
    const delta = makeDelta(base, target)!;
    expect(delta.length).toBeLessThan(64);
    expect(Buffer.from(applyDelta(base, delta)).equals(target)).toBe(true);
  });

  it('unrelated bodies get no delta', () => {
    expect(makeDelta(randomBytes(4096), randomBytes(4096))).toBeNull();
  });

  it('chains stay within git depth 50 for 100,000 versions', () => {
    const chain = Array.from({ length: 100_000 }, (_, i) => `v${i}`);
    const bases = new Map<string, string>();
    planChain(chain, bases);
    const index = new Map(chain.map((v, i) => [v, i]));
    let deepest = 0;
    const depth = new Map<string, number>([['v0', 0]]);
    for (const v of chain.slice(1)) {
      const base = bases.get(v)!;
      expect(index.get(base)!).toBeLessThan(index.get(v)!);
      const d = depth.get(base)! + 1;
      depth.set(v, d);
      deepest = Math.max(deepest, d);
    }
    expect(deepest).toBeLessThanOrEqual(50);
  });
});
