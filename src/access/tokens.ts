import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalidArgument, notFound, StoreError } from '../errors.js';
import type { Files } from '../storage/fs.js';
import type { Refs } from '../storage/refs.js';

/**
 * The tokens of a store's HTTP API (docs/ARCHITECTURE.md, "Access"). They live in `auth/tokens.json` in the
 * repository directory, beside `refs/` and outside every branch: no commit holds them, so no clone or push carries
 * them. The file holds a per-repository random key and, per token, only the HMAC-SHA-256 of its secret under that key.
 *
 * A token is `gst_<id>_<secret>`: the id finds its entry, the 256-bit random secret is what is checked. A secret that
 * random needs no slow hash (etcd's bcrypt made every request pay ~tens of ms, its #3223): one HMAC, compared in
 * constant time, and a verified token is remembered until the file changes (a revocation, in any process, applies
 * within 100 ms).
 *
 * Once a first token is created, auth stays on (`enabled`), even after the last one is revoked: revoking every token
 * must lock the store, not open it to everyone.
 */

export const TOKENS_FILE = 'auth/tokens.json';

/** Who a token speaks for: its name, its roles, and the author of the commits it makes. */
export interface Principal {
  name: string;
  roles: string[];
  author: { name: string; email: string };
}

/** A token as listed: never its secret. */
export interface TokenInfo extends Principal {
  created: string;
  /** ISO time after which it no longer works; null: never. */
  expires: string | null;
  /** ISO time of its last use, to the minute (null: never used). */
  lastUsed: string | null;
}

interface Entry extends TokenInfo {
  id: string;
  hash: string;
}

interface TokenFile {
  version: 1;
  key: string;
  enabled: boolean;
  tokens: Entry[];
}

export interface CreateTokenOptions {
  roles?: string[];
  /** How long it works, in ms (default: until revoked). */
  expiresInMs?: number;
  /** The author of its commits (default: the token's name, no email). */
  author?: { name: string; email: string };
  /** The creation time (tests). */
  now?: Date;
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROLE_NAME = TOKEN_NAME;
const TOKEN_FORM = /^gst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
/** How long a look at the token file's version holds. */
const CHECK_MS = 100;
/** Last use is written back at most this often per token and process: a request must not cost a file write. */
const LAST_USE_MS = 60_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Tokens {
  private cache: { version: string | null; file: TokenFile | null } | null = null;
  private checkedAt = 0;
  /** Secrets verified against the current file, with their entry. */
  private verified = new Map<string, Entry>();
  /** Uses not yet written back: token name → ISO time. */
  private uses = new Map<string, string>();
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly files: Files,
    private readonly refs: Refs,
    private readonly dir: string,
  ) {}

  private get path() {
    return `${this.dir}/${TOKENS_FILE}`;
  }

