import { invalidArgument, invalidBranch, invalidKey } from '../errors.js';

/** Longest key accepted, in UTF-8 bytes (Xenstore's path limit). */
export const MAX_KEY_BYTES = 3072;
/** Longest segment: most file systems' name limit, so a clone can be checked out. */
export const MAX_SEGMENT_BYTES = 255;

const encoder = new TextEncoder();
// git's fsck flags these names in trees ("hasDotgit"): `.git` and its NTFS 8.3 short form `git~1`, also when a
// file system would read them so — NTFS drops trailing dots and spaces and anything from ":" on (stream names),
// HFS+ ignores certain zero-width code points.
const reservedSegment = /^(\.|\.\.|\.git|git~\d+)$/i;
const hfsIgnorable = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;
const asFileSystemsSeeIt = (segment: string) =>
  segment
    .replace(hfsIgnorable, '')
    .replace(/:.*$/, '')
    .replace(/[. ]+$/, (tail) => (/^\.+$/.test(segment) ? tail : ''));
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters (C0, DEL, C1) are exactly what we reject
const badCharacter = /[\u0000-\u001f\u007f-\u009f/\\]/;
// A lone UTF-16 surrogate cannot be written as UTF-8: the tree would hold U+FFFD instead and the key would be lost.
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Checks a key and returns its segments. A leading `/` is accepted and dropped; the empty key is the root, which is
 * only valid where `allowRoot` (listing) says so.
 */
export function parseKey(key: string, allowRoot = false): string[] {
  if (typeof key !== 'string') throw invalidKey(String(key), 'a key is a string');
  const bare = key.startsWith('/') ? key.slice(1) : key;
  if (bare === '') {
    if (allowRoot) return [];
    throw invalidKey(key, 'a key may not be empty');
  }
  if (encoder.encode(bare).length > MAX_KEY_BYTES) throw invalidKey(key, `longer than ${MAX_KEY_BYTES} bytes`);
  const segments = bare.split('/');
  for (const segment of segments) checkSegment(key, segment);
  return segments;
}

/** The canonical spelling of a key: no leading slash. */
export const normalizeKey = (key: string, allowRoot = false): string => parseKey(key, allowRoot).join('/');

function checkSegment(key: string, segment: string): void {
  if (segment === '') throw invalidKey(key, 'it has an empty segment (two slashes, or a trailing slash)');
  if (reservedSegment.test(segment) || reservedSegment.test(asFileSystemsSeeIt(segment))) {
    throw invalidKey(key, `segment ${JSON.stringify(segment)} is reserved by git`);
  }
  if (loneSurrogate.test(segment)) throw invalidKey(key, 'it is not valid Unicode (a lone surrogate)');
  const bad = badCharacter.exec(segment);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(2, '0');
    throw invalidKey(key, `segment ${JSON.stringify(segment)} contains a forbidden character (0x${code})`);
  }
  if (encoder.encode(segment).length > MAX_SEGMENT_BYTES) {
    throw invalidKey(key, `segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
}

// The rules of `git check-ref-format --branch`, applied to the name below refs/heads/.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are forbidden in ref names
const badRefCharacter = /[\u0000-\u0020\u007f~^:?*[\\]/;

/** Throws INVALID_BRANCH unless `name` is a branch name git itself accepts. */
/** The longest component of a branch name, in bytes: with `.lock` appended it must still be a valid file name. */
export const MAX_BRANCH_SEGMENT_BYTES = 250;

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

/**
 * A commit message the caller gave: any text but control characters other than newline and tab (git's fsck refuses
 * a NUL in a commit, and the others only garble logs and terminals).
 */
export function checkMessage(message: string | undefined, where = 'the commit message'): void {
  if (message === undefined) return;
  if (typeof message !== 'string') throw invalidArgument(`${where} must be text`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
  const bad = /[\u0000-\u0008\u000b-\u001f\u007f]/.exec(message);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(2, '0');
    throw invalidArgument(
      `${where} contains the control character U+00${code.toUpperCase()} at ${bad.index}; only newline and tab are allowed`,
    );
  }
}

export function checkBranchName(name: string): string {
  if (typeof name !== 'string' || name === '') throw invalidBranch(String(name), 'a branch name may not be empty');
  const why = branchNameProblem(name);
  if (why) throw invalidBranch(name, why);
  return name;
}

/** Why `name` is not a name git accepts below refs/heads/ (or refs/remotes/), or null when it is. */
export function branchNameProblem(name: string): string | null {
  if (name.length > 255) return 'longer than 255 characters';
  if (name.startsWith('-')) return 'it may not start with "-"';
  if (name === 'HEAD') return '"HEAD" is reserved';
  if (name === '@') return '"@" is reserved';
  if (badRefCharacter.test(name)) return 'it contains a space, a control character or one of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'it contains ".."';
  if (name.includes('@{')) return 'it contains "@{"';
  if (name.includes('//') || name.startsWith('/') || name.endsWith('/')) return 'it has an empty path component';
  if (name.endsWith('.')) return 'it ends with "."';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return 'a component starts with "."';
    if (part.endsWith('.lock')) return 'a component ends with ".lock"';
    // A branch is a file refs/heads/<name>, written through <name>.lock: file names stop at 255 bytes.
    if (utf8Length(part) > MAX_BRANCH_SEGMENT_BYTES) {
      return `a component is over ${MAX_BRANCH_SEGMENT_BYTES} bytes (git writes it through a file named <component>.lock, and file names stop at 255 bytes)`;
    }
  }
  return null;
}
