import { StoreError } from '../errors.js';
import type { Refs } from '../storage/refs.js';
import type { RemoteTarget } from './config.js';
import { gitFailed, runGit } from './git.js';
import type { RefUpdate, TransferOptions } from './types.js';

/** Whether commit `a` is in commit `b`'s history: to tell a fast-forward from a forced update. */
export type IsAncestor = (a: string, b: string) => Promise<boolean>;

/**
 * Fetches a remote's branches (or one branch) into `refs/remotes/<tracking>/*` with `git fetch`, and answers the
 * refs that moved. Deleted branches are pruned from the tracking refs; tags are not fetched. Which refs moved is
 * read from the refs before and after (git 2.39 has no `fetch --porcelain`); a ref another process moved meanwhile
 * is reported as if this fetch had.
 */
export async function fetchRemote(
  gitDir: string,
  refs: Refs,
  target: RemoteTarget,
  isAncestor: IsAncestor,
  options: TransferOptions & { branch?: string } = {},
): Promise<RefUpdate[]> {
  const prefix = `refs/remotes/${target.tracking}/`;
  const { branch } = options;
  const refspec = branch === undefined ? `+refs/heads/*:${prefix}*` : `+refs/heads/${branch}:${prefix}${branch}`;
  const snapshot = async () =>
    branch === undefined
      ? refs.list(prefix)
      : new Map([[`${prefix}${branch}`, (await refs.read(`${prefix}${branch}`)) ?? '']]);
  const before = await snapshot();
  const what = `fetch from ${target.label}`;
  const run = await runGit(
    [
      // What arrives is kept as a pack (never thousands of loose objects: the store reads and consolidates packs),
      // and git does not start its own gc in a repository whose maintenance is the store's.
      '-c',
      'fetch.unpackLimit=1',
      '-c',
      'gc.auto=0',
      '-c',
      'maintenance.auto=false',
      'fetch',
      '--progress',
      '--no-tags',
      '--no-write-fetch-head',
      ...(branch === undefined ? ['--prune'] : []),
      '--',
      target.arg,
      refspec,
    ],
    { gitDir, what, onProgress: options.onProgress, timeoutMs: options.timeoutMs, token: options.token },
  );
  if (run.code !== 0) {
    if (branch !== undefined && run.stderr.some((l) => /couldn't find remote ref/.test(l))) {
      throw new StoreError(
        'NOT_FOUND',
        `branch ${branch} not found on ${target.label} — \`store fetch ${target.label}\` then lists its branches in refs/remotes/${target.tracking}/`,
        { kind: 'branch', name: branch, remote: target.label },
      );
    }
    throw gitFailed(what, run, { remote: target.label });
  }
  const after = await snapshot();
  const updated: RefUpdate[] = [];
  for (const ref of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const old = before.get(ref) || null;
    const now = after.get(ref) || null;
    if (old === now) continue;
    const update: RefUpdate = { ref, old, new: now };
    if (old !== null && now !== null && !(await isAncestor(old, now))) update.forced = true;
    updated.push(update);
  }
  return updated;
}
