import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GIT_PATH, ROUTES, UI_PATH } from '../src/http/contract.js';
import { Grants, isAncestor, type Principal, type Right, type Store, StoreError } from '../src/index.js';

/**
 * Authentication and authorisation of every request (docs/ARCHITECTURE.md, "Access").
 *
 * Authentication: once the store has a token (`store token create`), every request but the public ones needs
 * `Authorization: Bearer <token>`; without a valid one it is answered 401. Without tokens the server is open, as
 * before, and `store serve` then listens on loopback only (main.ts).
 *
 * Authorisation: what each route needs is in ONE table, `NEEDS`, by method and route. A route missing from it stops
 * the server from starting, so no route can be added unguarded; test/access-http.test.ts ("the permission matrix") walks the same routes.
 * What a route answers is then cut to what the caller may read by the route itself (listings, watches), with the
 * caller's `Grants` from `request.access`.
 */

/** What a request may do, once authenticated. */
export interface RequestAccess {
  /** Whether the store requires tokens at all. */
  enabled: boolean;
  /** The token's principal (null when auth is off). */
  principal: Principal | null;
  grants: Grants;
}

declare module 'fastify' {
  interface FastifyRequest {
    access: RequestAccess;
  }
}

/**
 * What a route needs:
 * - `public`: nothing (health, the API's description);
 * - `token`: a valid token; the route itself shows only what the caller may read (branches, listings, watches);
 * - `key`: `read` or `write` on the key in the path (`write` below `.store/` is `admin`);
 * - `branch`: the right on ALL of the branch in the path (compaction, revert, deletion);
 * - `history`: read on something of the branch in the path; the route shows only what the caller may read of its
 *   history (server/history-access.ts);
 * - `admin`: admin everywhere (gc, remotes, metrics, tokens);
 * - `handler`: the route checks each key it touches itself (batch, merge, transactions, replication).
 */
export type Need =
  | { kind: 'public' }
  | { kind: 'token' }
  | { kind: 'key'; right: 'read' | 'write' }
  | { kind: 'branch'; right: Right }
  | { kind: 'history' }
  | { kind: 'admin' }
  | { kind: 'handler' };

const PUBLIC: Need = { kind: 'public' };
const TOKEN: Need = { kind: 'token' };
const ADMIN: Need = { kind: 'admin' };
const HISTORY: Need = { kind: 'history' };
const HANDLER: Need = { kind: 'handler' };
const keyNeed = (right: 'read' | 'write'): Need => ({ kind: 'key', right });
const branchNeed = (right: Right): Need => ({ kind: 'branch', right });

