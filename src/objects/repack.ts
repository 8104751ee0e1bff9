import type { Files } from '../storage/fs.js';
import { DELTA_MIN_BYTES } from './delta.js';
import { planByKey, treeKey } from './delta-plan.js';
import type { GitObject } from './object.js';
import { isStored, OFS_DELTA, type PackInput, type RawInput, REF_DELTA, TYPE_CODES, writePack } from './pack.js';
import type { RawEntry } from './reader.js';

/** What repacking needs from the object store: the packs' entries, and reads through its caches. */
export interface RepackSource {
  rawEntriesOf(pack: string): AsyncIterable<RawEntry>;
  readObject(oid: string): Promise<GitObject>;
}

const SIDECARS = ['bitmap', 'rev', 'mtimes', 'promisor'];

/**
 * Rewrites `packs` as one pack, then removes them. Every object is kept unless `keep` says otherwise (pruning).
 * Wide trees that are stored whole become deltas of other versions of the same directory, chained as `delta-plan` describes.
 * - `compress` (`store gc`): every object is read and written again, deflated.
 * - `compress: 'stored'` (pruning): entries already deflated are copied as they are, stored ones deflated.
 * - otherwise (background maintenance): entries are copied as they are — only the whole wide trees are read and
 *   re-encoded — so a round costs little more than the bytes it moves.
 * The new pack is durable before any old one goes, and an old pack's idx goes before its pack, so a reader — this
 * process, another one, or git — always finds every object. Null with fewer than two packs (unless `force`).
 * `vanished`: some of `packs` were merged away by another process meanwhile (their objects are in its pack).
 */
export async function repack(
  source: RepackSource,
  files: Files,
  packDir: string,
  packs: string[],
  options: { compress: boolean | 'stored'; force?: boolean; keep?: (oid: string) => boolean },
): Promise<{ name: string; objects: number; vanished: boolean } | null> {
  if (packs.length === 0 || (packs.length < 2 && !options.force)) return null;
  const { compress } = options;
  const keep = options.keep ?? (() => true);
  // Pass 1: which wide trees are versions of one another. Bodies are not kept: at Xenstore width, 100,000 versions
  // of a 320 KB tree do not fit in memory.
  const seen = new Set<string>();
  const versions: { oid: string; key: string }[] = [];
  for (const pack of packs) {
    for await (const e of source.rawEntriesOf(pack)) {
      if (seen.has(e.oid) || !keep(e.oid)) continue;
      seen.add(e.oid);
      // A delta entry's size is the delta's: what it makes is known only by reading it (gc re-encodes them all;
      // background maintenance copies them as they are).
      const maybeWideTree =
        (e.code === TYPE_CODES.tree && e.size >= DELTA_MIN_BYTES) || (compress === true && e.code >= OFS_DELTA);
      if (!maybeWideTree) continue;
      const o = await source.readObject(e.oid);
      if (o.type === 'tree' && o.body.length >= DELTA_MIN_BYTES) versions.push({ oid: e.oid, key: treeKey(o.body) });
    }
  }
  const bases = planByKey(versions);
  // Pass 2: the entries again, in the same order, so every base precedes what is made from it.
  async function* inputs(): AsyncGenerator<PackInput | RawInput> {
    const written = new Set<string>();
    for (const pack of packs) {
      for await (const e of source.rawEntriesOf(pack)) {
        if (written.has(e.oid) || !keep(e.oid)) continue;
        written.add(e.oid);
        const base = bases.get(e.oid);
        const rawOk = compress === false || (compress === 'stored' && !isStored(e.data));
        const copyable = rawOk && !base && e.code !== REF_DELTA && (e.base === null || written.has(e.base));
        if (copyable) {
          yield { oid: e.oid, raw: e };
          continue;
        }
        const o = await source.readObject(e.oid);
        yield { oid: e.oid, type: o.type, body: o.body, ...(base ? { base } : {}) };
      }
    }
  }
  const { name } = await writePack(files, packDir, inputs(), {
    compress: compress !== false,
    readBase: async (oid) => (await source.readObject(oid)).body,
  });
  let vanished = false;
  for (const pack of packs) {
    if (pack === name) continue;
    if (!(await removePack(files, packDir, pack))) vanished = true;
  }
  return { name, objects: seen.size, vanished };
}

/** Removes a pack: its idx first, so no reader finds an index without its pack. False when it was already gone. */
export async function removePack(files: Files, packDir: string, pack: string): Promise<boolean> {
  const existed = (await files.stat(`${packDir}/${pack}.pack`)) !== null;
  await files.remove(`${packDir}/${pack}.idx`);
  await files.remove(`${packDir}/${pack}.pack`);
  // What git may have written beside a pack it made: stale once the pack is gone (git would call them garbage).
  for (const ext of SIDECARS) await files.remove(`${packDir}/${pack}.${ext}`);
  return existed;
}
