import fs from 'node:fs';
import path from 'node:path';
import { openStore, type Store } from '../src/index.js';
import { git, runProcess, tempDir } from './helpers.js';

/**
 * A remote the remote tests run against: an empty repository reachable at a URL (a path, `git http-backend`,
 * `store serve`'s `/git`), HEAD on `main`.
 */
export interface RemoteFixture {
  url: string;
  close(): Promise<void>;
}

/** An empty bare repository at a path, HEAD on main. */
export function bareRepository(dir = path.join(tempDir(), 'remote.git')): string {
  git(['init', '--quiet', '--bare', '--initial-branch=main', dir]);
  return dir;
}

/** A store on disk in a temporary directory. */
export async function peerStore(name = 'store.git'): Promise<Store> {
  return openStore({ fs, dir: path.join(tempDir(), name), create: true });
}

/**
 * Plain git, without blocking the event loop: a git server in this process (test/git-http-backend.ts) must keep
 * answering while it runs. Rejects with git's stderr when it fails.
 */
export async function gitAsync(args: string[]): Promise<string> {
  const r = await runProcess('git', args);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** The branches a remote has and their heads, as plain git sees them (`git ls-remote`). */
export async function lsRemote(url: string): Promise<Record<string, string>> {
  const heads: Record<string, string> = {};
  for (const line of (await gitAsync(['ls-remote', '--heads', url])).trim().split('\n').filter(Boolean)) {
    const [oid, ref] = line.split('\t');
    heads[ref!] = oid!;
  }
  return heads;
}