/** THE table: every route of the server, by `METHOD path`, with what it needs. */
export const NEEDS: Record<string, Need> = {
  [`GET ${ROUTES.health}`]: PUBLIC,
  [`GET ${ROUTES.openapi}`]: PUBLIC,
  [`GET ${ROUTES.docs}`]: PUBLIC,
  [`GET ${ROUTES.metrics}`]: ADMIN,
  [`GET ${ROUTES.branches}`]: TOKEN,
  [`POST ${ROUTES.branches}`]: HANDLER,
  [`DELETE ${ROUTES.branch}`]: branchNeed('admin'),
  [`GET ${ROUTES.key}`]: keyNeed('read'),
  [`PUT ${ROUTES.key}`]: keyNeed('write'),
  [`DELETE ${ROUTES.key}`]: keyNeed('write'),
  [`GET ${ROUTES.list}`]: TOKEN,
  [`GET ${ROUTES.listRoot}`]: TOKEN,
  [`POST ${ROUTES.batch}`]: HANDLER,
  [`POST ${ROUTES.merge}`]: HANDLER,
  [`POST ${ROUTES.mergePreview}`]: HANDLER,
  [`GET ${ROUTES.log}`]: HISTORY,
  // By revision: the branch (in the query) whose history the revision must be in is checked by the route.
  [`GET ${ROUTES.commit}`]: TOKEN,
  [`GET ${ROUTES.diff}`]: TOKEN,
  [`POST ${ROUTES.bisect}`]: HISTORY,
  // Its answer names any value that breaks a schema, anywhere in the tree.
  [`GET ${ROUTES.validate}`]: branchNeed('read'),
  [`GET ${ROUTES.blame}`]: HISTORY,
  [`GET ${ROUTES.blameRoot}`]: HISTORY,
  [`POST ${ROUTES.gc}`]: ADMIN,
  [`POST ${ROUTES.compact}`]: branchNeed('admin'),
  // The commit's own keys are checked by the route (server/routes/history.ts): `.store/` needs admin there too.
  [`POST ${ROUTES.revert}`]: HISTORY,
  [`POST ${ROUTES.begin}`]: TOKEN,
  [`DELETE ${ROUTES.transaction}`]: TOKEN,
  [`POST ${ROUTES.txCommit}`]: TOKEN,
  [`GET ${ROUTES.txKey}`]: HANDLER,
  [`PUT ${ROUTES.txKey}`]: HANDLER,
  [`DELETE ${ROUTES.txKey}`]: HANDLER,
  [`GET ${ROUTES.txList}`]: HANDLER,
  [`GET ${ROUTES.txListRoot}`]: HANDLER,
  [`GET ${ROUTES.watch}`]: TOKEN,
  [`GET ${ROUTES.replication}`]: ADMIN,
  [`POST ${ROUTES.replicationObjects}`]: branchNeed('read'),
  [`GET ${ROUTES.remotes}`]: ADMIN,
  [`PUT ${ROUTES.remote}`]: ADMIN,
  [`DELETE ${ROUTES.remote}`]: ADMIN,
  [`POST ${ROUTES.fetch}`]: ADMIN,
  [`POST ${ROUTES.pull}`]: ADMIN,
  [`POST ${ROUTES.push}`]: ADMIN,
  [`GET ${ROUTES.tokens}`]: ADMIN,
  [`POST ${ROUTES.tokens}`]: ADMIN,
  [`DELETE ${ROUTES.token}`]: ADMIN,
  [`GET ${ROUTES.me}`]: TOKEN,
  // The web UI's page and files hold no data (server/ui.ts).
  'GET /': PUBLIC,
  [`GET ${UI_PATH}/*`]: PUBLIC,
  // git's protocol: a clone or fetch gets the branches the caller may read whole, a push is checked key by key in
  // the push hook (server/git/access.ts).
  [`GET ${GIT_PATH}/*`]: TOKEN,
  [`POST ${GIT_PATH}/*`]: TOKEN,
};

const OPEN: RequestAccess = { enabled: false, principal: null, grants: Grants.ALL };

export const forbidden = (what: string) =>
  new StoreError('FORBIDDEN', `this token may not ${what}; an admin can grant it in .store/access.json`);

const unauthorized = (why: string) => new StoreError('UNAUTHORIZED', why);

/**
 * The token a request sent (undefined: none; '' for a malformed one). `Bearer <token>` is the API's way; git (and
 * its credential helpers) can only send a user name and password, so `Basic` with the token as the password is
 * taken too, as git hosts take theirs.
 */
function tokenOf(request: FastifyRequest): string | undefined {
  const value = request.headers.authorization;
  if (typeof value !== 'string') return undefined;
  const [, scheme, credentials = ''] = /^(\S+)(?:\s+(\S*))?\s*$/.exec(value) ?? [];
  if (/^bearer$/i.test(scheme ?? '')) return credentials;
  if (!/^basic$/i.test(scheme ?? '')) return undefined; // a scheme the store does not take: no token given
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  return decoded.includes(':') ? decoded.slice(decoded.indexOf(':') + 1) : '';
}

/** git asks its credential helper (or the person) for a password only when offered Basic. */
const challengesOf = (request: FastifyRequest) =>
  request.url.startsWith(`${GIT_PATH}/`)
    ? ['Bearer realm="gitstore"', 'Basic realm="gitstore"']
    : 'Bearer realm="gitstore"';

