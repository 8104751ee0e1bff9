import type { Files } from '../storage/fs.js';

/**
 * Whether a pack and its idx are whole (docs/ARCHITECTURE.md, "The journal"): what a power cut can leave of a pack
 * written without fsync is a directory entry for a file whose data never reached the disk, so an empty or short
 * file. Checked without reading the pack: the idx's own layout and length, and the pack's header and trailing
 * checksum against the one the idx records.
 */

const IDX_MAGIC = 0xff744f63;
const HEADER = 8 + 256 * 4;

/** Whether an idx's bytes are a whole v2 index (its length agrees with its object count). */
export function wholeIndex(idx: Uint8Array): boolean {
  if (idx.length < HEADER + 40) return false;
  const b = Buffer.from(idx.buffer, idx.byteOffset, idx.length);
  if (b.readUInt32BE(0) !== IDX_MAGIC || b.readUInt32BE(4) !== 2) return false;
  const count = b.readUInt32BE(HEADER - 4);
  const small = HEADER + count * 28 + 40;
  // Large offsets (8 bytes each) follow for packs over 2 GiB: at most one per object.
  return idx.length >= small && idx.length <= small + count * 8 && (idx.length - small) % 8 === 0;
}

/**
 * Whether a pack of `size` bytes, starting with `head` and ending with `tail`, is the one `idx` indexes: its header,
 * and its trailing checksum as the idx records it (the 20 bytes before the idx's own).
 */
export function packMatches(idx: Uint8Array, size: number, head: Uint8Array | null, tail: Uint8Array | null): boolean {
  if (size < 32 || !head || !tail) return false;
  const sum = idx.subarray(idx.length - 40, idx.length - 20);
  return Buffer.from(head.subarray(0, 4)).toString('latin1') === 'PACK' && Buffer.from(tail).equals(sum);
}

/** The packs under `packDir` that are not whole (by name, `pack-<sum>`): a power cut's leftovers. */
export async function tornPacks(files: Files, packDir: string): Promise<string[]> {
  const torn: string[] = [];
  for (const file of await files.list(packDir)) {
    const m = /^(pack-[0-9a-f]{40})\.idx$/.exec(file);
    if (!m) continue;
    const name = m[1]!;
    const idx = await files.read(`${packDir}/${file}`);
    if (!idx) continue; // removed meanwhile
    const stat = await files.stat(`${packDir}/${name}.pack`);
    if (!wholeIndex(idx) || !stat || stat.size < 32) {
      torn.push(name);
      continue;
    }
    const [head, tail] = await Promise.all([
      files.readRange(`${packDir}/${name}.pack`, 0, 4),
      files.readRange(`${packDir}/${name}.pack`, stat.size - 20, 20),
    ]);
    if (!packMatches(idx, stat.size, head, tail)) torn.push(name);
  }
  return torn;
}
