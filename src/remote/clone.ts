import { StoreError } from '../errors.js';
import { checkRemoteUrl, displayUrl } from './config.js';
import { gitFailed, runGit } from './git.js';
import type { TransferOptions } from './types.js';

/**
 * Clones `url` into a new bare repository at `dir` (`git clone --bare`), and gives its `origin` the fetch refspec
 * `git remote add` would (a bare clone has none), so `store fetch` fills `refs/remotes/origin/*`. REPOSITORY_EXISTS
 * when `dir` exists and is not empty.
 */
export async function cloneRepository(url: string, dir: string, options: TransferOptions = {}): Promise<void> {
  checkRemoteUrl(url);
  if (typeof dir !== 'string' || dir === '') throw new StoreError('INVALID_ARGUMENT', 'clone needs a directory');
  const what = `clone ${displayUrl(url)}`;
  const run = await runGit(['clone', '--bare', '--progress', '--', url, dir], { what, ...options });
  if (run.code !== 0) {
    if (run.stderr.some((l) => /already exists and is not an empty directory/.test(l))) {
      throw new StoreError(
        'REPOSITORY_EXISTS',
        `${dir} exists and is not empty; clone into a new directory (or remove it first)`,
        { repository: dir },
      );
    }
    throw gitFailed(what, run, { remote: displayUrl(url) });
  }
  const setUp = `set up the clone in ${dir}`;
  const git = async (args: string[]) => {
    const r = await runGit(args, { gitDir: dir, what: setUp });
    if (r.code !== 0) throw gitFailed(setUp, r);
    return r.stdout.trim();
  };
  await git(['config', 'remote.origin.fetch', '+refs/heads/*:refs/remotes/origin/*']);
  // A remote whose HEAD names a branch it does not have (a `git init --bare` on `master` that was pushed `main`)
  // clones with HEAD on that missing branch, which would make it the store's default. Take `main`, else the first
  // branch there is.
  const branches = (await git(['for-each-ref', '--format=%(refname)', 'refs/heads/'])).split('\n').filter(Boolean);
  const head = await git(['symbolic-ref', 'HEAD']);
  if (branches.length > 0 && !branches.includes(head)) {
    await git(['symbolic-ref', 'HEAD', branches.includes('refs/heads/main') ? 'refs/heads/main' : branches[0]!]);
  }
}