/** Authenticates every request and checks the route's need; must be installed before the routes. */
export function installAuth(app: FastifyInstance, store: Store): void {
  app.decorateRequest('access', null as unknown as RequestAccess);
  app.addHook('onRoute', (route) => {
    // HEAD too: a HEAD route without an entry would run unchecked (fastify adds none itself here: exposeHeadRoutes).
    for (const method of [route.method].flat()) {
      if (!NEEDS[`${method} ${route.url}`]) {
        throw new Error(`route ${method} ${route.url} has no entry in NEEDS (server/auth.ts): say what it needs`);
      }
    }
  });
  app.addHook('onRequest', async (request, reply) => {
    const need = needOf(request);
    // No such route (404, which says nothing of the store), or one anyone may use.
    if (!need || need.kind === 'public' || !(await store.access.tokens.enabled())) {
      request.access = OPEN;
      return;
    }
    const access = await accessOf(request, store);
    if (!access) {
      reply.header('www-authenticate', challengesOf(request));
      throw unauthorized(
        tokenOf(request) === undefined
          ? 'this store needs a token: send Authorization: Bearer <token> (store token create makes one)'
          : 'the token is not valid: unknown, revoked or expired',
      );
    }
    request.access = access;
  });
  // Before the body is parsed or validated: a caller that may not use a route learns nothing of what it takes.
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!request.access.enabled) return;
    const need = needOf(request);
    if (!need) return; // not found: the 404 handler answers
    const { grants } = request.access;
    const params = request.params as { branch?: string; '*'?: string };
    switch (need.kind) {
      case 'key': {
        const key = params['*'] ?? '';
        if (need.right === 'read') return checkRead(request, params.branch!, key);
        // The query is not validated yet (this runs before): a recursive delete says `recursive=true`.
        const recursive = (request.query as { recursive?: unknown }).recursive === 'true';
        return checkWrites(request, params.branch!, [{ key, recursive }]);
      }
      case 'branch':
        return checkBranch(request, params.branch!, need.right);
      case 'history':
        return checkHistory(request, params.branch!);
      case 'admin':
        if (!grants.isAdmin()) throw forbidden('do this: it needs admin');
        return;
      default:
        return;
    }
  });
}

/** The access of the request's token as it is now (null: no valid token), with auth on. */
async function accessOf(request: FastifyRequest, store: Store): Promise<RequestAccess | null> {
  const token = tokenOf(request);
  const principal = token ? await store.access.tokens.verify(token) : null;
  if (!principal) return null;
  return { enabled: true, principal, grants: (await store.access.rules()).grants(principal.roles) };
}

/**
 * A long request's access looked at again (a watch lasts for hours): the token verified anew and the rules in force
 * now, so a revocation or a rule change reaches it too. Null when its token no longer works.
 */
export async function accessNow(request: FastifyRequest, store: Store): Promise<RequestAccess | null> {
  return request.access.enabled ? accessOf(request, store) : request.access;
}

/** What the request's route needs (undefined: no such route). */
export function needOf(request: FastifyRequest): Need | undefined {
  const url = request.routeOptions.url;
  return url === undefined ? undefined : NEEDS[`${request.method} ${url}`];
}

/** FORBIDDEN unless the caller may write each key (with `recursive`, everything below it) on `branch`. */
export function checkWrites(request: FastifyRequest, branch: string, ops: { key: string; recursive?: boolean }[]) {
  if (!request.access.enabled) return;
  const { grants } = request.access;
  for (const { key, recursive } of ops) {
    const right = Grants.writeRight(key);
    const ok = recursive ? grants.canAll(right, branch, `${key.replace(/\/+$/, '')}/`) : grants.can(right, branch, key);
    if (!ok) throw forbidden(`${right} ${key} on ${branch}`);
  }
}

/** FORBIDDEN unless the caller may read the key on `branch`. */
export function checkRead(request: FastifyRequest, branch: string, key: string) {
  if (request.access.enabled && !request.access.grants.can('read', branch, key)) {
    throw forbidden(`read ${key} on ${branch}`);
  }
}

