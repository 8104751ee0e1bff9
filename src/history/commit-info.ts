import { invalidArgument } from '../errors.js';
import type { Commit, Signature } from '../objects/commit.js';

/** A person as the store shows them. */
export interface Identity {
  name: string;
  email: string;
}

/** `Name <email>` → identity; INVALID_ARGUMENT naming `where` (an option, a header) otherwise. */
export function parseIdentity(text: string, where: string): Identity {
  const m = /^\s*([^<>]+?)\s*<([^<>]*)>\s*$/.exec(text);
  if (!m) throw invalidArgument(`${where} must look like "Name <email>", not ${JSON.stringify(text)}`);
  return { name: m[1]!, email: m[2]! };
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
