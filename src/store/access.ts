import { ACCESS_KEY, AccessRules } from '../access/rules.js';
import { type CreateTokenOptions, type TokenInfo, Tokens } from '../access/tokens.js';
import { isStoreError } from '../errors.js';
import { lookup } from '../tree/editor.js';
import type { StoreCore } from './core.js';

/** A token just made: its secret (shown this once), what it is, and the roles it names that no rule defines yet. */
export interface CreatedToken extends TokenInfo {
  token: string;
  unknownRoles: string[];
}

/**
 * Managing tokens, the same through the library and over HTTP (`store token`, `/v1/tokens`): what the CLI calls on a
 * local store or a StoreClient alike.
 */
export interface TokenAdmin {
  create(name: string, options?: CreateTokenOptions): Promise<CreatedToken>;
  /** Every token, without secrets, by name. */
  list(): Promise<TokenInfo[]>;
  /** Removes a token (NOT_FOUND without one by that name); requests carrying it are refused from the next on. */
  revoke(name: string): Promise<void>;
}

/** How long the rules read from `.store/access.json` hold before its blob is looked up again. */
const RULES_CHECK_MS = 100;

/**
 * Who may do what (docs/ARCHITECTURE.md, "Access"): the store's tokens, and the rules of `.store/access.json` on the
 * default branch, parsed once per version of that file. The adapters (the HTTP server) enforce them; the library
 * itself, like git on a repository one can open, trusts its caller.
 */
export class StoreAccess {
  readonly tokens: Tokens;
  private cached: { oid: string | null; rules: AccessRules; problem: string | null } | null = null;
  private checkedAt = 0;

  constructor(private readonly core: StoreCore) {
    this.tokens = new Tokens(core.files, core.refs, core.dir);
  }

  /**
   * The rules in force. A `.store/access.json` that does not parse grants nothing (only the built-in admin role
   * works) until an admin fixes it: failing closed, and `problem()` says why.
   */
  async rules(): Promise<AccessRules> {
    return (await this.current()).rules;
  }

  /** Why the rules in force are none, when `.store/access.json` does not parse. */
  async problem(): Promise<string | null> {
    return (await this.current()).problem;
  }

  private async current() {
    // Looked at most every RULES_CHECK_MS: a request must not pay a ref check and a tree lookup for the rules on top
    // of its own work (measured: reads with auth on at 0.62 of reads without, before).
    if (this.cached && Date.now() - this.checkedAt < RULES_CHECK_MS) return this.cached;
    this.checkedAt = Date.now();
    const head = await this.core.head(this.core.defaultBranch, 'cached').catch((e) => {
      if (isStoreError(e) && e.code === 'NOT_FOUND') return { tree: null };
      throw e;
    });
    const entry = head.tree ? await lookup(this.core.db, head.tree, ACCESS_KEY.split('/')) : null;
    const oid = entry?.oid ?? null;
    if (this.cached?.oid === oid) return this.cached;
    let rules = AccessRules.NONE;
    let problem: string | null = null;
    if (oid) {
      try {
        rules = AccessRules.parse(new TextDecoder().decode(await this.core.db.readBlob(oid)));
      } catch (e) {
        if (!isStoreError(e)) throw e;
        problem = e.message;
      }
    }
    this.cached = { oid, rules, problem };
    return this.cached;
  }

  /** Tokens managed with the rules in view (a role no rule defines yet is reported, not refused: rules may follow). */
  readonly admin: TokenAdmin = {
    create: async (name, options) => {
      const made = await this.tokens.create(name, options);
      const rules = await this.rules();
      return { token: made.token, ...made.info, unknownRoles: made.info.roles.filter((r) => !rules.has(r)) };
    },
    list: () => this.tokens.list(),
    revoke: (name) => this.tokens.revoke(name),
  };
}
