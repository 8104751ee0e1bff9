import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';
import { keyOf, perSecond, prefillEntries, valueAt } from './workloads.js';

/**
 * The same workloads through other tools, for ratios: `git fast-import` (git's fastest path, no fsync per commit)
 * and a naive isomorphic-git loop (read the trees, writeBlob, writeTree per level, writeCommit, writeRef). Each
 * repository is prefilled with every key of the workload in one commit, then commit n sets keyOf(n) to `value n`.
 *
 * fast-import timing: TWO invocations on the same repository. The first imports the prefill commit and is timed
 * apart (`prefillMs`); the second imports only the timed commits, its first commit continuing the branch with
 * `from refs/heads/main^0`, and `ms` is that whole second invocation (process start, loading the prefilled tree,
 * writing its pack). Timing the whole and subtracting a prefill-only run would subtract two noisy figures.
 *
 * glibc: on this VM glibc's malloc gives memory back to the kernel after nearly every object fast-import frees
 * (a `brk` per object, ~60 µs each), which on a prefilled W1 repository makes fast-import ~45× slower (about
 * 180 instead of 8,000 commits/s). That is an allocator artifact, not git's speed, so fast-import runs with
 * GLIBC_TUNABLES raising the trim threshold: the faster, stricter reference. `untunedSample` times a few hundred
 * commits without it, to show the difference.
 */

const TUNED_ENV = {
  ...process.env,
  GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864',
};

const COMMITTER = 'Bench <bench@example.org>';

function prefillStream(vms: number): string {
  const message = 'prefill';
  const parts = [
    `commit refs/heads/main\ncommitter ${COMMITTER} 1700000000 +0000\ndata ${message.length}\n${message}\n`,
  ];
  for (const { key, value } of prefillEntries(vms)) {
    parts.push(`M 100644 inline ${key}\ndata ${Buffer.byteLength(value)}\n${value}\n`);
  }
  parts.push('\n');
  return parts.join('');
}

function commitsStream(commits: number, vms: number): string {
  const parts: string[] = [];
  for (let n = 0; n < commits; n++) {
    const key = keyOf(n, vms);
    const value = valueAt(n);
    const message = `set ${key}`;
    parts.push(
      `commit refs/heads/main\ncommitter ${COMMITTER} ${1_700_000_001 + n} +0000\ndata ${message.length}\n${message}\n`,
      n === 0 ? 'from refs/heads/main^0\n' : '',
      `M 100644 inline ${key}\ndata ${Buffer.byteLength(value)}\n${value}\n\n`,
    );
  }
  return parts.join('');
}

