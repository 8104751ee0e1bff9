import type { Grants } from '../access/rules.js';
import { type ErrorCode, isStoreError, StoreError } from '../errors.js';
import { retentionFromFile } from '../history/retention.js';
import { policyFromFile } from '../merge/config.js';
import { fromUtf8 } from '../objects/object.js';
import { type SchemaTrees, violationsOfMove } from '../schema/check.js';
import { SCHEMA_KEY, SCHEMAS_DIR } from '../schema/load.js';
import { checkBranchName, parseKey } from '../tree/keys.js';
import { accessRefusals } from './push-access.js';

/**
 * What a push to `store serve`'s git server may put in the repository, checked before git moves any ref (git runs
 * this from its pre-receive hook, see server/git/ and quarantine.ts). A push must leave every branch readable by the
 * store: each key one the store's own key rules accept, each `.store/*.json` one the store can use. Only what the
 * push adds is read — each new commit's tree against its first parent — so a long history costs one tree diff per
 * commit, not a walk of every tree.
 */

/** git's name for "no object": the old side of a ref being created, the new side of one being deleted. */
export const ZERO_OID = '0'.repeat(40);

/** One line git gives the hook: a ref moving from `old` to `next` (either may be ZERO_OID). */
export interface PushedRef {
  old: string;
  next: string;
  ref: string;
}

/** A commit the push brings, with the parent its tree is checked against (null: a root commit). */
export interface NewCommit {
  commit: string;
  parent: string | null;
}

/** One tree entry a new commit adds or changes (deletions need no check). */
export interface PathChange {
  commit: string;
  /** The path as git stores it: bytes, which must be UTF-8 to be a key. */
  path: Uint8Array;
  mode: string;
  oid: string;
}

/**
 * What the check reads of the pushed objects. Objects of a push wait in git's quarantine until the hook accepts
 * them: quarantine.ts reads them through git plumbing, which sees the quarantine with the environment git gives
 * the hook.
 */
export interface PushedObjects {
  /** The branch HEAD names (the default branch), null when HEAD names none. */
  defaultBranch(): Promise<string | null>;
  /** Whether `oid` is a commit, or a tag that leads to one. */
  leadsToCommit(oid: string): Promise<boolean>;
  /** The commits reachable from `tips` that no ref reaches yet, each with its first parent. */
  newCommits(tips: string[]): Promise<NewCommit[]>;
  /** Every entry each commit adds or changes against its parent, in a stream: `onChange` is called per entry. */
  changes(commits: NewCommit[], onChange: (change: PathChange) => void): Promise<void>;
  /** The contents of blobs, by oid. */
  blobs(oids: string[]): Promise<Map<string, Uint8Array>>;
  /**
   * Every key (path) that moving a branch from `old` to `next` changes: the two trees against each other, and each
   * commit of `next` that `old` lacks against its first parent (push-access.ts).
   */
  changedKeys(old: string, next: string): Promise<string[]>;
  /** Every branch and its head, as before the push. */
  branchHeads(): Promise<{ name: string; head: string }[]>;
  /**
   * The objects reachable from `tips` but not from `known` that the push did not bring: already in the repository,
   * named by the pushed commits (a parent, a tree, a blob) without being sent.
   */
  borrowed(tips: string[], known: string[]): Promise<string[]>;
  /** Each commit's author and committer (name and email). */
  identities(commits: string[]): Promise<Map<string, { author: Person; committer: Person }>>;
  /** The values (key and blob) of a commit's tree; with `paths`, only those at or below them. */
  treeValues(commit: string, paths?: string[]): Promise<[string, string][]>;
  /** The values `next`'s tree adds or changes against `old`'s (key and blob in `next`). */
  changedValues(old: string | null, next: string): Promise<[string, string][]>;
}

export interface Person {
  name: string;
  email: string;
}

/** A reason the push is refused: which ref or commit, and what to do about it. */
export interface Refusal {
  code: ErrorCode;
  message: string;
}

/** The most refusals listed: one mistake repeated over a long history should not flood the pusher's terminal. */
const MAX_LISTED = 20;

const OID = /^[0-9a-f]{40}$/;

/** Parses git's `<old> <new> <ref>` lines; INVALID_ARGUMENT for anything else (the hook was not run by git). */
export function parseRefUpdates(text: string): PushedRef[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [old, next, ref, ...rest] = line.trim().split(' ');
      if (!old || !next || !ref || rest.length > 0 || !OID.test(old) || !OID.test(next)) {
        throw new StoreError(
          'INVALID_ARGUMENT',
          `not a pre-receive line ("<old> <new> <ref>"): ${JSON.stringify(line)}`,
        );
      }
      return { old, next, ref };
    });
}

