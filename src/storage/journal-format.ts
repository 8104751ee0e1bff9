import { StoreError } from '../errors.js';
import { crc32c } from './crc32c.js';

/**
 * The bytes of the write-ahead journal (docs/ARCHITECTURE.md, "The journal"). A segment file starts with a header,
 * then records, then whatever the file held before (zeros when new, older records when reused):
 *
 *     header:  "GSJH" | u32 generation | u32 state (0 live, 1 retired) | u32 crc32c of the 12 bytes before
 *     record:  "GSJR" | u32 generation | u32 payload length | u32 crc32c | payload
 *
 * A record's checksum covers its payload and chains from the record before (the first from the generation), so a
 * record left from an older use of the segment, or one torn by a power cut, ends the journal where it is: reading
 * stops at the first record that does not check. Numbers are little-endian.
 *
 * A payload holds what one write batch made: the ref moves with their expected old values, and the packs (pack
 * and idx, whole) that hold the batch's objects:
 *
 *     u16 refs  { u16 length, name | 20 bytes old (zeros: none) | 20 bytes new }*
 *     u16 packs { u16 length, name | u32 length, pack | u32 length, idx }*
 */

export interface JournalRecord {
  refs: { ref: string; old: string | null; next: string }[];
  packs: { name: string; pack: Uint8Array; idx: Uint8Array }[];
}

export const HEADER_BYTES = 16;
const RECORD_HEAD = 16;
const HEADER_MAGIC = 0x484a5347; // "GSJH"
const RECORD_MAGIC = 0x524a5347; // "GSJR"
const ZERO_OID = '0'.repeat(40);

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A segment's header: its generation, and whether it is live (its records may need replaying) or retired. */
export function encodeHeader(generation: number, retired: boolean): Uint8Array {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32LE(HEADER_MAGIC, 0);
  b.writeUInt32LE(generation, 4);
  b.writeUInt32LE(retired ? 1 : 0, 8);
  b.writeUInt32LE(crc32c(b.subarray(0, 12)), 12);
  return b;
}

/** The header of a segment's bytes; null when there is none (a torn or never-written header). */
export function decodeHeader(bytes: Uint8Array): { generation: number; retired: boolean } | null {
  if (bytes.length < HEADER_BYTES) return null;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (b.readUInt32LE(0) !== HEADER_MAGIC || b.readUInt32LE(12) !== crc32c(b.subarray(0, 12))) return null;
  return { generation: b.readUInt32LE(4), retired: b.readUInt32LE(8) === 1 };
}

/** The first checksum seed of a generation's records. */
export const seedOf = (generation: number) => crc32c(Buffer.from(`gitstore journal ${generation}`));

/** One record's bytes, chained from `seed` (the checksum of the record before); and its own checksum. */
export function encodeRecord(record: JournalRecord, generation: number, seed: number): { bytes: Buffer; crc: number } {
  const parts: Buffer[] = [];
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(n);
    parts.push(b);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    parts.push(b);
  };
  const name = (s: string) => {
    const b = Buffer.from(utf8.encode(s));
    u16(b.length);
    parts.push(b);
  };
  u16(record.refs.length);
  for (const r of record.refs) {
    name(r.ref);
    parts.push(Buffer.from(r.old ?? ZERO_OID, 'hex'), Buffer.from(r.next, 'hex'));
  }
  u16(record.packs.length);
  for (const p of record.packs) {
    name(p.name);
    u32(p.pack.length);
    parts.push(Buffer.from(p.pack.buffer, p.pack.byteOffset, p.pack.length));
    u32(p.idx.length);
    parts.push(Buffer.from(p.idx.buffer, p.idx.byteOffset, p.idx.length));
  }
  const payload = Buffer.concat(parts);
  const crc = crc32c(payload, seed);
  const head = Buffer.alloc(RECORD_HEAD);
  head.writeUInt32LE(RECORD_MAGIC, 0);
  head.writeUInt32LE(generation, 4);
  head.writeUInt32LE(payload.length, 8);
  head.writeUInt32LE(crc, 12);
  return { bytes: Buffer.concat([head, payload]), crc };
}

function decodePayload(p: Buffer): JournalRecord {
  let at = 0;
  const u16 = () => {
    const n = p.readUInt16LE(at);
    at += 2;
    return n;
  };
  const u32 = () => {
    const n = p.readUInt32LE(at);
    at += 4;
    return n;
  };
  const take = (n: number) => {
    if (at + n > p.length) throw new RangeError('past the record');
    const b = p.subarray(at, at + n);
    at += n;
    return b;
  };
  const name = () => fromUtf8.decode(take(u16()));
  const record: JournalRecord = { refs: [], packs: [] };
  for (let n = u16(); n > 0; n--) {
    const ref = name();
    const old = take(20).toString('hex');
    record.refs.push({ ref, old: old === ZERO_OID ? null : old, next: take(20).toString('hex') });
  }
  for (let n = u16(); n > 0; n--) {
    const packName = name();
    const pack = take(u32());
    record.packs.push({ name: packName, pack, idx: take(u32()) });
  }
  return record;
}

/**
 * The records of a segment that still count: none when it is retired (checkpointed) or has no header; else each
 * record of its generation whose checksum chain holds, up to the first that does not (a torn tail, or an older use).
 */
export function readSegment(bytes: Uint8Array): { generation: number; records: JournalRecord[] } | null {
  const header = decodeHeader(bytes);
  if (!header || header.retired) return null;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const records: JournalRecord[] = [];
  let seed = seedOf(header.generation);
  let at = HEADER_BYTES;
  while (at + RECORD_HEAD <= b.length) {
    if (b.readUInt32LE(at) !== RECORD_MAGIC || b.readUInt32LE(at + 4) !== header.generation) break;
    const length = b.readUInt32LE(at + 8);
    const crc = b.readUInt32LE(at + 12);
    const end = at + RECORD_HEAD + length;
    if (end > b.length) break;
    const payload = b.subarray(at + RECORD_HEAD, end);
    if (crc32c(payload, seed) !== crc) break;
    try {
      records.push(decodePayload(payload));
    } catch {
      // A checksum that holds over a payload that does not parse: not one this code wrote. Stop as for a torn one.
      throw new StoreError('CORRUPT', 'a journal record checks but does not parse: written by another program?');
    }
    seed = crc;
    at = end;
  }
  return { generation: header.generation, records };
}
