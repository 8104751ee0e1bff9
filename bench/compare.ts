import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import git from 'isomorphic-git';

/**
 * The same single-key-per-commit workload through other tools, for ratios: `git fast-import` (git's fastest path,
 * no fsync per commit) and a naive isomorphic-git loop (read the trees, writeBlob, writeTree per level, writeCommit,
 * writeRef). Keys as W1: local/domain/<vm>/cfg/k<i>, `vms` VMs × 7 keys.
 */

const keyOf = (n: number, vms: number) => `local/domain/${n % vms}/cfg/k${n % 7}`;

export function benchFastImport(commits: number, vms: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-fi-'));
  const repo = path.join(dir, 'repo.git');
  spawnSync('git', ['init', '--bare', '-q', repo]);
  const parts: string[] = [];
  for (let n = 0; n < commits; n++) {
    const value = `value ${n}`;
    const message = `set ${keyOf(n, vms)}`;
    parts.push(
      `commit refs/heads/main\ncommitter Bench <bench@example.org> ${1_700_000_000 + n} +0000\ndata ${message.length}\n${message}\n`,
      `M 100644 inline ${keyOf(n, vms)}\ndata ${Buffer.byteLength(value)}\n${value}\n\n`,
    );
  }
  const stream = parts.join('');
  const start = process.hrtime.bigint();
  const r = spawnSync('git', ['--git-dir', repo, 'fast-import', '--quiet'], { input: stream, maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`git fast-import failed: ${r.stderr}`);
  fs.rmSync(dir, { recursive: true, force: true });
  return { commits, vms, ms: Math.round(ms), commitsPerSecond: Math.round((commits / ms) * 1000) };
}

export async function benchNaiveIsomorphicGit(commits: number, vms: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-iso-'));
  const gitdir = path.join(dir, 'repo.git');
  await git.init({ fs, dir: gitdir, gitdir, bare: true, defaultBranch: 'main' });
  const cache = {};
  const author = { name: 'Bench', email: 'bench@example.org' };
  let head: string | null = null;
  const start = process.hrtime.bigint();
  for (let n = 0; n < commits; n++) {
    const segments = keyOf(n, vms).split('/');
    const blob = await git.writeBlob({ fs, gitdir, blob: Buffer.from(`value ${n}`) });
    // Read every tree along the path, then write them back bottom-up with the one entry changed.
    const trees: { path: string; mode: string; oid: string; type: 'blob' | 'tree' }[][] = [];
    let treeOid: string | null = head ? (await git.readCommit({ fs, gitdir, oid: head, cache })).commit.tree : null;
    for (let d = 0; d < segments.length; d++) {
      const entries = treeOid ? (await git.readTree({ fs, gitdir, oid: treeOid, cache })).tree : [];
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
    head = await git.writeCommit({
      fs,
      gitdir,
      commit: {
        tree: oid,
        parent: head ? [head] : [],
        author: { ...author, timestamp: 1_700_000_000 + n, timezoneOffset: 0 },
        committer: { ...author, timestamp: 1_700_000_000 + n, timezoneOffset: 0 },
        message: `set ${keyOf(n, vms)}\n`,
      },
    });
    await git.writeRef({ fs, gitdir, ref: 'refs/heads/main', value: head, force: true });
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  fs.rmSync(dir, { recursive: true, force: true });
  return { commits, vms, ms: Math.round(ms), commitsPerSecond: Math.round((commits / ms) * 1000) };
}