const short = (oid: string) => oid.slice(0, 10);

/** Where the store keeps its internals: transactions, compaction maps. */
const STORE_REFS = 'refs/store/';

/** Why a ref may not move as asked (null: it may); its commits are checked separately. */
function refusalOfRef(update: PushedRef, defaultBranch: string | null): Refusal | null {
  const { ref } = update;
  if (ref.startsWith(STORE_REFS)) {
    return {
      code: 'FORBIDDEN',
      message: `${ref}: refs/store/* are the store's own (open transactions, compaction maps) and cannot be pushed; push branches (refs/heads/<name>)`,
    };
  }
  if (ref.startsWith('refs/heads/')) {
    const branch = ref.slice('refs/heads/'.length);
    try {
      checkBranchName(branch);
    } catch (e) {
      if (isStoreError(e)) return { code: e.code, message: `${ref}: ${e.message}` };
      throw e;
    }
    if (update.next === ZERO_OID && branch === defaultBranch) {
      return {
        code: 'FORBIDDEN',
        message: `${ref}: ${branch} is the default branch and cannot be deleted`,
      };
    }
    return null;
  }
  if (ref.startsWith('refs/tags/')) return null;
  return {
    code: 'FORBIDDEN',
    message: `${ref}: the store takes branches (refs/heads/*) and tags (refs/tags/*) only`,
  };
}

/** The modes a value may have in a tree: a file (executable or not). Symbolic links and submodules are not values. */
const VALUE_MODES = new Set(['100644', '100755']);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Why a new or changed entry cannot be a key (null: it can). */
function refusalOfPath(change: PathChange): Refusal | null {
  let key: string;
  try {
    key = strictUtf8.decode(change.path);
  } catch {
    const shown = fromUtf8.decode(change.path);
    return {
      code: 'INVALID_KEY',
      message: `commit ${short(change.commit)}: path ${JSON.stringify(shown)} is not UTF-8, so it cannot be a key`,
    };
  }
  try {
    parseKey(key);
  } catch (e) {
    if (isStoreError(e)) return { code: e.code, message: `commit ${short(change.commit)}: ${e.message}` };
    throw e;
  }
  if (!VALUE_MODES.has(change.mode)) {
    const what = change.mode === '120000' ? 'a symbolic link' : change.mode === '160000' ? 'a submodule' : 'no file';
    return {
      code: 'INVALID_KEY',
      message: `commit ${short(change.commit)}: ${JSON.stringify(key)} is ${what} (mode ${change.mode}); a value is a plain file`,
    };
  }
  return null;
}

/**
 * The store's configuration files, each with the check the store itself applies when it reads it. Any other
 * `.store/*.json` must at least be JSON.
 */
const CONFIG_CHECKS: Record<string, (bytes: Uint8Array) => void> = {
  '.store/merge.json': (bytes) => void policyFromFile(bytes),
  '.store/retention.json': (bytes) => void retentionFromFile(bytes),
};

const isConfigFile = (path: string) => /^\.store\/[^/]+\.json$/.test(path);

function refusalOfConfig(path: string, commit: string, bytes: Uint8Array): Refusal | null {
  try {
    const check = CONFIG_CHECKS[path];
    if (check) check(bytes);
    else JSON.parse(fromUtf8.decode(bytes));
    return null;
  } catch (e) {
    const why = isStoreError(e) ? e.message : `it is not valid JSON (${(e as Error).message})`;
    return { code: isStoreError(e) ? e.code : 'INVALID_ARGUMENT', message: `commit ${short(commit)}: ${path}: ${why}` };
  }
}

/** Commits whose author or committer is not the pushing token's identity. */
function authorshipRefusals(identities: Map<string, { author: Person; committer: Person }>, token: Person): Refusal[] {
  const same = (p: Person) => p.name === token.name && p.email === token.email;
  const refusals: Refusal[] = [];
  for (const [commit, { author, committer }] of identities) {
    const other = !same(author) ? author : !same(committer) ? committer : null;
    if (!other) continue;
    refusals.push({
      code: 'FORBIDDEN',
      message:
        `commit ${short(commit)} is signed "${other.name} <${other.email}>", and this token signs as ` +
        `"${token.name} <${token.email}>": pushing others' commits needs a role with "impersonate": true ` +
        '(an admin can grant it in .store/access.json)',
    });
  }
  return refusals;
}

/**
 * Checks a push: every ref update, then, with `grants` (a caller with a limited token), what the caller may change,
 * then every commit it brings. Returns the refusals (empty: accept), the first MAX_LISTED of them, with a last line
 * counting the rest.
 */
