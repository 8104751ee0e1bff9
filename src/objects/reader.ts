import { inflateSync } from 'node:zlib';
import { StoreError } from '../errors.js';
import type { Files } from '../storage/fs.js';
import { applyDelta } from './delta.js';
import { Lru } from './lru.js';
import { asBuffer, type GitObject, type ObjectType } from './object.js';
import { OFS_DELTA, REF_DELTA, TYPE_CODES } from './pack.js';
import { packMatches, wholeIndex } from './pack-check.js';

/**
 * Reads objects the way git stores them: loose (`objects/xx/…`, zlib) and in packs (idx v2 lookup, whole entries,
 * OFS/REF deltas). Written here rather than taken from isomorphic-git because its import alone costs ~190 ms, which
 * a CLI started in shell loops cannot afford, and because it loads every pack whole on every process.
 */

const TYPES = Object.fromEntries(Object.entries(TYPE_CODES).map(([type, code]) => [code, type])) as Record<
  number,
  ObjectType
>;

/** A pack entry as stored: type code (6 = OFS_DELTA, 7 = REF_DELTA), inflated size, base and zlib bytes. */
export interface RawEntry {
  oid: string;
  code: number;
  size: number;
  base: string | null;
  data: Uint8Array;
}

interface PackIndex {
  name: string;
  idx: Buffer;
  count: number;
  /** Offsets sorted ascending, to find where each entry ends. */
  sorted: Float64Array;
  pack: Buffer | null;
}

const corrupt = (what: string) => new StoreError('CORRUPT', `repository is damaged: ${what}; run \`git fsck\``, {});

function parseLoose(data: Uint8Array, oid: string): GitObject {
  const raw = inflateSync(data);
  const space = raw.indexOf(0x20);
  const nul = raw.indexOf(0, space);
  if (space < 0 || nul < 0) throw corrupt(`loose object ${oid} has no header`);
  const type = raw.toString('latin1', 0, space) as ObjectType;
  return { type, body: raw.subarray(nul + 1) };
}

/**
 * Inflates a pack entry. The store writes stored (uncompressed) deflate blocks on its commit path; those are read
 * by copying them out, which saves zlib's fixed cost per call (~20 µs) on every object of every consolidation.
 */
function inflate(data: Uint8Array, size: number): Uint8Array {
  if (data[0] === 0x78 && (data[1] === 0x01 || data[1] === 0x9c || data[1] === 0xda)) {
    const parts: Uint8Array[] = [];
    let i = 2;
    for (;;) {
      const header = data[i];
      // Only whole-byte stored blocks (BTYPE 00, no bits left over) take this path; anything else goes to zlib.
      if (header === undefined || (header & 0xfe) !== 0 || i + 5 > data.length) break;
      const len = data[i + 1]! | (data[i + 2]! << 8);
      const nlen = data[i + 3]! | (data[i + 4]! << 8);
      if ((len ^ 0xffff) !== nlen || i + 5 + len > data.length) break;
      parts.push(data.subarray(i + 5, i + 5 + len));
      i += 5 + len;
      if (header & 1) return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    }
  }
  // An output chunk of the entry's size: zlib's default 16 KB chunk per call made allocation the main cost of
  // reading many small objects (1.2 s of 4.5 s in a compaction's prune, profiled).
  return inflateSync(data, { chunkSize: Math.min(1 << 20, Math.max(64, size)) });
}

/**
 * A pack entry's header: its type code, inflated size, where its zlib data starts, and its delta base — `back`
 * bytes before it for an OFS_DELTA, `refBase` for a REF_DELTA.
 */
function entryAt(
  pack: Buffer,
  offset: number,
): { code: number; size: number; back: number; refBase: string | null; dataAt: number } {
  let i = offset;
  let byte = pack[i++]!;
  const code = (byte >> 4) & 7;
  let size = byte & 0x0f;
  for (let shift = 4; byte & 0x80; shift += 7) {
    byte = pack[i++]!;
    size += (byte & 0x7f) * 2 ** shift;
  }
  let back = 0;
  let refBase: string | null = null;
  if (code === OFS_DELTA) {
    byte = pack[i++]!;
    back = byte & 0x7f;
    while (byte & 0x80) {
      byte = pack[i++]!;
      back = (back + 1) * 128 + (byte & 0x7f);
    }
  } else if (code === REF_DELTA) {
    refBase = pack.toString('hex', i, i + 20);
    i += 20;
  }
  return { code, size, back, refBase, dataAt: i };
}

/** Re-listings allowed while packs keep vanishing under one read. */
const MAX_CHURN = 50;

/** A pack listed a moment ago is no longer there (consolidated by another writer). */
class PackGone extends Error {}

export class ObjectReader {
  private packs: PackIndex[] | null = null;
  /** Packs found torn (a power cut's leftovers), left out of every listing. */
  private readonly torn = new Set<string>();
  /** Parsed indexes by pack name, kept across refreshes: an idx never changes once written. */
  private readonly known = new Map<string, PackIndex>();
  private readonly deltaBases = new Lru<string, GitObject>(32 << 20, (o) => o.body.length + 64);

