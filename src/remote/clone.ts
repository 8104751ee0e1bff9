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
  const config = await runGit(['config', 'remote.origin.fetch', '+refs/heads/*:refs/remotes/origin/*'], {
    gitDir: dir,
    what: `set up remote origin in ${dir}`,
  });
  if (config.code !== 0) throw gitFailed(`set up remote origin in ${dir}`, config);
}
