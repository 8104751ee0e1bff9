import { StoreError } from '../errors.js';
import type { ObjectDb } from '../objects/db.js';
import { fromUtf8 } from '../objects/object.js';

/**
 * `rev~N` on long histories (issue 13). Resolving it walks N first parents, and `main~99999999` on a
 * 100,000-commit branch walked the whole history, parsing and caching every commit, only to say it went too far:
 * seconds of CPU per request, hundreds of MB when twenty came at once, other requests stalled meanwhile. Here:
 * - a step reads only the commit's first `parent` line, and keeps nothing of the commit (the commit cache is left
 *   to the reads that need whole commits);
 * - long walks are shared: one per starting commit, whatever N each caller asked for, remembering every STRIDE-th
 *   commit on the way, so a later `~N` from the same start walks fewer than STRIDE steps;
 * - once a walk met the root, the length of that chain is remembered (for its start and every commit remembered on
 *   the way, and a later walk stops when it meets one), so "history has only N commits" is answered at once;
 * - the walk lets other work run every YIELD_EVERY steps.
 * What is remembered is keyed by commit id, and a commit's parents never change, so it stays true whatever the refs do.
 */

/** Every STRIDE-th commit of a shared walk is remembered. */
const STRIDE = 256;
/** Walks of at most this many steps are not shared (nor remembered): they cost less than the bookkeeping. */
const SHORT = STRIDE;
const YIELD_EVERY = 512;
/** Bounds on what one object database remembers: chain lengths and shared walks. */
const MAX_LENGTHS = 100_000;
const MAX_WALKS = 64;

const PARENT = [0x70, 0x61, 0x72, 0x65, 0x6e, 0x74, 0x20]; // "parent "

/** A commit's first parent (null for a root), read from its raw bytes without parsing the rest. */
async function firstParent(db: ObjectDb, oid: string): Promise<string | null> {
  const object = await db.read(oid);
  if (object.type !== 'commit') {
    throw new StoreError('CORRUPT', `object ${oid} is a ${object.type}, expected a commit`, { oid });
  }
  // git writes the parents right after the tree line.
  const body = object.body;
  const at = body.indexOf(0x0a) + 1;
  for (let i = 0; i < PARENT.length; i++) if (body[at + i] !== PARENT[i]) return null;
  return fromUtf8.decode(body.subarray(at + PARENT.length, at + PARENT.length + 40));
}

const yieldToOthers = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One shared first-parent walk from `start`: how far it got, every STRIDE-th commit, the chain's length if known. */
class Walk {
  /** marks[i]: the commit i × STRIDE first parents back from the start. */
  readonly marks: string[];
  private tip: string;
  private reached = 0;
  /** Commits on the chain, the start included, once known. */
  length: number | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly memory: Ancestry,
    readonly start: string,
  ) {
    this.marks = [start];
    this.tip = start;
  }

  /** Whether the walk can say what is N first parents back: it got that far, or knows the chain is shorter. */
  private settled(n: number): boolean {
    return this.reached >= n || (this.length !== null && n >= this.length);
  }

  /** Goes at least `n` first parents back, or to the end; callers asking at once share one walk. */
  async reach(n: number): Promise<void> {
    while (!this.settled(n)) {
      this.running ??= this.extend(n).finally(() => {
        this.running = null;
      });
      await this.running;
    }
  }

  private async extend(n: number): Promise<void> {
    while (!this.settled(n)) {
      const known = this.memory.lengthOf(this.tip);
      if (known !== undefined && this.length === null) {
        this.learned(this.reached + known);
        continue;
      }
      const parent = await firstParent(this.memory.db, this.tip);
      if (parent === null) {
        this.learned(this.reached + 1);
        return;
      }
      this.tip = parent;
      this.reached++;
      if (this.reached % STRIDE === 0) this.marks.push(parent);
      if (this.reached % YIELD_EVERY === 0) await yieldToOthers();
    }
  }

  private learned(length: number): void {
    this.length = length;
    for (let i = 0; i < this.marks.length; i++) this.memory.remember(this.marks[i]!, length - i * STRIDE);
  }
}

/** What one object database remembers of its first-parent chains. */
class Ancestry {
  private readonly lengths = new Map<string, number>();
  private readonly walks = new Map<string, Walk>();

  constructor(readonly db: ObjectDb) {}

  lengthOf(commit: string): number | undefined {
    return this.lengths.get(commit);
  }

  remember(commit: string, length: number): void {
    if (this.lengths.size >= MAX_LENGTHS) this.lengths.clear();
    this.lengths.set(commit, length);
  }

  walk(start: string): Walk {
    let walk = this.walks.get(start);
    if (walk) {
      // Most recently used last, so the oldest is the first one dropped.
      this.walks.delete(start);
    } else {
      walk = new Walk(this, start);
      if (this.walks.size >= MAX_WALKS) this.walks.delete(this.walks.keys().next().value!);
    }
    this.walks.set(start, walk);
    return walk;
  }

  /** `start`~`n`, or how many commits the chain from `start` has when it has no more than `n`. */
  async ancestor(start: string, n: number): Promise<{ commit: string } | { length: number }> {
    const known = this.lengths.get(start);
    if (known !== undefined && n >= known) return { length: known };
    let from = start;
    let steps = n;
    if (n > SHORT) {
      const walk = this.walk(start);
      await walk.reach(n);
      if (walk.length !== null && n >= walk.length) return { length: walk.length };
      const i = Math.floor(n / STRIDE);
      from = walk.marks[i]!;
      steps = n - i * STRIDE;
    }
    let oid = from;
    for (let i = 0; i < steps; i++) {
      const parent = await firstParent(this.db, oid);
      if (parent === null) {
        // Only a short walk from `start` itself gets here: a shared one knew the length before.
        this.remember(start, i + 1);
        return { length: i + 1 };
      }
      oid = parent;
    }
    return { commit: oid };
  }
}

const byDb = new WeakMap<ObjectDb, Ancestry>();

/**
 * The commit `n` first parents back from `start` (git's `start~n`) or, when the chain is too short for that, how many
 * commits it has (`start` included).
 */
export function firstParentAncestor(
  db: ObjectDb,
  start: string,
  n: number,
): Promise<{ commit: string } | { length: number }> {
  let ancestry = byDb.get(db);
  if (!ancestry) {
    ancestry = new Ancestry(db);
    byDb.set(db, ancestry);
  }
  return ancestry.ancestor(start, n);
}
