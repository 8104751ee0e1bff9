import { invalidArgument } from '../errors.js';

/**
 * Access rules: `.store/access.json` on the default branch (docs/ARCHITECTURE.md, "Access"). It is data like any
 * other key, so it has history, blame and revert, and writing it needs `admin`, so no one grants themselves more.
 *
 * ```json
 * { "roles": {
 *     "web":  { "rules": [{ "branch": "main", "prefix": "app/web/", "access": "read" }] },
 *     "ops":  { "rules": [{ "branch": "*", "prefix": "", "access": "write" },
 *                         { "branch": "*", "prefix": "secret/", "access": "deny" }],
 *               "impersonate": true } } }
 * ```
 *
 * A rule applies to the branches its pattern matches (`*` matches any run of characters) and to the keys that start
 * with its prefix (a string prefix, as Consul's `key_prefix`). Of the rules that apply to a key, the most specific
 * wins: the longest prefix, then the branch pattern with the most literal characters (an exact name before any
 * pattern). At equal specificity `deny` beats the others, then the highest right. Nothing that no rule grants is
 * allowed. Rights nest: `write` includes `read`, `admin` includes both, and also gc, compaction, branch deletion,
 * remotes, metrics and writing `.store/`. The role `admin` is built in: everything, everywhere.
 */

export type Right = 'read' | 'write' | 'admin';
type Access = Right | 'deny';

export interface Rule {
  branch: string;
  prefix: string;
  access: Access;
}

interface Role {
  rules: Rule[];
  /** May name another author (X-Store-Author) on its commits. */
  impersonate: boolean;
}

export const ADMIN_ROLE = 'admin';
export const ACCESS_KEY = '.store/access.json';

const LEVEL: Record<Access, number> = { deny: -1, read: 1, write: 2, admin: 3 };
const RIGHTS = new Set(Object.keys(LEVEL));

/** The rules of a store: parsed once per version of `.store/access.json`. */
export class AccessRules {
  private constructor(private readonly roles: ReadonlyMap<string, Role>) {}

  /** No `.store/access.json`: only the built-in admin role grants anything. */
  static readonly NONE = new AccessRules(new Map());

  /** Parses `.store/access.json`; INVALID_ARGUMENT naming the first thing wrong. */
  static parse(text: string): AccessRules {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw invalidArgument(`${ACCESS_KEY} is not JSON: ${(e as Error).message}`);
    }
    const fail = (where: string, what: string) =>
      invalidArgument(`${ACCESS_KEY}: ${where} ${what}`, { key: ACCESS_KEY });
    if (!isObject(doc)) throw fail('the document', 'must be an object');
    onlyFields(doc, ['roles'], 'the document', fail);
    if (!isObject(doc.roles)) throw fail('"roles"', 'must be an object of role name → role');
    const roles = new Map<string, Role>();
    for (const [name, role] of Object.entries(doc.roles)) {
      const at = `role ${JSON.stringify(name)}`;
      if (name === ADMIN_ROLE) throw fail(at, 'is built in (everything, everywhere) and cannot be redefined');
      if (!isObject(role)) throw fail(at, 'must be an object with "rules"');
      onlyFields(role, ['rules', 'impersonate'], at, fail);
      if (!Array.isArray(role.rules)) throw fail(at, '"rules" must be an array');
      if (role.impersonate !== undefined && typeof role.impersonate !== 'boolean') {
        throw fail(at, '"impersonate" must be true or false');
      }
      const rules = role.rules.map((rule: unknown, i: number): Rule => {
        const where = `${at} rule ${i}`;
        if (!isObject(rule)) throw fail(where, 'must be an object');
        onlyFields(rule, ['branch', 'prefix', 'access'], where, fail);
        const { branch = '*', prefix = '', access } = rule;
        if (typeof branch !== 'string' || branch === '') throw fail(where, '"branch" must be a name or pattern');
        if (typeof prefix !== 'string') throw fail(where, '"prefix" must be a string (a key prefix)');
        if (typeof access !== 'string' || !RIGHTS.has(access)) {
          throw fail(where, '"access" must be one of read, write, admin, deny');
        }
        return { branch, prefix: prefix.replace(/^\/+/, ''), access: access as Access };
      });
      roles.set(name, { rules, impersonate: role.impersonate === true });
    }
    return new AccessRules(roles);
  }

  /** Whether a role is defined (the built-in admin is). */
  has(role: string): boolean {
    return role === ADMIN_ROLE || this.roles.has(role);
  }

  /** What a set of roles may do. */
  grants(roles: readonly string[]): Grants {
    if (roles.includes(ADMIN_ROLE)) return Grants.ALL;
    // Per set of roles, once per version of the rules: every request asks.
    const key = roles.join('\n');
    let grants = this.granted.get(key);
    if (!grants) {
      const rules = roles.flatMap((r) => this.roles.get(r)?.rules ?? []);
      grants = new Grants(
        rules,
        roles.some((r) => this.roles.get(r)?.impersonate),
      );
      this.granted.set(key, grants);
    }
    return grants;
  }

  private readonly granted = new Map<string, Grants>();
}

/** What one principal may do: the rules of its roles together. */
export class Grants {
  static readonly ALL = new Grants([{ branch: '*', prefix: '', access: 'admin' }], true);

