import { spawn } from 'node:child_process';
import type { NewCommit, PathChange, Person, PushedObjects } from './receive-check.js';

/**
 * The objects of a push as git's pre-receive hook sees them: still in git's quarantine directory, which git names to
 * the hook in its environment (GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES). The store's own object
 * database does not know that directory, so they are read through git plumbing, run with the environment the hook
 * inherited and in its working directory (the repository). A few processes per push, whatever its length:
 * `rev-list` for the new commits, one `diff-tree --stdin` for all their changes, one `cat-file --batch`.
 */

/** Runs git with an argument list (never a shell); resolves with its stdout, rejects with its stderr. */
function runGit(
  args: string[],
  input?: string,
  onStdout?: (chunk: Buffer) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => (onStdout ? onStdout(chunk) : out.push(chunk)));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    // git exiting before it read all its input is reported by its status, not by a write error here.
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else {
        const why = Buffer.concat(err).toString('utf8').trim();
        reject(new Error(`git ${args[0]} failed (exit ${code}): ${why}`));
      }
    });
    child.stdin.end(input ?? '');
  });
}

const OID = /^[0-9a-f]{40}$/;

/** Splits git's NUL-separated output as it streams in, handing each complete field to `onField`. */
function nulFields(onField: (field: Buffer) => void): { push(chunk: Buffer): void; end(): void } {
  let rest: Buffer = Buffer.alloc(0);
  return {
    push(chunk) {
      let data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      for (let nul = data.indexOf(0); nul >= 0; nul = data.indexOf(0)) {
        onField(data.subarray(0, nul));
        data = data.subarray(nul + 1);
      }
      rest = Buffer.from(data);
    },
    end() {
      if (rest.length > 0) onField(rest);
    },
  };
}

/**
 * `diff-tree --stdin`'s input: one line per commit, `<commit> <first parent>` (or the commit alone: --root diffs it
 * against nothing). With a parent named, diff-tree compares against it: a merge counts for what it brings to its
 * first parent.
 */
const firstParentLines = (commits: NewCommit[]) =>
  commits.map((c) => (c.parent ? `${c.commit} ${c.parent}\n` : `${c.commit}\n`)).join('');

export class QuarantinedObjects implements PushedObjects {
  async defaultBranch(): Promise<string | null> {
    const ref = await runGit(['symbolic-ref', '-q', 'HEAD']).catch(() => null);
    const m = ref && /^refs\/heads\/(.+)$/.exec(ref.toString('utf8').trim());
    return m ? m[1]! : null;
  }

  async leadsToCommit(oid: string): Promise<boolean> {
    return runGit(['cat-file', '-e', `${oid}^{commit}`]).then(
      () => true,
      () => false,
    );
  }

