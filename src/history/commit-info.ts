import type { Commit, Signature } from '../objects/commit.js';

/** A person as the store shows them. */
export interface Identity {
  name: string;
  email: string;
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
