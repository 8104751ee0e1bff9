import { createHash } from 'node:crypto';
import { StoreError } from '../errors.js';
import { branchNameProblem } from '../tree/keys.js';
import { gitFailed, runGit } from './git.js';
import type { RemoteInfo } from './types.js';

/*
 * Remotes live in the repository's `config` exactly as git keeps them (`[remote "origin"] url = …, fetch =
 * +refs/heads/*:refs/remotes/origin/*`), written and read by git itself, so `git remote -v` and the store agree.
 */

const SCHEMES = new Set(['http', 'https', 'ssh', 'git', 'file', 'git+ssh', 'ssh+git']);

/** Why `name` is not a remote name: git's rules (it must make a valid `refs/remotes/<name>/…`), or null. */
function remoteNameProblem(name: string): string | null {
  if (name === '') return 'a remote name may not be empty';
  if (name.startsWith('-')) return 'it may not start with "-"';
  return branchNameProblem(name);
}

/** A remote name (`origin`, `peers/a`), checked: INVALID_ARGUMENT unless git would take it. */
export function checkRemoteName(name: unknown): string {
  if (typeof name !== 'string') throw new StoreError('INVALID_ARGUMENT', 'a remote name is a string');
  const why = remoteNameProblem(name);
  if (why) {
    throw new StoreError('INVALID_ARGUMENT', `invalid remote name ${JSON.stringify(name)}: ${why}`, { remote: name });
  }
  return name;
}

/**
 * A remote URL, checked before git sees it: a path, `scheme://…` for git's own transports, or ssh's `host:path`.
 * Refused: anything git could read as an option (`--upload-pack=…`), control characters, and remote helpers
 * (`ext::…` runs a command; `<helper>::…` runs a program named by the URL).
 */
export function checkRemoteUrl(url: unknown): string {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new StoreError('INVALID_ARGUMENT', 'a remote URL may not be empty', { url });
  }
  const bad = (why: string) =>
    new StoreError('INVALID_ARGUMENT', `invalid remote URL ${JSON.stringify(url)}: ${why}`, { url });
  if (url.length > 4096) throw bad('longer than 4096 characters');
  if (url.startsWith('-')) throw bad('it may not start with "-" (git would read it as an option)');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(url)) throw bad('it contains a control character');
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(url)) throw bad('remote helpers (`<transport>::<address>`) are not accepted');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && !SCHEMES.has(scheme)) {
    throw bad(`unknown scheme ${scheme}; use http(s)://, ssh://, git://, file:// or a path`);
  }
  return url;
}

/** Whether `remote` names a remote (as opposed to being a URL or a path given in its place). */
export const isRemoteName = (remote: string): boolean => remoteNameProblem(remote) === null;

/**
 * Where the remote-tracking refs of a URL given in place of a remote go: `refs/remotes/<this>/*`. Readable (the
 * host and path with every other character made `_`), and unique (a hash of the whole URL), so two URLs never
 * share tracking refs.
 */
export function trackingNameOfUrl(url: string): string {
  const readable = url
    .replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '')
    .replace(/^[^@/]*@/, '')
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
  const hash = createHash('sha1').update(url).digest('hex').slice(0, 8);
  return `${readable || 'url'}-${hash}`;
}

const unknownRemote = (name: string) =>
  new StoreError(
    'NOT_FOUND',
    `remote ${name} not found — add it with \`store remote add ${name} URL\` (\`store remote list\` shows them), or give a URL or a path (./dir for a relative one)`,
    { kind: 'remote', name },
  );

