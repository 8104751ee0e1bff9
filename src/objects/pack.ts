import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Files } from '../fs.js';
import type { GitObject, ObjectType } from './object.js';

/**
 * Packs and their indexes (git's pack format v2, idx v2), written whole and durably: the store's write path puts a
 * batch's objects into one pack instead of thousands of loose files (DESIGN §3).
 */

const TYPE_CODES: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const CODE_TYPES: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };

/** One object as it sits in a pack: entry header plus zlib stream, with the CRC-32 the idx records. */
export interface PackEntry {
  oid: string;
  raw: Uint8Array;
  crc: number;
}

function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  // 5552 is the largest run before the sums can overflow 32 bits (zlib's NMAX).
  for (let i = 0; i < data.length; ) {
    const end = Math.min(i + 5552, data.length);
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * A zlib stream of stored (uncompressed) deflate blocks. One deflateSync call costs ~30 µs of fixed overhead, which
 * alone would cap the commit rate; stored blocks cost a copy and an Adler-32, and `store gc` compresses later.
 */
export function zlibStored(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / 65535));
  const out = Buffer.allocUnsafe(2 + blocks * 5 + data.length + 4);
  out[0] = 0x78;
  out[1] = 0x01;
  let o = 2;
  for (let i = 0, n = 0; n < blocks; n++) {
    const len = Math.min(65535, data.length - i);
    out[o++] = n === blocks - 1 ? 1 : 0;
    out.writeUInt16LE(len, o);
    out.writeUInt16LE(~len & 0xffff, o + 2);
    o += 4;
    out.set(data.subarray(i, i + len), o);
    o += len;
    i += len;
  }
  out.writeUInt32BE(adler32(data), o);
  return out;
}

function entryHeader(type: ObjectType, size: number): Uint8Array {
  const bytes: number[] = [];
  let byte = (TYPE_CODES[type] << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Uint8Array.from(bytes);
}

/** Encodes one object as a pack entry. */
export function encodeEntry(oid: string, object: GitObject): PackEntry {
  const raw = Buffer.concat([entryHeader(object.type, object.body.length), zlibStored(object.body)]);
  return { oid, raw, crc: crc32(raw) };
}

function buildIndex(entries: PackEntry[], offsets: number[], packSum: Buffer): Buffer {
  const order = entries.map((_, i) => i).sort((a, b) => (entries[a]!.oid < entries[b]!.oid ? -1 : 1));
  const n = entries.length;
  const large = offsets.filter((o) => o >= 0x80000000).length;
  const idx = Buffer.alloc(8 + 1024 + n * 28 + large * 8 + 40);
  idx.writeUInt32BE(0xff744f63, 0);
  idx.writeUInt32BE(2, 4);
  const fanout = new Array<number>(256).fill(0);
  for (const e of entries) fanout[Number.parseInt(e.oid.slice(0, 2), 16)]!++;
  let total = 0;
  for (let i = 0; i < 256; i++) {
    total += fanout[i]!;
    idx.writeUInt32BE(total, 8 + i * 4);
  }
  let o = 8 + 1024;
  for (const i of order) {
    idx.write(entries[i]!.oid, o, 'hex');
    o += 20;
  }
  for (const i of order) {
    idx.writeUInt32BE(entries[i]!.crc, o);
    o += 4;
  }
  let nextLarge = 0;
  const largeStart = o + n * 4;
  for (const i of order) {
    const offset = offsets[i]!;
    if (offset < 0x80000000) idx.writeUInt32BE(offset, o);
    else {
      idx.writeUInt32BE((0x80000000 | nextLarge) >>> 0, o);
      idx.writeBigUInt64BE(BigInt(offset), largeStart + nextLarge * 8);
      nextLarge++;
    }
    o += 4;
  }
  o = largeStart + large * 8;
  packSum.copy(idx, o);
  createHash('sha1')
    .update(idx.subarray(0, o + 20))
    .digest()
    .copy(idx, o + 20);
  return idx;
}

/**
 * Writes `entries` as one pack + idx in `packDir`, durably: both are written to temporary names, fsynced, then
 * renamed (pack first, so an idx never names a missing pack) and the directory synced. Returns the pack's name.
 */
export async function writePack(files: Files, packDir: string, entries: PackEntry[]): Promise<string> {
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(entries.length, 8);
  const hash = createHash('sha1').update(header);
  const offsets: number[] = [];
  let offset = 12;
  for (const e of entries) {
    offsets.push(offset);
    hash.update(e.raw);
    offset += e.raw.length;
  }
  const sum = hash.digest();
  const name = `pack-${sum.toString('hex')}`;
  const tmp = `${packDir}/tmp_pack_${randomBytes(6).toString('hex')}`;
  // Both files are written and fsynced side by side: the two syncs overlap instead of queueing.
  await Promise.all([
    files.writeNew(tmp, [header, ...entries.map((e) => e.raw), sum], false),
    files.writeNew(`${tmp}.idx`, [buildIndex(entries, offsets, sum)], false),
  ]);
  await files.p.rename(tmp, `${packDir}/${name}.pack`);
  await files.p.rename(`${tmp}.idx`, `${packDir}/${name}.idx`);
  await files.syncDir(packDir);
  return name;
}

/** The oids and offsets an idx v2 lists, in pack order. */
export function readIndexOffsets(idx: Uint8Array): { oid: string; offset: number; crc: number }[] {
  const buf = Buffer.from(idx.buffer, idx.byteOffset, idx.byteLength);
  if (buf.readUInt32BE(0) !== 0xff744f63 || buf.readUInt32BE(4) !== 2) throw new Error('not a version 2 pack index');
  const n = buf.readUInt32BE(8 + 255 * 4);
  const oidsAt = 8 + 1024;
  const crcAt = oidsAt + n * 20;
  const offAt = crcAt + n * 4;
  const largeAt = offAt + n * 4;
  const out: { oid: string; offset: number; crc: number }[] = [];
  for (let i = 0; i < n; i++) {
    let offset = buf.readUInt32BE(offAt + i * 4);
    if (offset & 0x80000000) offset = Number(buf.readBigUInt64BE(largeAt + (offset & 0x7fffffff) * 8));
    out.push({
      oid: buf.toString('hex', oidsAt + i * 20, oidsAt + i * 20 + 20),
      offset,
      crc: buf.readUInt32BE(crcAt + i * 4),
    });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/**
 * The entries of a pack whose objects are all whole (no deltas), as raw bytes ready to copy into another pack;
 * null for a pack holding deltas (one git wrote), which only `git gc` should rewrite.
 */
export function readWholeEntries(pack: Uint8Array, idx: Uint8Array): PackEntry[] | null {
  const listed = readIndexOffsets(idx);
  const entries: PackEntry[] = [];
  for (let i = 0; i < listed.length; i++) {
    const { oid, offset, crc } = listed[i]!;
    const end = i + 1 < listed.length ? listed[i + 1]!.offset : pack.length - 20;
    const type = (pack[offset]! >> 4) & 7;
    if (!CODE_TYPES[type]) return null;
    entries.push({ oid, raw: pack.subarray(offset, end), crc });
  }
  return entries;
}