  constructor(
    private readonly rules: readonly Rule[],
    /** May name another author on its commits. */
    readonly impersonate: boolean,
  ) {}

  /** The level granted at `key` (a key, a directory with `/`, or '' for the whole branch): -1 deny, 0 none. */
  private level(branch: string, key: string): number {
    key = canonical(key);
    let best: [number, number] = [-1, -1];
    let level = 0;
    for (const rule of this.rules) {
      if (!key.startsWith(rule.prefix) || !branchMatches(rule.branch, branch)) continue;
      const specificity: [number, number] = [rule.prefix.length, branchSpecificity(rule.branch)];
      const order = compare(specificity, best);
      if (order > 0) {
        best = specificity;
        level = LEVEL[rule.access];
      } else if (order === 0 && level !== -1) {
        level = rule.access === 'deny' ? -1 : Math.max(level, LEVEL[rule.access]);
      }
    }
    return level;
  }

  /** Whether `right` is granted on one key (or, with '' or a `dir/`, at that level itself). */
  can(right: Right, branch: string, key: string): boolean {
    return this.level(branch, key) >= LEVEL[right];
  }

  /** Whether `right` is granted on every key at or below `prefix` ('' for the whole branch). */
  canAll(right: Right, branch: string, prefix: string): boolean {
    prefix = canonical(prefix);
    if (!this.can(right, branch, prefix)) return false;
    return this.rules.every(
      (r) =>
        !(r.prefix.length > prefix.length && r.prefix.startsWith(prefix) && branchMatches(r.branch, branch)) ||
        this.can(right, branch, r.prefix),
    );
  }

  /** Whether some key at or below `path` (a key or directory, `/` at its end or not) is readable: it shows in a listing. */
  canSee(branch: string, path: string): boolean {
    path = canonical(path).replace(/\/+$/, '');
    if (path === '') return this.readsBranch(branch);
    if (this.can('read', branch, path) || this.can('read', branch, `${path}/`)) return true;
    return this.rules.some(
      (r) => r.prefix.startsWith(`${path}/`) && branchMatches(r.branch, branch) && this.can('read', branch, r.prefix),
    );
  }

  /** Whether anything on `branch` is readable (the branch shows in the list of branches). */
  readsBranch(branch: string): boolean {
    return this.rules.some((r) => branchMatches(r.branch, branch) && this.can('read', branch, r.prefix));
  }

  /** Whether these grants are admin everywhere: what gc, remotes, metrics, tokens and tags need. */
  isAdmin(): boolean {
    // Admin on every branch and key: a rule granting it for all, and no rule that narrows it anywhere. A check on
    // one branch name would miss a rule for another (`*` admin beside `ops` deny is not admin everywhere).
    return (
      this.rules.some((r) => r.branch === '*' && r.prefix === '' && r.access === 'admin') &&
      this.rules.every((r) => r.access === 'admin')
    );
  }

  /** The grants as JSON, to hand to another process (the git server's push hook). */
  toJSON(): { rules: readonly Rule[]; impersonate: boolean } {
    return { rules: this.rules, impersonate: this.impersonate };
  }

  /** Grants from `toJSON`'s output; INVALID_ARGUMENT when it is not that. */
  static fromJSON(text: string): Grants {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = null;
    }
    const rules = isObject(value) && Array.isArray(value.rules) ? value.rules : null;
    const valid = rules?.every(
      (r: unknown) =>
        isObject(r) && typeof r.branch === 'string' && typeof r.prefix === 'string' && RIGHTS.has(r.access as string),
    );
    if (!valid) throw invalidArgument('not a set of access grants (Grants.toJSON)');
    return new Grants(rules as Rule[], (value as { impersonate?: unknown }).impersonate === true);
  }

  /** The right a write of `key` needs: `admin` below `.store/` (merge strategies, access rules), else `write`. */
  static writeRight(key: string): Right {
    key = canonical(key);
    return key === '.store' || key.startsWith('.store/') ? 'admin' : 'write';
  }
}

/**
 * A path as the store will use it: the store drops a leading `/` from a key (src/tree/keys.ts), so the rules must
 * see `/.store/access.json` as `.store/access.json` and `/secret/x` as `secret/x`, or a slash would get round them.
 */
const canonical = (path: string) => path.replace(/^\/+/, '');

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyFields(
  o: Record<string, unknown>,
  allowed: string[],
  where: string,
  fail: (where: string, what: string) => Error,
): void {
  const extra = Object.keys(o).find((k) => !allowed.includes(k));
  if (extra !== undefined)
    throw fail(where, `has an unknown field ${JSON.stringify(extra)} (allowed: ${allowed.join(', ')})`);
}

const patterns = new Map<string, RegExp>();

/** A branch pattern: an exact name, or `*` for any run of characters (`release/*`, `*`). */
function branchMatches(pattern: string, branch: string): boolean {
  if (!pattern.includes('*')) return pattern === branch;
  let re = patterns.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
    patterns.set(pattern, re);
  }
  return re.test(branch);
}

/** An exact name is more specific than any pattern; among patterns, more literal characters are. */
const branchSpecificity = (pattern: string) =>
  pattern.includes('*') ? pattern.replaceAll('*', '').length : Number.MAX_SAFE_INTEGER;

const compare = (a: [number, number], b: [number, number]) => a[0] - b[0] || a[1] - b[1];

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
