import { StoreError } from '../errors.js';
import { asBuffer, type GitObject, type ObjectType } from './object.js';
import { TYPE_CODES } from './pack.js';

/**
 * The body replicas send each other objects in (docs/ARCHITECTURE.md, "Replication"): `GSO1`, then per object its
 * type (the pack format's code, one byte), its body's length (4 bytes, big-endian) and the body. Objects are whole
 * and uncompressed: a replication round carries a few small commits, trees and blobs, for which zlib and deltas
 * cost more CPU than the bytes they save on a LAN. No oids: the receiver hashes what it gets, so it cannot be told
 * an object is something it is not.
 */
const MAGIC = 'GSO1';

const TYPES = new Map<number, ObjectType>(Object.entries(TYPE_CODES).map(([t, c]) => [c, t as ObjectType]));

export function encodeObjects(objects: readonly GitObject[]): Buffer {
  let size = MAGIC.length;
  for (const o of objects) size += 5 + o.body.length;
  const out = Buffer.allocUnsafe(size);
  let at = out.write(MAGIC, 0, 'latin1');
  for (const o of objects) {
    out[at] = TYPE_CODES[o.type];
    out.writeUInt32BE(o.body.length, at + 1);
    out.set(o.body, at + 5);
    at += 5 + o.body.length;
  }
  return out;
}

/** The objects of a body `encodeObjects` made; REMOTE when it is not one (truncated, or from something else). */
export function decodeObjects(bytes: Uint8Array): GitObject[] {
  const b = asBuffer(bytes);
  const malformed = (why: string) =>
    new StoreError('REMOTE', `the peer sent objects that cannot be read (${why}); is it a store of this version?`);
  if (b.length < MAGIC.length || b.toString('latin1', 0, MAGIC.length) !== MAGIC) throw malformed('not a GSO1 body');
  const objects: GitObject[] = [];
  for (let at = MAGIC.length; at < b.length; ) {
    if (at + 5 > b.length) throw malformed('truncated');
    const type = TYPES.get(b[at]!);
    const length = b.readUInt32BE(at + 1);
    if (type === undefined) throw malformed(`object type ${b[at]}`);
    if (at + 5 + length > b.length) throw malformed('truncated');
    objects.push({ type, body: b.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return objects;
}