  /**
   * The file as it is now: cached while its version (one stat) is unchanged, and that is looked at most every
   * CHECK_MS, so a request does not pay a stat for it (a revocation by another process applies within CHECK_MS).
   */
  private load(): Promise<TokenFile | null> | TokenFile | null {
    if (this.cache && Date.now() - this.checkedAt < CHECK_MS) return this.cache.file;
    // One look for all the requests that find the last one too old (profiled: 50 concurrent requests made 50 stats).
    this.loading ??= this.reload().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private loading: Promise<TokenFile | null> | null = null;

  private async reload(): Promise<TokenFile | null> {
    const version = await this.files.version(this.path);
    this.checkedAt = Date.now();
    if (this.cache && this.cache.version === version) return this.cache.file;
    const text = version === null ? null : await this.files.readText(this.path);
    const file = text === null ? null : parseFile(text);
    this.cache = { version, file };
    this.verified = new Map();
    return file;
  }

  /** Whether requests need a token: from the first token created on. */
  async enabled(): Promise<boolean> {
    return (await this.load())?.enabled ?? false;
  }

  /** Makes a token; its secret is in the answer and nowhere else. */
  async create(name: string, options: CreateTokenOptions = {}): Promise<{ token: string; info: TokenInfo }> {
    if (!TOKEN_NAME.test(name)) {
      throw invalidArgument(`invalid token name ${JSON.stringify(name)}: use letters, digits, ".", "_" and "-"`);
    }
    const roles = [...new Set(options.roles ?? [])];
    for (const role of roles) {
      if (!ROLE_NAME.test(role)) throw invalidArgument(`invalid role name ${JSON.stringify(role)}`);
    }
    if (options.expiresInMs !== undefined && !(options.expiresInMs > 0)) {
      throw invalidArgument('a token must expire in the future');
    }
    const now = options.now ?? new Date();
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const info: TokenInfo = {
      name,
      roles,
      author: options.author ?? { name, email: '' },
      created: now.toISOString(),
      expires: options.expiresInMs === undefined ? null : new Date(now.getTime() + options.expiresInMs).toISOString(),
      lastUsed: null,
    };
    await this.update((file) => {
      if (file.tokens.some((t) => t.name === name)) {
        throw invalidArgument(`a token named ${name} exists; revoke it first, or pick another name`);
      }
      file.tokens.push({ ...info, id, hash: hmac(file.key, secret) });
      file.enabled = true;
    });
    return { token: `gst_${id}_${secret}`, info };
  }

  /** Every token, without secrets, by name. */
  async list(): Promise<TokenInfo[]> {
    const file = await this.load();
    return (file?.tokens ?? []).map(infoOf).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Removes a token; requests carrying it are refused from the next one on, in every process. */
  async revoke(name: string): Promise<void> {
    await this.update((file) => {
      const at = file.tokens.findIndex((t) => t.name === name);
      if (at < 0) throw notFound('token', name, '`store token list` shows the tokens');
      file.tokens.splice(at, 1);
    });
  }

  /** The principal a presented token speaks for; null when it is not a valid, unexpired token of this store. */
  async verify(token: string, now = Date.now()): Promise<Principal | null> {
    const file = await this.load();
    if (!file) return null;
    let entry = this.verified.get(token);
    if (!entry) {
      const m = TOKEN_FORM.exec(token);
      const candidate = m ? file.tokens.find((t) => t.id === m[1]) : undefined;
      if (!m || !candidate) return null;
      const expected = Buffer.from(candidate.hash, 'hex');
      const actual = Buffer.from(hmac(file.key, m[2]!), 'hex');
      if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return null;
      entry = candidate;
      this.verified.set(token, entry);
    }
    if (entry.expires !== null && Date.parse(entry.expires) <= now) return null;
    this.noteUse(entry, now);
    return { name: entry.name, roles: entry.roles, author: entry.author };
  }

  /** Records a use in memory; written back in the background, at most once a minute per token. */
  private noteUse(entry: Entry, now: number): void {
    if (entry.lastUsed !== null && now - Date.parse(entry.lastUsed) < LAST_USE_MS) return;
    const when = new Date(now).toISOString();
    entry.lastUsed = when;
    this.uses.set(entry.name, when);
    this.flushing ??= this.flush().finally(() => {
      this.flushing = null;
    });
  }

  /** Writes recorded uses back to the file (best effort: a lost last-use time is not worth failing a request). */
  async flush(): Promise<void> {
    // One that is under way first (this call, when made by noteUse, finds none yet).
    await this.flushing;
    if (this.uses.size === 0) return;
    const uses = this.uses;
    this.uses = new Map();
    await this.update((file) => {
      for (const t of file.tokens) {
        const used = uses.get(t.name);
        if (used && (t.lastUsed === null || t.lastUsed < used)) t.lastUsed = used;
      }
    }).catch(() => {});
  }

  /** Read-modify-write of the file under its lock; creates it (with a new key) when missing. */
  private async update(change: (file: TokenFile) => void): Promise<void> {
    await this.files.p.mkdir(`${this.dir}/auth`, { recursive: true, mode: 0o700 });
    await this.refs.updateFile(
      TOKENS_FILE,
      (current) => {
        const file = current === null ? newFile() : parseFile(decoder.decode(current));
        change(file);
        return encoder.encode(`${JSON.stringify(file, null, 2)}\n`);
      },
      0o600,
    );
    this.cache = null;
  }
}

const hmac = (key: string, secret: string) =>
  createHmac('sha256', Buffer.from(key, 'base64url')).update(secret).digest('hex');

const newFile = (): TokenFile => ({
  version: 1,
  key: randomBytes(32).toString('base64url'),
  enabled: false,
  tokens: [],
});

const infoOf = (e: Entry): TokenInfo => ({
  name: e.name,
  roles: e.roles,
  author: e.author,
  created: e.created,
  expires: e.expires,
  lastUsed: e.lastUsed,
});

/** The file, checked: a damaged one is CORRUPT (refusing every request), never read as "no tokens". */
function parseFile(text: string): TokenFile {
  let file: TokenFile;
  try {
    file = JSON.parse(text) as TokenFile;
  } catch {
    throw new StoreError('CORRUPT', `${TOKENS_FILE} is not JSON; restore it or remove it to start again`);
  }
  if (file?.version !== 1 || typeof file.key !== 'string' || !Array.isArray(file.tokens)) {
    throw new StoreError('CORRUPT', `${TOKENS_FILE} is not a token file of this version`);
  }
  return file;
}
