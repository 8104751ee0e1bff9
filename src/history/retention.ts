import { invalidArgument } from '../errors.js';
import { parseJsonFile } from '../tree/json-file.js';

/**
 * RRD-style retention (issue 7): a policy of tiers by age. Within the first tier every commit is kept as it is;
 * in each later tier one snapshot per `every` interval (the branch state at the end of it); older than the last
 * tier, nothing. This file only decides what to keep; rewriting the history is compaction's job.
 */

/** One tier as written in `.store/retention.json`: `{"within":"1d","every":"1h"}` or `{"within":"1h","keep":"all"}`. */
export type TierSpec = { within: string; every: string } | { within: string; keep: 'all' };

/** A tier with its durations in seconds; `every` null keeps every commit. */
export interface Tier {
  within: number;
  every: number | null;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };

/** `90s`, `15m`, `1h`, `30d`, `2w`, `1y` → seconds. */
export function parseDuration(text: unknown, where: string): number {
  const m = typeof text === 'string' ? /^(\d+)([smhdwy])$/.exec(text.trim()) : null;
  if (!m || Number(m[1]) === 0) {
    throw invalidArgument(`${where}: ${JSON.stringify(text)} is not a duration; use a number and s, m, h, d, w or y`);
  }
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** Where a branch declares its policy: in its own tree, so it is versioned and visible to git. */
export const RETENTION_CONFIG_KEY = '.store/retention.json';

/** The policy in a branch's `.store/retention.json` (null: the file is missing). */
export function retentionFromFile(bytes: Uint8Array | null): Tier[] {
  if (bytes === null) {
    throw invalidArgument(
      `no retention policy: add ${RETENTION_CONFIG_KEY} to the branch, e.g. ` +
        '[{"within":"1h","keep":"all"},{"within":"1d","every":"1h"},{"within":"30d","every":"1d"}], or give one to this call',
    );
  }
  const parsed = parseJsonFile(bytes, RETENTION_CONFIG_KEY, '; fix it first');
  return parseRetention(parsed);
}

/** Checks and converts a policy: tiers by growing `within`, each keeping all or one snapshot per `every`. */
export function parseRetention(spec: unknown): Tier[] {
  if (!Array.isArray(spec) || spec.length === 0) {
    throw invalidArgument('a retention policy is a non-empty array of tiers, e.g. [{"within":"1h","keep":"all"}]');
  }
  const tiers: Tier[] = spec.map((t: unknown, i) => {
    const where = `retention tier ${i + 1}`;
    if (typeof t !== 'object' || t === null) throw invalidArgument(`${where} must be an object`);
    const { within, every, keep, ...rest } = t as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw invalidArgument(`${where}: unknown field ${Object.keys(rest)[0]}`);
    if ((every === undefined) === (keep === undefined)) {
      throw invalidArgument(`${where} needs exactly one of "every" (a duration) or "keep": "all"`);
    }
    if (keep !== undefined && keep !== 'all') throw invalidArgument(`${where}: "keep" can only be "all"`);
    const tier = { within: parseDuration(within, `${where} "within"`), every: null as number | null };
    if (every !== undefined) {
      tier.every = parseDuration(every, `${where} "every"`);
      if (tier.every > tier.within) throw invalidArgument(`${where}: "every" is longer than "within"`);
    }
    return tier;
  });
  for (let i = 1; i < tiers.length; i++) {
    if (tiers[i]!.within <= tiers[i - 1]!.within) {
      throw invalidArgument(`retention tier ${i + 1}: "within" must be longer than the tier before`);
    }
  }
  return tiers;
}

/** A commit as retention sees it: its id and commit time in seconds. */
export interface Dated {
  id: string;
  time: number;
}

/** What a policy keeps of a first-parent history, each list newest first. */
export interface Selection {
  /** Inside the first tier when it keeps everything: kept as they are. */
  recent: Dated[];
  /** Older commits kept as snapshots: the newest of each `every` interval of their tier. */
  snapshots: Dated[];
  /** Everything else. */
  dropped: Dated[];
}

/**
 * Applies `tiers` to `history` (first-parent order, newest first) at time `now` (seconds). Intervals are aligned to
 * the epoch, not to `now`, so a compaction run again later keeps the snapshots it kept before until they age into a
 * coarser tier. A commit dated in the future counts as recent.
 */
export function selectRetained(history: readonly Dated[], tiers: readonly Tier[], now: number): Selection {
  const out: Selection = { recent: [], snapshots: [], dropped: [] };
  const seen = new Set<string>();
  let stillRecent = tiers[0]?.every === null;
  for (const c of history) {
    const age = now - c.time;
    const tier = tiers.findIndex((t) => age <= t.within);
    // Once a commit falls outside the first tier, so does everything before it, even with clock skew.
    if (stillRecent && tier === 0) {
      out.recent.push(c);
      continue;
    }
    stillRecent = false;
    const t = tiers[tier];
    if (!t) {
      out.dropped.push(c);
      continue;
    }
    const bucket = t.every === null ? c.id : `${tier}:${Math.floor(c.time / t.every)}`;
    if (seen.has(bucket)) out.dropped.push(c);
    else {
      seen.add(bucket);
      out.snapshots.push(c);
    }
  }
  return out;
}