/** FORBIDDEN unless something at or below `path` is readable: it would show in a listing of its parent. */
export function checkVisible(request: FastifyRequest, branch: string, path: string): void {
  const dir = path.replace(/\/+$/, '');
  if (request.access.enabled && !request.access.grants.canSee(branch, dir)) {
    throw forbidden(`list ${dir || 'the top'} of ${branch}`);
  }
}

/**
 * A listing cut to what the caller may read: a value it may read, a directory with something readable below it. A
 * directory with nothing readable is refused, though its name (the caller's own) is all it would learn.
 */
export function visibleListing<E extends { key: string; type: string }, L extends { entries: E[] }>(
  request: FastifyRequest,
  branch: string,
  prefix: string,
  listed: L,
): L {
  if (!request.access.enabled) return listed;
  const { grants } = request.access;
  checkVisible(request, branch, prefix);
  const entries = listed.entries.filter((e) =>
    e.type === 'dir' ? grants.canSee(branch, e.key) : grants.can('read', branch, e.key),
  );
  return { ...listed, entries };
}

/**
 * A merge of `from` (a branch or any revision) into `into`: read, where `from` comes from, of every key that differs
 * between the two heads, then write on each of them in `into`. The keys that differ are a superset of what the merge
 * changes, so a caller is never shown (in a conflict or a refusal) a key it may not read; and reading comes first, so
 * a refusal to write names only keys the caller may read.
 */
export async function checkMerge(request: FastifyRequest, store: Store, into: string, from: string): Promise<void> {
  if (!request.access.enabled) return;
  const theirs = await store.resolve(from, into);
  const ours = (await store.branches()).find((b) => b.name === into)?.head ?? null;
  // Nothing to bring (`into` has it already): the merge changes nothing, and says only that to a reader of `into`.
  if (ours && (await inHistory(store, theirs, ours))) {
    return checkHistory(request, into);
  }
  // Against the head of `into` (none yet: every key of theirs).
  const changes = await store.diff(theirs, undefined, { branch: into });
  await checkSource(
    request,
    store,
    theirs,
    changes.map((c) => c.key),
    `read what ${from} would bring into ${into}`,
  );
  checkWrites(request, into, changes);
}

/** Whether `commit` is `head` or one of its ancestors. */
export const inHistory = (store: Store, commit: string, head: string): Promise<boolean> =>
  isAncestor((oid) => store.objects.readCommit(oid), commit, head);

/**
 * FORBIDDEN unless `commit` is in the history of a branch on which the caller may read `keys` (null: all of the
 * branch): what a new branch or a merge takes from a revision must be readable where that revision comes from. A
 * commit id, `dev~2` and `dev` are judged alike, by the branches that hold the commit.
 */
export async function checkSource(
  request: FastifyRequest,
  store: Store,
  commit: string,
  keys: string[] | null,
  what: string,
): Promise<void> {
  if (!request.access.enabled) return;
  const { grants } = request.access;
  for (const b of await store.branches()) {
    if (!b.head) continue;
    const readable =
      keys === null ? grants.canAll('read', b.name, '') : keys.every((k) => grants.can('read', b.name, k));
    if (readable && (await inHistory(store, commit, b.head))) return;
  }
  throw forbidden(what);
}

/** The branches the caller may read something on. */
export function visibleBranches<B extends { name: string }>(request: FastifyRequest, branches: B[]): B[] {
  const { enabled, grants } = request.access;
  return enabled ? branches.filter((b) => grants.readsBranch(b.name)) : branches;
}

/** FORBIDDEN unless the caller may read something on `branch`: it is then shown that part of its history. */
export function checkHistory(request: FastifyRequest, branch: string): void {
  if (request.access.enabled && !request.access.grants.readsBranch(branch)) {
    throw forbidden(`read the history of ${branch}`);
  }
}

/** FORBIDDEN unless the caller may `right` on all of `branch` (creating a branch needs write on all of it). */
export function checkBranch(request: FastifyRequest, branch: string, right: Right): void {
  if (request.access.enabled && !request.access.grants.canAll(right, branch, '')) {
    throw forbidden(`${right} all of branch ${branch}`);
  }
}
