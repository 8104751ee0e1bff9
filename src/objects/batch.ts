import { DELTA_MIN_BYTES, patchDelta } from './delta.js';
import { planByKey } from './delta-plan.js';
import { copyBytes, type GitObject, hashObject, type ObjectType } from './object.js';
import type { DeltaInput, PackInput } from './pack.js';
import type { TreePatch } from './tree.js';

/**
 * A wide tree version kept as the oids written over its predecessor's body (tree.ts `serializeTreeChange`), not as
 * a body of its own: the body was patched in place and has moved on to later versions.
 */
interface Patched {
  base: string;
  size: number;
  writes: { at: number; oid: Buffer }[];
  /** Patched versions between this one and a whole body: bounded so a pack's delta chains stay shallow. */
  depth: number;
}

/** Deepest chain of patched versions in one batch before a version is kept whole (git's own default depth). */
const MAX_PATCH_DEPTH = 50;

/**
 * Objects made by one batch of writes, waiting to be written together as one pack.
 *
 * Invariant (what makes every batch encodable as a pack): each oid is defined once in a batch and its priors —
 * whole, or as a patch of a version defined before it. A version made again (a value written unchanged, or changed
 * and changed back within a batch) is already defined and is not added twice: redefining it as a patch of itself or
 * of a later version made a delta whose base could not precede it in the pack, and the whole batch was refused.
 */
export class ObjectBatch {
  readonly objects = new Map<string, GitObject>();
  /** For large trees: the previous version of the same directory, which a pack may store this one as a delta of. */
  readonly bases = new Map<string, string>();
  /** Wide tree versions kept as patches of an earlier version in this batch (or in `prior`). */
  readonly patched = new Map<string, Patched>();
  /** Every oid added, in order (objects set directly, e.g. copied from a transaction, are whole and need none). */
  readonly order: string[] = [];

  /** `prior`: the batch this one will be merged into (a writer's batch so far), whose objects patches may build on. */
  constructor(readonly prior: ObjectBatch | null = null) {}

  /** Adds an object; `base` names the object it is a new version of (a hint for delta encoding). */
  add(type: ObjectType, body: Uint8Array, base?: string): string {
    const oid = hashObject(type, body);
    if (!this.has(oid)) {
      this.objects.set(oid, { type, body });
      this.order.push(oid);
      if (base !== undefined && body.length >= DELTA_MIN_BYTES && base !== oid) this.bases.set(oid, base);
    }
    return oid;
  }

  /**
   * Adds a tree version made by patching `base`'s body in place. Kept as the patch when `base` is in this batch (or
   * its prior), else — the first version of a batch — as a copy of the body, which the pack needs whole.
   */
  addPatch(patch: TreePatch, base: string): string {
    const oid = hashObject('tree', patch.body);
    if (this.has(oid)) return oid;
    const baseDepth = this.depthOf(base);
    if (baseDepth === null || baseDepth >= MAX_PATCH_DEPTH) {
      this.objects.set(oid, { type: 'tree', body: copyBytes(patch.body) });
      this.order.push(oid);
      if (baseDepth !== null) this.bases.set(oid, base);
      return oid;
    }
    this.patched.set(oid, { base, size: patch.body.length, writes: patch.writes, depth: baseDepth + 1 });
    this.order.push(oid);
    return oid;
  }

  /** How many patches separate `oid` from a whole body in this batch or its priors (0: whole); null when absent. */
  private depthOf(oid: string): number | null {
    for (let b: ObjectBatch | null = this; b; b = b.prior) {
      if (b.objects.has(oid)) return 0;
      const p = b.patched.get(oid);
      if (p) return p.depth;
    }
    return null;
  }

  /** Whether `oid` is defined in this batch or its priors (which it will be merged into). */
  has(oid: string): boolean {
    return this.depthOf(oid) !== null;
  }

  /** An object of this batch (or its prior), a patched version's body rebuilt from its whole base. */
  get(oid: string): GitObject | undefined {
    for (let b: ObjectBatch | null = this; b; b = b.prior) {
      const o = b.objects.get(oid);
      if (o) return o;
      const p = b.patched.get(oid);
      if (p) {
        const base = this.get(p.base)!;
        const body = copyBytes(base.body);
        for (const { at, oid: bytes } of p.writes) bytes.copy(body, at);
        return { type: 'tree', body };
      }
    }
    return undefined;
  }

  get size(): number {
    return this.objects.size + this.patched.size;
  }

  /**
   * Takes in another batch's objects. An oid both define keeps this batch's definition, which came first: its
   * patch base (if any) is here already, while the other's could be a version this batch defines after it.
   */
  merge(other: ObjectBatch): void {
    // A loop, not push(...): a batch of 100,000 keys has more objects than a call can take arguments.
    for (const oid of other.order) {
      if (this.objects.has(oid) || this.patched.has(oid)) continue;
      this.order.push(oid);
      this.take(other, oid);
    }
    // Objects set directly (not through add) are not in `order`.
    for (const oid of other.objects.keys()) if (!this.objects.has(oid) && !this.patched.has(oid)) this.take(other, oid);
  }

  private take(other: ObjectBatch, oid: string): void {
    const o = other.objects.get(oid);
    const p = other.patched.get(oid);
    if (o) this.objects.set(oid, o);
    else if (p) this.patched.set(oid, p);
    const base = other.bases.get(oid);
    if (base !== undefined) this.bases.set(oid, base);
  }
}

/**
 * A batch's objects as pack inputs, in the order they were made. Patched tree versions become deltas of their
 * predecessor as they are; whole wide trees built from a previous version in the same batch become deltas of it,
 * planned as chains (delta-plan.ts); the first version of each stays whole. A patch's base is defined before it
 * (the batch's invariant), so it is always emitted first.
 */
export function batchInputs(batch: ObjectBatch): (PackInput | DeltaInput)[] {
  // Each chain is named after its first version, which stays whole.
  const chainOf = new Map<string, string>();
  for (const [oid, base] of batch.bases) {
    if (!batch.objects.has(base)) continue;
    const key = chainOf.get(base) ?? base;
    chainOf.set(base, key);
    chainOf.set(oid, key);
  }
  const planned = planByKey(
    [...batch.objects.keys()].filter((oid) => chainOf.has(oid)).map((oid) => ({ oid, key: chainOf.get(oid)! })),
  );
  const out: (PackInput | DeltaInput)[] = [];
  const seen = new Set<string>();
  const emit = (oid: string) => {
    if (seen.has(oid)) return;
    seen.add(oid);
    const p = batch.patched.get(oid);
    if (p) {
      emit(p.base);
      out.push({ oid, delta: { base: p.base, data: patchDelta(p.size, p.writes) } });
      return;
    }
    const o = batch.objects.get(oid);
    if (!o) return;
    const base = planned.get(oid);
    if (base) emit(base);
    out.push({ oid, type: o.type, body: o.body, ...(base ? { base } : {}) });
  };
  for (const oid of batch.order) emit(oid);
  for (const oid of batch.objects.keys()) emit(oid);
  return out;
}
