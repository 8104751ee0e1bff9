import { invalidArgument } from '../errors.js';

/** A moment and the time zone it was written in (minutes east of UTC), as a git signature records them. */
export interface GitDate {
  date: Date;
  timezoneOffset: number;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

// The forms `git commit` documents under DATE FORMATS (GIT_AUTHOR_DATE, GIT_COMMITTER_DATE):
// git's internal form `<epoch> <+hhmm>` (also `@<epoch>`), RFC 2822 and ISO 8601 (a space may stand for the T).
// Like git, a bare number is seconds since 1970 only from 9 digits on (`20050407` is not 1970-08-21); `@` forces it.
const RAW = /^(?:@(\d+)|(\d{9,}))(?:\s+([+-]\d{4}))?$/;
const RFC2822 =
  /^(?:[a-z]{3},\s*)?(\d{1,2})\s+([a-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s+([+-]\d{4}|gmt|ut|utc|z))?$/i;
const ISO8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[t ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?\s*(z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** The local zone at `date`, minutes east of UTC (`|| 0`: UTC is 0, not JavaScript's -0). */
const localZone = (date: Date): number => -date.getTimezoneOffset() || 0;

/** `+0100`, `-05:30`, `+02`, `Z`, `GMT` → minutes east of UTC; null when the text gives no zone. */
function zoneMinutes(zone: string | undefined): number | null {
  if (zone === undefined) return null;
  if (/^(z|gmt|ut|utc)$/i.test(zone)) return 0;
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
  if (!m || Number(m[3] ?? 0) > 59) return Number.NaN;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0);
  return m[1] === '-' ? -minutes : minutes;
}

/** A calendar time in a zone (or, without one, in the local zone as git does) → the moment and its zone. */
function calendar(fields: number[], zone: number | null): GitDate | null {
  const [year, month, day, hour, minute, second] = fields as [number, number, number, number, number, number];
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(utc);
  // Date.UTC rolls 31 Feb over to March: a date that does not round-trip does not exist.
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 60) {
    return null;
  }
  if (zone === null) {
    const local = new Date(year, month - 1, day, hour, minute, second);
    return { date: local, timezoneOffset: localZone(local) };
  }
  return Number.isNaN(zone) ? null : { date: new Date(utc - zone * 60_000), timezoneOffset: zone };
}

function parse(text: string): GitDate | null {
  const raw = RAW.exec(text);
  if (raw) {
    const date = new Date(Number(raw[1] ?? raw[2]) * 1000);
    const zone = raw[3] === undefined ? localZone(date) : zoneMinutes(raw[3])!;
    return Number.isNaN(zone) ? null : { date, timezoneOffset: zone };
  }
  const rfc = RFC2822.exec(text);
  if (rfc) {
    const month = MONTHS.indexOf(rfc[2]!.toLowerCase()) + 1;
    if (month === 0) return null;
    const fields = [Number(rfc[3]), month, Number(rfc[1]), Number(rfc[4]), Number(rfc[5]), Number(rfc[6] ?? 0)];
    return calendar(fields, zoneMinutes(rfc[7]));
  }
  const iso = ISO8601.exec(text);
  if (iso) {
    const fields = [1, 2, 3, 4, 5, 6].map((i) => Number(iso[i] ?? 0));
    return calendar(fields, zoneMinutes(iso[7]));
  }
  return null;
}

/**
 * Parses a date in one of git's formats — `<epoch> <+hhmm>` or `@<epoch>`, RFC 2822 (`Thu, 07 Apr 2005 22:13:13
 * +0200`), ISO 8601 (`2005-04-07T22:13:13+02:00`, or with a space for the T). A date without a zone is in the local
 * zone, as git reads it. INVALID_ARGUMENT naming `where` (an environment variable) for anything else.
 */
export function parseGitDate(text: string, where: string): GitDate {
  const parsed = parse(text.trim());
  if (!parsed || Number.isNaN(parsed.date.getTime()) || parsed.date.getTime() < 0) {
    throw invalidArgument(
      `${where}: cannot read ${JSON.stringify(text)} as a date; use "<epoch> <+hhmm>", RFC 2822 ` +
        '("Thu, 07 Apr 2005 22:13:13 +0200") or ISO 8601 ("2005-04-07T22:13:13+02:00")',
      { value: text },
    );
  }
  return parsed;
}