/** Runs one fast-import of `stream` into `repo`; its wall time in ms. */
function fastImport(repo: string, stream: string, env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const r = spawnSync('git', ['--git-dir', repo, 'fast-import', '--quiet'], {
    input: stream,
    maxBuffer: 1 << 28,
    env,
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`git fast-import failed (${r.status}): ${r.stderr}`);
  return ms;
}

function countCommits(repo: string): number {
  const r = spawnSync('git', ['--git-dir', repo, 'rev-list', '--count', 'main'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** Prefilled repositories (one per VM count), imported once and copied by each benchmark that needs one. */
const prefills = new Map<number, { root: string; repo: string; ms: number }>();

/** Removes the prefilled repositories; call once the comparisons are done. */
export function disposeGitPrefills(): void {
  for (const { root } of prefills.values()) fs.rmSync(root, { recursive: true, force: true });
  prefills.clear();
}

/**
 * A bare repository at `dir/name` holding the prefill commit on main (imported by fast-import once per VM count,
 * then copied); and the time that import took.
 */
function prefilledRepo(dir: string, name: string, vms: number): { repo: string; ms: number } {
  let prefill = prefills.get(vms);
  if (!prefill) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-prefill-'));
    const repo = path.join(root, 'repo.git');
    try {
      const init = spawnSync('git', ['init', '--bare', '-q', '-b', 'main', repo], { encoding: 'utf8' });
      if (init.status !== 0) throw new Error(`git init failed: ${init.stderr}`);
      prefill = { root, repo, ms: Math.round(fastImport(repo, prefillStream(vms), TUNED_ENV)) };
    } catch (e) {
      fs.rmSync(root, { recursive: true, force: true });
      throw e;
    }
    prefills.set(vms, prefill);
  }
  const repo = path.join(dir, name);
  fs.cpSync(prefill.repo, repo, { recursive: true });
  return { repo, ms: prefill.ms };
}

export function benchFastImport(commits: number, vms: number, untunedSample = 300) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-fi-'));
  try {
    const { repo, ms: prefillMs } = prefilledRepo(dir, 'repo.git', vms);
    const { repo: untunedRepo } = prefilledRepo(dir, 'untuned.git', vms);
    const ms = fastImport(repo, commitsStream(commits, vms), TUNED_ENV);
    if (countCommits(repo) !== commits + 1) throw new Error(`fast-import made ${countCommits(repo)} commits`);
    const sample = Math.min(untunedSample, commits);
    const untunedMs = sample > 0 ? fastImport(untunedRepo, commitsStream(sample, vms), process.env) : 0;
    return {
      commits,
      vms,
      prefillKeys: vms * 7,
      prefillMs,
      ms: Math.round(ms),
      commitsPerSecond: perSecond(commits, ms),
      untunedSample: sample > 0 ? { commits: sample, commitsPerSecond: perSecond(sample, untunedMs) } : null,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The naive loop, on a repository prefilled by fast-import (prefilling 70,000 keys through isomorphic-git's loose
 * objects would take far longer than the timed part; isomorphic-git reads fast-import's pack like any other).
 */
export async function benchNaiveIsomorphicGit(commits: number, vms: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-iso-'));
  try {
    const { repo: gitdir, ms: prefillMs } = prefilledRepo(dir, 'repo.git', vms);
    const cache = {};
    const author = { name: 'Bench', email: 'bench@example.org' };
    let head: string = await git.resolveRef({ fs, gitdir, ref: 'refs/heads/main' });
    const start = process.hrtime.bigint();
    for (let n = 0; n < commits; n++) {
      const key = keyOf(n, vms);
      const segments = key.split('/');
      const blob = await git.writeBlob({ fs, gitdir, blob: Buffer.from(valueAt(n)) });
      // Read every tree along the path, then write them back bottom-up with the one entry changed.
      const trees: { path: string; mode: string; oid: string; type: 'blob' | 'tree' }[][] = [];
      let treeOid: string | null = (await git.readCommit({ fs, gitdir, oid: head, cache })).commit.tree;
      for (let d = 0; d < segments.length; d++) {
        const entries: { path: string; mode: string; oid: string; type: string }[] = treeOid
          ? (await git.readTree({ fs, gitdir, oid: treeOid, cache })).tree
          : [];
        trees.push(entries.map((e) => ({ path: e.path, mode: e.mode, oid: e.oid, type: e.type as 'blob' | 'tree' })));
        const next = entries.find((e) => e.path === segments[d]);
        treeOid = next && next.type === 'tree' ? next.oid : null;
      }
      let oid = blob;
      for (let d = segments.length - 1; d >= 0; d--) {
        const entries = trees[d]!.filter((e) => e.path !== segments[d]);
        const isLeaf = d === segments.length - 1;
        entries.push({ path: segments[d]!, mode: isLeaf ? '100644' : '040000', oid, type: isLeaf ? 'blob' : 'tree' });
        oid = await git.writeTree({ fs, gitdir, tree: entries });
      }
      const when = { timestamp: 1_700_000_001 + n, timezoneOffset: 0 };
      head = await git.writeCommit({
        fs,
        gitdir,
        commit: {
          tree: oid,
          parent: [head],
          author: { ...author, ...when },
          committer: { ...author, ...when },
          message: `set ${key}\n`,
        },
      });
      await git.writeRef({ fs, gitdir, ref: 'refs/heads/main', value: head, force: true });
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    return {
      commits,
      vms,
      prefillKeys: vms * 7,
      prefillMs,
      ms: Math.round(ms),
      commitsPerSecond: perSecond(commits, ms),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
