import { StoreError } from '../errors.js';
import { asBuffer } from './object.js';

/**
 * Git's delta format (a base size, a result size, then copy-from-base and insert-literal instructions): applied when
 * reading packs, made when writing them. Only objects at least this large are worth a delta: below it, the whole
 * object costs little more than the instructions.
 */
export const DELTA_MIN_BYTES = 1024;

const corrupt = (what: string) => new StoreError('CORRUPT', `repository is damaged: ${what}; run \`git fsck\``, {});

/** Applies a git delta (copy/insert instructions) to a base. */
export function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  let i = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = delta[i++]!;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  if (varint() !== base.length) throw corrupt('delta base size mismatch');
  const out = Buffer.allocUnsafe(varint());
  let o = 0;
  while (i < delta.length) {
    const op = delta[i++]!;
    if (op & 0x80) {
      let offset = 0;
      let size = 0;
      for (let b = 0; b < 4; b++) if (op & (1 << b)) offset += delta[i++]! * 2 ** (8 * b);
      for (let b = 0; b < 3; b++) if (op & (0x10 << b)) size += delta[i++]! << (8 * b);
      if (size === 0) size = 0x10000;
      out.set(base.subarray(offset, offset + size), o);
      o += size;
    } else if (op > 0) {
      out.set(delta.subarray(i, i + op), o);
      i += op;
      o += op;
    } else throw corrupt('delta opcode 0');
  }
  if (o !== out.length) throw corrupt('delta result size mismatch');
  return out;
}

/** Grows a byte buffer as instructions are appended. */
class Out {
  buf = Buffer.allocUnsafe(256);
  length = 0;

  private room(n: number) {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  byte(b: number) {
    this.room(1);
    this.buf[this.length++] = b;
  }

  varint(value: number) {
    let v = value;
    while (v >= 0x80) {
      this.byte((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.byte(v);
  }

  /** Copy `size` bytes of the base from `offset`, in instructions of at most 16 MiB. */
  copy(offset: number, size: number) {
    for (let at = offset, left = size; left > 0; ) {
      const n = Math.min(left, 0xffffff);
      let op = 0x80;
      const args: number[] = [];
      for (let b = 0; b < 4; b++) {
        const v = Math.floor(at / 2 ** (8 * b)) & 0xff;
        if (v) {
          op |= 1 << b;
          args.push(v);
        }
      }
      for (let b = 0; b < 3; b++) {
        const v = (n >> (8 * b)) & 0xff;
        if (v) {
          op |= 0x10 << b;
          args.push(v);
        }
      }
      this.byte(op);
      for (const a of args) this.byte(a);
      at += n;
      left -= n;
    }
  }

  /** Insert literal bytes, at most 127 per instruction. */
  insert(data: Uint8Array, from: number, to: number) {
    for (let at = from; at < to; ) {
      const n = Math.min(127, to - at);
      this.room(n + 1);
      this.buf[this.length++] = n;
      this.buf.set(data.subarray(at, at + n), this.length);
      this.length += n;
      at += n;
    }
  }
}

/** Bytes compared at once with a native compare before looking at single bytes. */
const CHUNK = 64;
/** Bytes compared at once before looking at chunks (a multiple of CHUNK). */
const BLOCK = 64 * CHUNK;

/**
 * A delta from `base` to `target` made for what the store writes: versions of a directory whose serialised bodies
 * differ in a few entries. Equal stretches are found by comparing aligned chunks natively (a changed oid among
 * 10,000 entries costs one pass of memcmp, not a byte loop), plus the common prefix and suffix when an entry was
 * added or removed. Not a general-purpose diff: unrelated bodies give a delta about as large as the target, and the
 * caller then keeps the whole object. Null when the delta would not save at least a quarter.
 */
export function makeDelta(baseBytes: Uint8Array, targetBytes: Uint8Array): Uint8Array | null {
  const base = asBuffer(baseBytes);
  const target = asBuffer(targetBytes);
  const out = new Out();
  out.varint(base.length);
  out.varint(target.length);
  const limit = Math.min(base.length, target.length);
  // The common prefix, chunk by chunk and then byte by byte.
  let prefix = 0;
  while (prefix + CHUNK <= limit && base.compare(target, prefix, prefix + CHUNK, prefix, prefix + CHUNK) === 0) {
    prefix += CHUNK;
  }
  while (prefix < limit && base[prefix] === target[prefix]) prefix++;
  // The common suffix, not overlapping the prefix.
  let suffix = 0;
  const maxSuffix = limit - prefix;
  while (
    suffix + CHUNK <= maxSuffix &&
    base.compare(
      target,
      target.length - suffix - CHUNK,
      target.length - suffix,
      base.length - suffix - CHUNK,
      base.length - suffix,
    ) === 0
  ) {
    suffix += CHUNK;
  }
  while (suffix < maxSuffix && base[base.length - suffix - 1] === target[target.length - suffix - 1]) suffix++;
  if (prefix > 0) out.copy(0, prefix);
  const end = target.length - suffix;
  if (base.length === target.length) {
    // Same length: entries kept their places, so the middle is equal chunks (copied) around changed bytes.
    let pending = prefix;
    for (let at = prefix; at < end; at += CHUNK) {
      // Whole blocks first: at Xenstore width most of a 320 KB body is equal, and each compare call has a cost.
      const block = Math.min(BLOCK, end - at);
      if (at % BLOCK === prefix % BLOCK && base.compare(target, at, at + block, at, at + block) === 0) {
        at += block - CHUNK;
        continue;
      }
      const n = Math.min(CHUNK, end - at);
      if (base.compare(target, at, at + n, at, at + n) === 0) continue;
      let first = at;
      while (base[first] === target[first]) first++;
      let last = at + n;
      while (base[last - 1] === target[last - 1]) last--;
      // A copy instruction costs up to 8 bytes: shorter equal stretches go into the literal.
      if (first - pending >= 8) {
        out.copy(pending, first - pending);
        pending = first;
      }
      out.insert(target, pending, last);
      pending = last;
    }
    if (pending < end) out.copy(pending, end - pending);
  } else {
    out.insert(target, prefix, end);
  }
  if (suffix > 0) out.copy(base.length - suffix, suffix);
  if (out.length > target.length * 0.75) return null;
  return out.buf.subarray(0, out.length);
}

/**
 * The delta from a body to a copy of it with 20-byte oids written at the given offsets (sorted, not overlapping):
 * what a tree version patched in place is, written without looking at either body.
 */
export function patchDelta(size: number, writes: readonly { at: number; oid: Uint8Array }[]): Uint8Array {
  const out = new Out();
  out.varint(size);
  out.varint(size);
  let done = 0;
  for (const { at, oid } of writes) {
    if (at > done) out.copy(done, at - done);
    out.insert(oid, 0, oid.length);
    done = at + oid.length;
  }
  if (done < size) out.copy(done, size - done);
  return out.buf.subarray(0, out.length);
}
