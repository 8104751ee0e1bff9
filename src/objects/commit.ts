import { fromUtf8, utf8 } from './object.js';

/** A person with the time they acted, as git records it. */
export interface Signature {
  name: string;
  email: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** Minutes east of UTC (e.g. +60 for CET), as git's `+0100`. */
  timezoneOffset: number;
}

/** A parsed commit. */
export interface Commit {
  tree: string;
  parents: string[];
  author: Signature;
  committer: Signature;
  message: string;
}

/** Minutes east of UTC as git writes a zone: `+0100`, `-0530`. */
export function formatZone(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
}

function formatSignature(s: Signature): string {
  return `${s.name} <${s.email}> ${s.timestamp} ${formatZone(s.timezoneOffset)}`;
}

function parseSignature(line: string): Signature {
  const m = /^(.*) <(.*)> (-?\d+) ([+-])(\d\d)(\d\d)$/.exec(line);
  if (!m) return { name: line, email: '', timestamp: 0, timezoneOffset: 0 };
  const minutes = Number(m[5]) * 60 + Number(m[6]);
  return { name: m[1]!, email: m[2]!, timestamp: Number(m[3]), timezoneOffset: m[4] === '-' ? -minutes : minutes };
}

/** Serialises a commit body exactly as git writes one. */
export function serializeCommit(c: Commit): Uint8Array {
  let text = `tree ${c.tree}\n`;
  for (const p of c.parents) text += `parent ${p}\n`;
  text += `author ${formatSignature(c.author)}\ncommitter ${formatSignature(c.committer)}\n\n${c.message}`;
  return utf8.encode(text);
}

/** Parses a commit body (unknown headers such as gpgsig are skipped). */
export function parseCommit(body: Uint8Array): Commit {
  const text = fromUtf8.decode(body);
  const split = text.indexOf('\n\n');
  const header = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  const commit: Commit = { tree: '', parents: [], author: parseSignature(''), committer: parseSignature(''), message };
  for (const line of header.split('\n')) {
    if (line.startsWith(' ')) continue; // continuation of a multi-line header (gpgsig)
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    const value = line.slice(space + 1);
    if (key === 'tree') commit.tree = value;
    else if (key === 'parent') commit.parents.push(value);
    else if (key === 'author') commit.author = parseSignature(value);
    else if (key === 'committer') commit.committer = parseSignature(value);
  }
  return commit;
}