/** The repository's remotes, by name. */
export async function listRemotes(gitDir: string): Promise<RemoteInfo[]> {
  const what = 'list the remotes';
  const run = await runGit(['config', '--null', '--get-regexp', '^remote\\..*\\.url$'], { gitDir, what });
  // Exit 1: no remote at all.
  if (run.code === 1 && run.stdout === '') return [];
  if (run.code !== 0) throw gitFailed(what, run);
  const remotes: RemoteInfo[] = [];
  // With --null each entry is `<key>\n<value>\0`.
  for (const entry of run.stdout.split('\0')) {
    const nl = entry.indexOf('\n');
    if (nl < 0) continue;
    const m = /^remote\.(.+)\.url$/.exec(entry.slice(0, nl));
    if (m) remotes.push({ name: m[1]!, url: entry.slice(nl + 1) });
  }
  return remotes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A remote's URL, or null when no remote has that name. */
export async function remoteUrl(gitDir: string, name: string): Promise<string | null> {
  const what = `look up remote ${name}`;
  const run = await runGit(['config', '--get', `remote.${name}.url`], { gitDir, what });
  if (run.code === 1) return null;
  if (run.code !== 0) throw gitFailed(what, run);
  return run.stdout.replace(/\n$/, '');
}

/**
 * Adds a remote as `git remote add` does (URL and the default fetch refspec). Adding a remote that exists with the
 * same URL changes nothing (provisioning may run it every time); with another URL it is REMOTE_EXISTS.
 */
export async function addRemote(gitDir: string, name: string, url: string): Promise<RemoteInfo> {
  checkRemoteName(name);
  checkRemoteUrl(url);
  const existing = await remoteUrl(gitDir, name);
  if (existing === url) return { name, url };
  if (existing !== null) throw remoteExists(name, existing);
  const what = `add remote ${name}`;
  const run = await runGit(['remote', 'add', '--', name, url], { gitDir, what });
  if (run.code !== 0) {
    // Added meanwhile by another process: the same answers as above.
    const now = await remoteUrl(gitDir, name);
    if (now === url) return { name, url };
    if (now !== null) throw remoteExists(name, now);
    throw gitFailed(what, run);
  }
  return { name, url };
}

const remoteExists = (name: string, url: string) =>
  new StoreError(
    'REMOTE_EXISTS',
    `remote ${name} exists already, with URL ${url}; remove it first (\`store remote remove ${name}\`) or pick another name`,
    { remote: name, url },
  );

/** Removes a remote, its configuration and its remote-tracking refs (`git remote remove`). NOT_FOUND if none. */
export async function removeRemote(gitDir: string, name: string): Promise<void> {
  checkRemoteName(name);
  if ((await remoteUrl(gitDir, name)) === null) throw unknownRemote(name);
  const what = `remove remote ${name}`;
  const run = await runGit(['remote', 'remove', '--', name], { gitDir, what });
  if (run.code !== 0) {
    if ((await remoteUrl(gitDir, name)) === null) throw unknownRemote(name);
    throw gitFailed(what, run);
  }
}

/**
 * What a remote argument stands for. A valid remote name is a configured remote (NOT_FOUND when there is none by
 * that name); anything else is a URL or a path, whose tracking refs go below `refs/remotes/<trackingNameOfUrl>/`.
 * `arg` is what git is given.
 */
export interface RemoteTarget {
  arg: string;
  /** The namespace of its remote-tracking refs: `refs/remotes/<tracking>/<branch>`. */
  tracking: string;
  url: string;
  named: boolean;
  /** How messages name it: the remote's name, or the URL without a password in it. */
  label: string;
}

/** A URL as messages show it: a password in it (`https://user:secret@host`) is replaced by `***`. */
export const displayUrl = (url: string): string =>
  url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/, '$1:***@');

export async function resolveRemote(gitDir: string, remote: string): Promise<RemoteTarget> {
  if (typeof remote !== 'string' || remote === '') {
    throw new StoreError('INVALID_ARGUMENT', 'a remote is a name (origin) or a URL', { remote });
  }
  if (isRemoteName(remote)) {
    const url = await remoteUrl(gitDir, remote);
    if (url === null) throw unknownRemote(remote);
    return { arg: remote, tracking: remote, url, named: true, label: remote };
  }
  checkRemoteUrl(remote);
  return { arg: remote, tracking: trackingNameOfUrl(remote), url: remote, named: false, label: displayUrl(remote) };
}