  async branchHeads(): Promise<{ name: string; head: string }[]> {
    const out = await runGit(['for-each-ref', '--format=%(refname:strip=2) %(objectname)', 'refs/heads/']);
    return out
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const at = line.lastIndexOf(' ');
        return { name: line.slice(0, at), head: line.slice(at + 1) };
      });
  }

  async borrowed(tips: string[], known: string[]): Promise<string[]> {
    const listed = await runGit(
      ['rev-list', '--objects', '--stdin'],
      [...tips, ...known.map((k) => `^${k}`)].join('\n'),
    );
    const oids = listed
      .toString('utf8')
      .split('\n')
      .map((line) => line.slice(0, 40))
      .filter((oid) => OID.test(oid));
    if (oids.length === 0) return [];
    // Without the alternates, git sees the quarantine alone: what this push brought.
    const env = { ...process.env };
    delete env.GIT_ALTERNATE_OBJECT_DIRECTORIES;
    const checked = await runGit(['cat-file', '--batch-check'], `${oids.join('\n')}\n`, undefined, env);
    return checked
      .toString('utf8')
      .split('\n')
      .filter((line) => line.endsWith(' missing'))
      .map((line) => line.slice(0, 40));
  }

  async identities(commits: string[]): Promise<Map<string, { author: Person; committer: Person }>> {
    const out = await runGit(
      ['log', '--no-walk=unsorted', '--stdin', '--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00'],
      commits.map((c) => `${c}\n`).join(''),
    );
    const fields = out.toString('utf8').split('\0');
    const found = new Map<string, { author: Person; committer: Person }>();
    for (let i = 0; i + 4 < fields.length; i += 5) {
      const [commit, an, ae, cn, ce] = fields.slice(i, i + 5).map((f) => f.replace(/^\n/, ''));
      found.set(commit!, { author: { name: an!, email: ae! }, committer: { name: cn!, email: ce! } });
    }
    return found;
  }

  async newCommits(tips: string[]): Promise<NewCommit[]> {
    // `--all` is every ref as it is before this push: the commits it reaches were checked when they came in.
    return this.commitsOf([...tips, '--not', '--all']);
  }

  /** The commits `rev-list` lists for `revs`, each with its first parent. */
  private async commitsOf(revs: string[]): Promise<NewCommit[]> {
    const out = await runGit(['rev-list', '--parents', ...revs]);
    return out
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [commit, parent] = line.split(' ');
        return { commit: commit!, parent: parent ?? null };
      });
  }

  async changes(commits: NewCommit[], onChange: (change: PathChange) => void): Promise<void> {
    if (commits.length === 0) return;
    const input = firstParentLines(commits);
    let commit = '';
    let header: string | null = null;
    const fields = nulFields((field) => {
      if (header !== null) {
        // `:<old mode> <new mode> <old oid> <new oid> <status>`, then the path.
        const [, mode, , oid, status] = header.split(' ');
        header = null;
        if (status !== 'D') onChange({ commit, path: new Uint8Array(field), mode: mode!, oid: oid! });
        return;
      }
      const text = field.toString('latin1');
      if (text.startsWith(':')) header = text;
      else if (OID.test(text.trim())) commit = text.trim();
    });
    await runGit(['diff-tree', '--stdin', '-r', '-z', '--root', '--no-renames', '--raw'], input, (chunk) =>
      fields.push(chunk),
    );
    fields.end();
  }

  async changedKeys(old: string, next: string): Promise<string[]> {
    const keys = new Set<string>();
    const collect = nulFields((field) => {
      if (field.length > 0) keys.add(field.toString('utf8'));
    });
    await runGit(['diff-tree', '-r', '-z', '--name-only', '--no-renames', old, next], undefined, (c) =>
      collect.push(c),
    );
    const commits = await this.commitsOf([next, '--not', old]);
    // --no-commit-id: only paths come out (a path may look like a commit id).
    await runGit(
      ['diff-tree', '--stdin', '-r', '-z', '--name-only', '--no-commit-id', '--root', '--no-renames'],
      firstParentLines(commits),
      (c) => collect.push(c),
    );
    collect.end();
    return [...keys];
  }

  async treeValues(commit: string, paths: string[] = []): Promise<[string, string][]> {
    const values: [string, string][] = [];
    // `<mode> <type> <oid>\t<path>`: blobs only (a submodule's commit is no value).
    const entries = nulFields((field) => {
      const text = field.toString('utf8');
      const tab = text.indexOf('\t');
      const [, type, oid] = text.slice(0, tab).split(' ');
      if (type === 'blob') values.push([text.slice(tab + 1), oid!]);
    });
    await runGit(['ls-tree', '-r', '-z', '--full-tree', commit, '--', ...paths], undefined, (c) => entries.push(c));
    entries.end();
    return values;
  }

  async changedValues(old: string | null, next: string): Promise<[string, string][]> {
    if (old === null) return this.treeValues(next);
    const values: [string, string][] = [];
    let header: string | null = null;
    const fields = nulFields((field) => {
      if (header === null) {
        header = field.toString('latin1');
        return;
      }
      // `:<old mode> <new mode> <old oid> <new oid> <status>`, then the path.
      const [, mode, , oid, status] = header.split(' ');
      header = null;
      if (status !== 'D' && mode !== '160000') values.push([field.toString('utf8'), oid!]);
    });
    await runGit(['diff-tree', '-r', '-z', '--no-renames', '--raw', old, next], undefined, (c) => fields.push(c));
    fields.end();
    return values;
  }

  async blobs(oids: string[]): Promise<Map<string, Uint8Array>> {
    const out = await runGit(['cat-file', '--batch'], oids.map((oid) => `${oid}\n`).join(''));
    const found = new Map<string, Uint8Array>();
    let at = 0;
    while (at < out.length) {
      const nl = out.indexOf(0x0a, at);
      const [oid, type, size] = out.subarray(at, nl).toString('latin1').split(' ');
      at = nl + 1;
      if (type === 'missing' || size === undefined) continue;
      const length = Number(size);
      if (type === 'blob') found.set(oid!, new Uint8Array(out.subarray(at, at + length)));
      at += length + 1;
    }
    return found;
  }
}