export async function checkPush(
  updates: PushedRef[],
  objects: PushedObjects,
  grants?: Grants,
  author?: Person,
): Promise<Refusal[]> {
  const refusals: Refusal[] = [];
  let more = 0;
  const refuse = (r: Refusal | null) => {
    if (!r) return;
    if (refusals.length < MAX_LISTED) refusals.push(r);
    else more++;
  };
  const defaultBranch = await objects.defaultBranch();
  const tips: string[] = [];
  const valid: PushedRef[] = [];
  for (const update of updates) {
    const refused = refusalOfRef(update, defaultBranch);
    refuse(refused);
    if (refused) continue;
    if (update.next !== ZERO_OID && !(await objects.leadsToCommit(update.next))) {
      refuse({ code: 'INVALID_ARGUMENT', message: `${update.ref}: ${short(update.next)} is not a commit` });
      continue;
    }
    valid.push(update);
    if (update.next !== ZERO_OID) tips.push(update.next);
  }
  if (grants) for (const r of await accessRefusals(valid, objects, grants, (oid) => oid === ZERO_OID)) refuse(r);
  // Refused refs alone already decide; their commits would only add noise.
  if (refusals.length > 0 || tips.length === 0) return refusals;

  // A limited caller's commits may name objects that are already here only where it may read them: a commit is a
  // tree and its parents by id, and pointing a branch of its own at the tree of a branch it may not read (or at a
  // commit whose parent is that branch's head, or at a blob by its hash) would hand it what the rules hide.
  if (grants) {
    const readable = (await objects.branchHeads()).filter((b) => grants.canAll('read', b.name, '')).map((b) => b.head);
    const borrowed = await objects.borrowed(tips, readable);
    if (borrowed.length > 0) {
      refuse({
        code: 'FORBIDDEN',
        message:
          `this push names ${borrowed.length} object${borrowed.length === 1 ? '' : 's'} it did not send and this ` +
          'token may not read (a tree, parent or value of a branch it cannot read whole); push only commits made ' +
          'on branches this token reads',
      });
      return refusals;
    }
  }
  const commits = await objects.newCommits(tips);
  // With a token, a commit names who made it, as the API's writes do: another author needs `impersonate`.
  if (grants && author && !grants.impersonate && commits.length > 0) {
    for (const r of authorshipRefusals(await objects.identities(commits.map((c) => c.commit)), author)) refuse(r);
  }
  // A configuration file's content is checked once per version (a blob at a path), for the first commit bringing it.
  const configs = new Map<string, { oid: string; path: string; commit: string }>();
  await objects.changes(commits, (change) => {
    const refused = refusalOfPath(change);
    refuse(refused);
    if (refused) return;
    const path = fromUtf8.decode(change.path);
    const seen = `${change.oid} ${path}`;
    if (isConfigFile(path) && !configs.has(seen)) configs.set(seen, { oid: change.oid, path, commit: change.commit });
  });
  if (configs.size > 0) {
    const blobs = await objects.blobs([...new Set([...configs.values()].map((c) => c.oid))]);
    for (const { oid, path, commit } of configs.values()) {
      refuse(refusalOfConfig(path, commit, blobs.get(oid) ?? new Uint8Array()));
    }
  }
  // What each branch is left holding must satisfy the schemas it declares, as every other write must.
  if (refusals.length === 0) {
    const trees = schemaTrees(objects);
    for (const update of valid) {
      if (!update.ref.startsWith('refs/heads/') || update.next === ZERO_OID) continue;
      for (const v of await violationsOfMove(trees, update.old === ZERO_OID ? null : update.old, update.next)) {
        const at = v.pointer ? ` at ${v.pointer}` : '';
        refuse({
          code: 'INVALID_VALUE',
          message: `${update.ref}: ${v.key}${at}: ${v.message} (${v.pattern} ${v.rule})`,
        });
      }
    }
  }
  if (more > 0) refusals.push({ code: refusals[0]!.code, message: `… and ${more} more` });
  return refusals;
}

/** The pushed trees as the schema checks read them (src/schema/check.ts). */
function schemaTrees(objects: PushedObjects): SchemaTrees {
  return {
    schemaFiles: async (commit) => {
      const files = await objects.treeValues(commit, [SCHEMA_KEY, SCHEMAS_DIR.slice(0, -1)]);
      const schema = files.find(([key]) => key === SCHEMA_KEY);
      return schema ? { schema: schema[1], refs: new Map(files.filter(([key]) => key.startsWith(SCHEMAS_DIR))) } : null;
    },
    values: (commit) => objects.treeValues(commit),
    changed: (old, next) => objects.changedValues(old, next),
    blobs: (oids) => objects.blobs(oids),
  };
}
