import type { FastifyRequest } from 'fastify';
import type { Store } from '../../src/index.js';

/**
 * What a caller with a limited token may do over git (docs/ARCHITECTURE.md, "Access"). git's protocol moves whole
 * commits, and a commit's tree holds every key of its branch: so a branch is served over git only to a caller who
 * may read all of it, and the others are hidden (git's `uploadpack.hideRefs`). A push is checked key by key in the
 * pre-receive hook (src/remote/push-access.ts), which gets the caller's grants from this process.
 */
export interface GitRestriction {
  /** git configuration for this request only (the hidden refs). */
  config: [string, string][];
  /**
   * Whether the request must use protocol v0: in protocol v2 upload-pack serves a `want` of any object, advertised
   * or not (measured with git 2.39), so hidden branches would stay fetchable by commit id. v0 over HTTP takes only
   * objects reachable from what it advertised.
   */
  v0: boolean;
  /** The caller's grants (Grants.toJSON), for the push hook. */
  grants: string;
  /** The token's identity, `{name, email}` as JSON: the commits it pushes must be its own unless it may impersonate. */
  author: string;
}

/** What the caller may see and push over git; null for one who may do everything (or when auth is off). */
export async function gitRestriction(request: FastifyRequest, store: Store): Promise<GitRestriction | null> {
  const { enabled, grants, principal } = request.access;
  if (!enabled || grants.isAdmin()) return null;
  const config: [string, string][] = [];
  const branches = await store.branches();
  const readable = new Set(branches.filter((b) => grants.canAll('read', b.name, '')).map((b) => b.name));
  // Everything hidden, then the readable branches shown again (a later `!` entry wins in git); for every caller who is
  // not admin, even one who may read every branch. Tags, transactions (refs/store/) and remote-tracking refs may hold
  // any key of any branch, and are none of its branches.
  config.push(['uploadpack.hideRefs', 'refs/']);
  for (const name of readable) config.push(['uploadpack.hideRefs', `!refs/heads/${name}`]);
  if (!readable.has(store.defaultBranch)) config.push(['uploadpack.hideRefs', 'HEAD']);
  // Pushes see the same branches; a hidden one cannot be pushed to (git refuses), a new one is for the hook.
  for (const b of branches) if (!readable.has(b.name)) config.push(['receive.hideRefs', `refs/heads/${b.name}`]);
  for (const prefix of ['refs/store/', 'refs/remotes/', 'refs/tags/']) config.push(['receive.hideRefs', prefix]);
  return {
    config,
    // Protocol v2 would serve such a caller any object by id, hidden or compacted away (see above).
    v0: true,
    grants: JSON.stringify(grants),
    author: JSON.stringify(principal?.author ?? { name: '', email: '' }),
  };
}