  constructor(
    private readonly files: Files,
    private readonly gitdir: string,
  ) {}

  private get packDir() {
    return `${this.gitdir}/objects/pack`;
  }

  /** Forgets the pack list, so packs written or removed by others are seen. */
  refresh(): void {
    this.packs = null;
  }

  private async loadPacks(): Promise<PackIndex[]> {
    if (this.packs) return this.packs;
    const names = (await this.files.list(this.packDir)).filter((n) => /^pack-[0-9a-f]{40}\.idx$/.test(n));
    const packs: PackIndex[] = [];
    for (const file of names) {
      const name = file.slice(0, -4);
      const known = this.known.get(name);
      if (known) {
        packs.push(known);
        continue;
      }
      if (this.torn.has(name)) continue;
      const data = await this.files.read(`${this.packDir}/${file}`);
      if (!data) {
        this.vanished = true;
        continue;
      }
      // A power cut's leftover (pack-check.ts): not a pack; recovery at the next open removes it.
      if (!wholeIndex(data)) {
        this.torn.add(name);
        continue;
      }
      packs.push(this.index(name, asBuffer(data), null));
    }
    const listed = new Set(packs.map((p) => p.name));
    for (const name of this.known.keys()) if (!listed.has(name)) this.known.delete(name);
    // Newest packs first: recent objects are the ones asked for most.
    this.packs = packs.reverse();
    return this.packs;
  }

  /** Parses and remembers a pack's index (and its data, when already in memory). */
  private index(name: string, idx: Buffer, pack: Buffer | null): PackIndex {
    if (idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2)
      throw corrupt(`${name}.idx is not a v2 pack index`);
    const count = idx.readUInt32BE(8 + 255 * 4);
    // A typed array sorts numerically without a comparator called per comparison: a third of a second, not a
    // tenth of that, for a 200,000-object pack, paid by the first read of every process.
    const sorted = new Float64Array(count);
    for (let i = 0; i < count; i++) sorted[i] = this.offsetAt({ idx, count } as PackIndex, i);
    sorted.sort();
    const index = { name, idx, count, sorted, pack };
    this.known.set(name, index);
    return index;
  }

  /**
   * Makes a pack this process just wrote readable without listing the directory and reading back what it has in
   * memory (a listing and an idx read per batch were a tenth of the commit path's file-system calls).
   */
  added(name: string, idx: Buffer, pack: Buffer): void {
    const index = this.index(name, idx, pack);
    this.packs?.unshift(index);
  }

  private offsetAt(p: PackIndex, i: number): number {
    const at = 8 + 1024 + p.count * 24 + i * 4;
    const small = p.idx.readUInt32BE(at);
    if (!(small & 0x80000000)) return small;
    return Number(p.idx.readBigUInt64BE(8 + 1024 + p.count * 28 + (small & 0x7fffffff) * 8));
  }

