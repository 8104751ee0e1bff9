import { createHash, hash } from 'node:crypto';

/** The four git object types. */
export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';

/** A git object in memory: its type and its body (without git's `<type> <size>\0` header). */
export interface GitObject {
  type: ObjectType;
  body: Uint8Array;
}

/** The id git gives an object: SHA-1 over the header and the body. */
export function hashObject(type: ObjectType, body: Uint8Array): string {
  // Small objects (most of them) are hashed in one call from a reused buffer: a Hash object per object costs
  // more than hashing its few hundred bytes.
  if (body.length <= SCRATCH_BYTES - 32) {
    scratchBuffer ??= Buffer.allocUnsafe(SCRATCH_BYTES);
    const scratch = scratchBuffer;
    const n = scratch.write(`${type} ${body.length}\0`, 0, 'latin1');
    scratch.set(body, n);
    return hash('sha1', scratch.subarray(0, n + body.length), 'hex');
  }
  return createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest('hex');
}

const SCRATCH_BYTES = 64 << 10;
// Made at first use, not at load: the web UI's bundle holds this module (through the HTTP client) and runs where
// there is no Buffer.
let scratchBuffer: Buffer | undefined;

/** The same bytes seen as a Buffer (no copy), for Buffer's native compare, copy and string methods. */
export const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);

/**
 * A copy in a buffer of its own, made with one memcpy: `Buffer.from(uint8Array)` copies element by element
 * (1.6 ms for a 320 KB tree, profiled).
 */
export function copyBytes(b: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafe(b.length);
  asBuffer(b).copy(copy);
  return copy;
}

export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

export const isOid = (s: string): boolean => /^[0-9a-f]{40}$/.test(s);

export const utf8 = new TextEncoder();
export const fromUtf8 = new TextDecoder();
