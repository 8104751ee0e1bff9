import { StoreError } from '../errors.js';
import type { RemoteTarget } from './config.js';
import { type GitRun, gitFailed, runGit } from './git.js';
import type { RefUpdate, TransferOptions } from './types.js';

/** A ref the remote did not take, and git's reason (`non-fast-forward`, `pre-receive hook declined`, …). */
export interface Rejection {
  ref: string;
  reason: string;
}

/** One status line of `git push --porcelain`: `<flag>\t<from>:<to>\t<summary>`. */
const STATUS = /^([ +\-*!=])\t([^\t]*)\t(.*)$/;

/** Rejections that mean the remote has commits we lack: the remedy is to pull (or to force). */
const BEHIND = /\((non-fast-forward|fetch first|stale info)\)/;

export interface PushRequest extends TransferOptions {
  branch: string;
  /** The local branch's head, the commit pushed. */
  head: string;
  force?: boolean;
  /** The command that would bring the remote's commits here, for the message of a non-fast-forward rejection. */
  pullCommand: string;
}

/**
 * Pushes one branch to the same branch of a remote with `git push --porcelain` and answers the refs that moved.
 * PUSH_REJECTED (409) when the remote refused: a non-fast-forward names the pull that fixes it; other rejections
 * (a hook that declined, a checked-out branch) carry git's reason and the remote's messages.
 */
export async function pushRemote(gitDir: string, target: RemoteTarget, request: PushRequest): Promise<RefUpdate[]> {
  const { branch } = request;
  const refspec = `${request.force ? '+' : ''}refs/heads/${branch}:refs/heads/${branch}`;
  const what = `push ${branch} to ${target.label}`;
  // core.abbrev=40: the porcelain summary then names whole commit ids (`<old>..<new>`).
  const run = await runGit(['-c', 'core.abbrev=40', 'push', '--porcelain', '--progress', '--', target.arg, refspec], {
    gitDir,
    what,
    onProgress: request.onProgress,
    timeoutMs: request.timeoutMs,
    token: request.token,
  });
  const updated: RefUpdate[] = [];
  const rejected: Rejection[] = [];
  let statusLines = 0;
  for (const line of run.stdout.split('\n')) {
    const m = STATUS.exec(line);
    if (!m) continue;
    statusLines++;
    const [, flag, refs, summary] = m as unknown as [string, string, string, string];
    const ref = refs.slice(refs.indexOf(':') + 1);
    if (flag === '!') rejected.push({ ref, reason: /\(([^)]*)\)/.exec(summary)?.[1] ?? summary });
    else if (flag !== '=') updated.push(refUpdate(flag, ref, summary, request.head));
  }
  if (rejected.length > 0) throw pushRejected(target, request, rejected, run);
  if (run.code !== 0 || statusLines === 0) throw gitFailed(what, run, { remote: target.label });
  return updated;
}

function refUpdate(flag: string, ref: string, summary: string, head: string): RefUpdate {
  const range = /^([0-9a-f]{40})\.\.\.?([0-9a-f]{40})/.exec(summary);
  if (flag === '*') return { ref, old: null, new: head };
  if (flag === '-') return { ref, old: range?.[1] ?? null, new: null };
  return { ref, old: range?.[1] ?? null, new: range?.[2] ?? head, ...(flag === '+' ? { forced: true } : {}) };
}

function pushRejected(target: RemoteTarget, request: PushRequest, rejected: Rejection[], run: GitRun): StoreError {
  // What the remote said (a hook's reasons): `remote: …` lines, minus git's own progress and empty ones.
  const remote = run.stderr.filter((l) => l.startsWith('remote: ')).map((l) => l.slice(8).trim());
  const data = { remote: target.label, rejected, ...(remote.length > 0 ? { messages: remote } : {}) };
  if (rejected.every((r) => BEHIND.test(`(${r.reason})`))) {
    return new StoreError(
      'PUSH_REJECTED',
      `push to ${target.label} rejected: ${request.branch} has commits you do not have; pull first (${request.pullCommand}), or push --force`,
      data,
    );
  }
  const reasons = rejected.map((r) => `${r.ref.replace(/^refs\/heads\//, '')}: ${r.reason}`).join('; ');
  const said = remote.length > 0 ? ` — the remote said: ${remote.join(' / ').slice(0, 1500)}` : '';
  return new StoreError('PUSH_REJECTED', `push to ${target.label} rejected: ${reasons}${said}`, data);
}
