import { ObjectBatch } from '../objects/batch.js';
import { type Signature, serializeCommit } from '../objects/commit.js';
import type { ObjectDb } from '../objects/db.js';
import { fromUtf8, utf8 } from '../objects/object.js';
import { MODE_BLOB, serializeTree } from '../objects/tree.js';
import type { Refs } from '../storage/refs.js';
import { ancestorsSince, type Rewrite } from './compaction.js';

/**
 * Where compaction remembers what became of the commits it rewrote, so that an old commit id is never silently
 * wrong: `refs/store/compacted/<branch>` names a commit (no parent: the previous map becomes garbage) whose tree
 * holds one text file, `map`, readable with `git show refs/store/compacted/main:map`. Each line:
 * `<old id, 16 digits> <new id> kept|dropped <old commit time>`. `kept`: the same state under a new id (a re-parented commit);
 * `dropped`: absorbed into the snapshot named. The map holds the `limit` most recent old commits by time, so it stays
 * bounded however many commits compaction drops over the years (an older id then answers NOT_FOUND).
 */

export const MAP_REF_PREFIX = 'refs/store/compacted/';

/** Default number of old commits a branch's map remembers (~90 bytes each before deflation). */
export const DEFAULT_MAP_LIMIT = 10_000;

export type CompactionMap = Map<string, Rewrite>;

/** Old ids are kept as their first 16 hex digits (64 bits: no two commits of one repository share them). */
const OLD_DIGITS = 16;

const LINE = /^([0-9a-f]{16}) ([0-9a-f]{40}) (kept|dropped) (\d+)$/;

export function parseMap(text: string): CompactionMap {
  const map: CompactionMap = new Map();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m) map.set(m[1]!, { to: m[2]!, kind: m[3] as Rewrite['kind'], time: Number(m[4]) });
  }
  return map;
}

function serializeMap(map: CompactionMap, branch: string): string {
  const lines = [...map].map(([old, r]) => `${old} ${r.to} ${r.kind} ${r.time}`);
  return `# gitstore compaction map of ${branch}: old id, new id, kept|dropped, old commit time\n${lines.join('\n')}\n`;
}

/**
 * The map after one more compaction (`rewrites` keyed by full old ids): earlier entries follow their target when it was rewritten in turn (a commit
 * dropped into a snapshot that is itself dropped now is dropped into the newer one), this compaction's entries are
 * added, and only the `limit` most recent old commits are remembered.
 */
export function composeMap(prior: CompactionMap, rewrites: CompactionMap, limit: number): CompactionMap {
  const all: [string, Rewrite][] = [];
  for (const [old, r] of prior) {
    const next = rewrites.get(r.to);
    all.push([
      old,
      next
        ? { to: next.to, kind: r.kind === 'dropped' || next.kind === 'dropped' ? 'dropped' : 'kept', time: r.time }
        : r,
    ]);
  }
  for (const [old, r] of rewrites) all.push([old.slice(0, OLD_DIGITS), r]);
  all.sort((a, b) => b[1].time - a[1].time);
  return new Map(all.slice(0, limit));
}

/** A hit in some branch's map: `old` as asked for, `key` its 16 digits in the map. */
export interface MapHit extends Rewrite {
  branch: string;
  old: string;
  key: string;
}

/**
 * Whether a commit whose id starts with `key` is in the history of one of `heads` (all parents), looking back only
 * to commits no older than `since` (seconds): a commit one branch's compaction dropped may live on in another branch.
 */
export async function reaches(db: ObjectDb, heads: string[], key: string, since: number): Promise<boolean> {
  for await (const id of ancestorsSince(db, heads, since)) if (id.startsWith(key)) return true;
  return false;
}

/** The compaction maps of a repository: read (cached per map commit), looked up, and extended. */
export class CompactionMaps {
  private readonly cache = new Map<string, CompactionMap>();

  constructor(
    private readonly db: ObjectDb,
    private readonly refs: Refs,
  ) {}

  /** What the branch's map ref holds now (changes with every compaction of the branch). */
  mark(branch: string): Promise<string | null> {
    return this.refs.read(MAP_REF_PREFIX + branch);
  }

  private async load(commit: string | null): Promise<CompactionMap> {
    if (!commit) return new Map();
    let map = this.cache.get(commit);
    if (!map) {
      const tree = await this.db.readTree((await this.db.readCommit(commit)).tree);
      const entry = tree.get('map');
      map = entry ? parseMap(fromUtf8.decode(await this.db.readBlob(entry.oid))) : new Map();
      this.cache.clear(); // one map per branch is ever current; older ones are garbage
      this.cache.set(commit, map);
    }
    return map;
  }

  /** Whether any branch's map lists the commit `id` (a full id), i.e. it was on a branch that compaction rewrote. */
  async rewrote(): Promise<(id: string) => boolean> {
    const maps: CompactionMap[] = [];
    for (const commit of (await this.refs.list(MAP_REF_PREFIX)).values()) {
      maps.push(await this.load(commit).catch(() => new Map() as CompactionMap));
    }
    return (id) => maps.some((m) => m.has(id.slice(0, OLD_DIGITS)));
  }

  /** The entry for a full commit id or an unambiguous abbreviation of one, in any branch's map. */
  async lookup(id: string): Promise<MapHit | null> {
    const refs = await this.refs.list(MAP_REF_PREFIX);
    let hit: MapHit | null = null;
    for (const [ref, commit] of refs) {
      const map = await this.load(commit).catch(() => new Map() as CompactionMap);
      const branch = ref.slice(MAP_REF_PREFIX.length);
      const key = id.slice(0, OLD_DIGITS);
      const exact = id.length >= OLD_DIGITS ? map.get(key) : undefined;
      if (exact) return { ...exact, branch, old: id, key };
      if (id.length >= OLD_DIGITS) continue;
      for (const [old, r] of map) {
        if (!old.startsWith(id)) continue;
        if (hit && hit.old !== old) return null; // ambiguous: let the object lookup say so
        hit = { ...r, branch, old, key: old };
      }
    }
    return hit;
  }

  /** Adds one compaction's rewrites to the branch's map (compare-and-swap; retried when another process raced). */
  async record(branch: string, rewrites: CompactionMap, limit: number, who: Signature): Promise<void> {
    const ref = MAP_REF_PREFIX + branch;
    for (;;) {
      const current = await this.refs.read(ref);
      const map = composeMap(await this.load(current), rewrites, limit);
      const batch = new ObjectBatch();
      const blob = batch.add('blob', utf8.encode(serializeMap(map, branch)));
      const tree = batch.add('tree', serializeTree(new Map([['map', { mode: MODE_BLOB, oid: blob }]])));
      const message = `compaction map of ${branch}: ${map.size} old commits remembered\n`;
      const commit = batch.add('commit', serializeCommit({ tree, parents: [], author: who, committer: who, message }));
      await this.db.write(batch, true, true);
      if (await this.refs.compareAndSwap(ref, current, commit)) {
        this.cache.clear();
        this.cache.set(commit, map);
        return;
      }
    }
  }
}
