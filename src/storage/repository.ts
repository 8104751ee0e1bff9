import { StoreError } from '../errors.js';
import { utf8 } from '../objects/object.js';
import type { Files } from './fs.js';

/** Whether `dir` looks like a bare git repository (git's own test: HEAD, objects/ and refs/). */
export async function isRepository(files: Files, dir: string): Promise<boolean> {
  const [head, objects, refs] = await Promise.all([
    files.stat(`${dir}/HEAD`),
    files.stat(`${dir}/objects`),
    files.stat(`${dir}/refs`),
  ]);
  return head !== null && objects?.isDirectory() === true && refs?.isDirectory() === true;
}

/** Creates the bare repository `git init --bare` would, with HEAD on `branch`. */
export async function initRepository(files: Files, dir: string, branch: string): Promise<void> {
  if (await isRepository(files, dir)) {
    throw new StoreError('REPOSITORY_EXISTS', `a store already exists at ${dir}`, { repository: dir });
  }
  for (const sub of ['objects/pack', 'objects/info', 'refs/heads', 'refs/tags', 'info']) {
    await files.mkdirp(`${dir}/${sub}`);
  }
  const config = '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n';
  await files.writeNew(`${dir}/config`, [utf8.encode(config)], false);
  await files.writeNew(`${dir}/description`, [utf8.encode('A gitstore configuration store.\n')], false);
  // HEAD last: until it exists the directory is not a repository, so a crash here leaves nothing half-made.
  await files.writeNew(`${dir}/HEAD`, [utf8.encode(`ref: refs/heads/${branch}\n`)], false);
  // The new directories' entries, up to the repository's own in its parent: a write acknowledged later would be
  // lost with them in a power cut (test/crash.test.ts finds it so).
  for (const d of [`${dir}/objects`, `${dir}/refs`, dir, dir.slice(0, dir.lastIndexOf('/')) || '/']) {
    await files.syncDir(d);
  }
}

/** NOT_FOUND for a missing repository, with the commands that fix it. */
export const missingRepository = (dir: string) =>
  new StoreError('NOT_FOUND', `no store at ${dir} — run \`store init\` or pass --repo`, {
    kind: 'repository',
    name: dir,
  });