  /** Index of `oid` in a pack's sorted oid table, or -1. */
  private find(p: PackIndex, oid: string): number {
    const first = Number.parseInt(oid.slice(0, 2), 16);
    let lo = first === 0 ? 0 : p.idx.readUInt32BE(8 + (first - 1) * 4);
    let hi = p.idx.readUInt32BE(8 + first * 4);
    const want = Buffer.from(oid, 'hex');
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const at = 8 + 1024 + mid * 20;
      const c = want.compare(p.idx, at, at + 20);
      if (c === 0) return mid;
      if (c > 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  private async packData(p: PackIndex): Promise<Buffer> {
    if (!p.pack) {
      const data = await this.files.read(`${this.packDir}/${p.name}.pack`);
      if (!data) throw new PackGone(p.name);
      const pack = asBuffer(data);
      if (!packMatches(p.idx, pack.length, pack.subarray(0, 4), pack.subarray(-20))) {
        // Cut short by a power cut (pack-check.ts): read as if it were not there.
        this.torn.add(p.name);
        this.known.delete(p.name);
        throw new PackGone(p.name);
      }
      p.pack = pack;
    }
    return p.pack;
  }

  /** Reads the entry at `offset` in a pack, resolving deltas. */
  private async readAt(p: PackIndex, offset: number): Promise<GitObject> {
    const cacheKey = `${p.name}:${offset}`;
    const cached = this.deltaBases.get(cacheKey);
    if (cached) return cached;
    const pack = await this.packData(p);
    const e = entryAt(pack, offset);
    // The entry ends where the next one starts (or at the trailing checksum): inflate exactly that slice.
    const data = pack.subarray(e.dataAt, p.sorted[upperBound(p.sorted, offset)] ?? pack.length - 20);
    let result: GitObject;
    if (e.code === OFS_DELTA) {
      const base = await this.readAt(p, offset - e.back);
      result = { type: base.type, body: applyDelta(base.body, inflate(data, e.size)) };
    } else if (e.code === REF_DELTA) {
      const base = await this.read(e.refBase!);
      if (!base) throw corrupt(`delta base ${e.refBase} is missing`);
      result = { type: base.type, body: applyDelta(base.body, inflate(data, e.size)) };
    } else {
      const t = TYPES[e.code];
      if (!t) throw corrupt(`unknown pack entry type ${e.code} in ${p.name}`);
      result = { type: t, body: inflate(data, e.size) };
    }
    // Kept for the deltas made against it: versions of a directory are read one after another, and each one's
    // base is often the one read just before (whole objects are also cached by oid one level up).
    this.deltaBases.set(cacheKey, result);
    return result;
  }

  /** The object, or null when the repository does not have it. */
  async read(oid: string): Promise<GitObject | null> {
    // Packs come and go under us (other processes merge them): a vanished pack means "list again", as often as it
    // takes within reason; a clean miss is believed after a few fresh listings.
    for (let misses = 0, churn = 0; misses < 3 && churn < MAX_CHURN; ) {
      this.vanished = false;
      try {
        for (const p of await this.loadPacks()) {
          const i = this.find(p, oid);
          if (i >= 0) return await this.readAt(p, this.offsetAt(p, i));
        }
      } catch (e) {
        if (!(e instanceof PackGone)) throw e;
        this.refresh();
        churn++;
        continue;
      }
      const loose = await this.files.read(`${this.gitdir}/objects/${oid.slice(0, 2)}/${oid.slice(2)}`);
      if (loose) return parseLoose(loose, oid);
      // Not found: maybe a pack appeared (another writer) or was merged away since we listed them.
      this.refresh();
      if (this.vanished) churn++;
      else misses++;
    }
    return null;
  }

  /** Set when a listed pack's index could not be read: the listing raced with a repack. */
  private vanished = false;

  /**
   * The packs now in the repository, oldest first (by modification time): name, bytes (pack and idx), and whether
   * git was told to keep it as it is (a `.keep` file), which repacking respects.
   */
  async listPacks(): Promise<{ name: string; bytes: number; mtimeMs: number; keep: boolean }[]> {
    this.refresh();
    const files = new Set(await this.files.list(this.packDir));
    const out: { name: string; bytes: number; mtimeMs: number; keep: boolean }[] = [];
    for (const p of await this.loadPacks()) {
      const stat = await this.files.stat(`${this.packDir}/${p.name}.pack`);
      if (!stat) continue;
      out.push({
        name: p.name,
        bytes: stat.size + p.idx.length,
        mtimeMs: stat.mtimeMs,
        keep: files.has(`${p.name}.keep`),
      });
    }
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  }

  /**
   * Every entry of a pack as it is stored, in order, without inflating it: for copying into another pack. `base` is
   * the oid an OFS_DELTA entry is a delta of (null for REF_DELTA entries, which are not copied raw).
   */
  async *rawEntriesOf(name: string): AsyncGenerator<RawEntry> {
    const p = (await this.loadPacks()).find((q) => q.name === name);
    if (!p) return;
    let pack: Buffer;
    try {
      pack = await this.packData(p);
    } catch (e) {
      // Merged away by another process meanwhile: its objects are in the pack that replaced it.
      if (e instanceof PackGone) return;
      throw e;
    }
    const oidAt = new Map<number, string>();
    for (let i = 0; i < p.count; i++) {
      oidAt.set(this.offsetAt(p, i), p.idx.toString('hex', 8 + 1024 + i * 20, 8 + 1024 + i * 20 + 20));
    }
    for (let n = 0; n < p.sorted.length; n++) {
      const offset = p.sorted[n]!;
      const { code, size, back, dataAt } = entryAt(pack, offset);
      const base = code === OFS_DELTA ? (oidAt.get(offset - back) ?? null) : null;
      yield {
        oid: oidAt.get(offset)!,
        code,
        size,
        base,
        data: pack.subarray(dataAt, p.sorted[n + 1] ?? pack.length - 20),
      };
    }
  }

  /** Reads one object (resolving deltas), for entries met through `rawEntriesOf`. */
  async readObject(oid: string): Promise<GitObject> {
    const o = await this.read(oid);
    if (!o) throw corrupt(`object ${oid} vanished while being read`);
    return o;
  }

  /** Every oid starting with `prefix` (loose and packed). */
  async matching(prefix: string): Promise<string[]> {
    const found = new Set<string>();
    for (const name of await this.files.list(`${this.gitdir}/objects/${prefix.slice(0, 2)}`)) {
      const oid = prefix.slice(0, 2) + name;
      if (oid.startsWith(prefix)) found.add(oid);
    }
    this.refresh();
    for (const p of await this.loadPacks()) {
      const first = Number.parseInt(prefix.slice(0, 2), 16);
      const lo = first === 0 ? 0 : p.idx.readUInt32BE(8 + (first - 1) * 4);
      const hi = p.idx.readUInt32BE(8 + first * 4);
      for (let i = lo; i < hi; i++) {
        const oid = p.idx.toString('hex', 8 + 1024 + i * 20, 8 + 1024 + i * 20 + 20);
        if (oid.startsWith(prefix)) found.add(oid);
      }
    }
    return [...found];
  }
}

function upperBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
