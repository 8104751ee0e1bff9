import { invalidArgument } from '../errors.js';
import { type Commit, formatZone, type Signature } from '../objects/commit.js';

/** A person as the store shows them, and for a write optionally when (default: the time of writing). */
export interface Identity {
  name: string;
  email: string;
  /** When they authored or committed (git's GIT_AUTHOR_DATE / GIT_COMMITTER_DATE); default: now. */
  date?: Date;
  /** Their time zone, in minutes east of UTC; default: the local zone at `date`. */
  timezoneOffset?: number;
}

/**
 * `Name <email>`, optionally followed by a date in git's raw form `<epoch> <+hhmm>` (a git ident line) → identity;
 * INVALID_ARGUMENT naming `where` (an option, a header) otherwise.
 */
export function parseIdentity(text: string, where: string): Identity {
  const m = /^\s*([^<>]+?)\s*<([^<>]*)>(?:\s+(\d+)\s+([+-])(\d\d)([0-5]\d))?\s*$/.exec(text);
  if (!m) {
    throw invalidArgument(
      `${where} must look like "Name <email>" or "Name <email> <epoch> <+hhmm>", not ${JSON.stringify(text)}`,
    );
  }
  if (m[3] === undefined) return { name: m[1]!, email: m[2]! };
  const minutes = Number(m[5]) * 60 + Number(m[6]);
  return {
    name: m[1]!,
    email: m[2]!,
    date: new Date(Number(m[3]) * 1000),
    timezoneOffset: m[4] === '-' ? -minutes : minutes,
  };
}

/** An identity as a header carries it: `Name <email>`, with ` <epoch> <+hhmm>` when it has a date. */
export function formatIdentity(who: Identity): string {
  if (!who.date) return `${who.name} <${who.email}>`;
  const { timestamp, timezoneOffset } = signatureTime(who, who.date);
  return `${who.name} <${who.email}> ${timestamp} ${formatZone(timezoneOffset)}`;
}

/** The time fields of a commit signature: the identity's own date and zone, else `now` in the local zone. */
export function signatureTime(who: Identity, now: Date): { timestamp: number; timezoneOffset: number } {
  const date = who.date ?? now;
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) throw invalidArgument(`the date of ${who.name} is not a valid time since 1970`);
  const zone = who.timezoneOffset ?? (-date.getTimezoneOffset() || 0);
  // git writes the zone as ±hhmm: more than 99 hours cannot be written, and a fraction of a minute is not a zone.
  if (!Number.isInteger(zone) || Math.abs(zone) >= 100 * 60) {
    throw invalidArgument(`the time zone of ${who.name} must be whole minutes east of UTC, under 100 hours`);
  }
  return { timestamp: Math.floor(ms / 1000), timezoneOffset: zone };
}

/** A commit as the store shows it. */
export interface CommitInfo {
  id: string;
  tree: string;
  parents: string[];
  subject: string;
  message: string;
  author: Identity & { time: string; timezoneOffset: number };
  committer: Identity & { time: string; timezoneOffset: number };
}

const describeSignature = (s: Signature) => ({
  name: s.name,
  email: s.email,
  time: new Date(s.timestamp * 1000).toISOString(),
  timezoneOffset: s.timezoneOffset,
});

/** Renders a commit for callers. */
export function commitInfo(id: string, c: Commit): CommitInfo {
  return {
    id,
    tree: c.tree,
    parents: c.parents,
    subject: c.message.split('\n', 1)[0] ?? '',
    message: c.message,
    author: describeSignature(c.author),
    committer: describeSignature(c.committer),
  };
}
