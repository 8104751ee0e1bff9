import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEEDS } from '../server/auth.js';
import { StoreClient } from '../src/index.js';
import { accessRepo } from './access-fixture.js';
import { cli } from './cli-process.js';
import { git, sleep } from './helpers.js';
import { type Served, startServe, stopServe } from './serve.js';

/**
 * Access over HTTP (issue 15) against a real `store serve`, with tokens made by the real `store token create`: who
 * gets 401, 403 and what, what listings and watches show, authorship, transactions per token, and the permission
 * matrix of every route the server has.
 */

const ACCESS = {
  roles: {
    // A service that may read app/web/ on main only.
    web: { rules: [{ branch: 'main', prefix: 'app/web/', access: 'read' }] },
    // A writer of app/ on main.
    appw: { rules: [{ branch: 'main', prefix: 'app/', access: 'write' }] },
    // A writer of all of branch dev, and of nothing on main.
    devw: { rules: [{ branch: 'dev', prefix: '', access: 'write' }] },
  },
};

type Who = 'none' | 'web' | 'appw' | 'devw' | 'admin';
const WHO: Who[] = ['none', 'web', 'appw', 'devw', 'admin'];

let server: Served;
let repo: string;
/** The commit that set the keys. */
let seed: string;
const tokens = {} as Record<Who, string>;

beforeAll(async () => {
  const made = await accessRepo({
    name: 'access',
    access: ACCESS,
    keys: { 'app/web/port': '8080', 'app/db/password': 'hunter2', 'secret/key': 'top secret value' },
    roles: WHO.slice(1),
    more: async (store) => {
      seed = (await store.tip()).commit!;
      await store.createBranch('dev');
    },
  });
  repo = made.repo;
  Object.assign(tokens, made.tokens);
  // The rate limit has its own test (limits-http); here it would only get in the way of 1,000 transactions.
  server = await startServe(repo, ['--port', '0', '--rate-limit', '0']);
});

afterAll(async () => {
  if (server) await stopServe(server);
  fs.rmSync(path.dirname(repo), { recursive: true, force: true });
});

/** A request as `who`; status and body text. */
async function call(who: Who, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { ...headers } };
  if (who !== 'none') (init.headers as Record<string, string>).authorization = `Bearer ${tokens[who]}`;
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (typeof body !== 'string') (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(`${server.url}${url}`, init);
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}

const head = (branch = 'main') => git(['--git-dir', repo, 'rev-parse', branch]).toString().trim();

describe('authentication', () => {
  it('answers 401 without a valid token, but health and the API description are open', async () => {
    for (const [token, why] of [
      [undefined, /needs a token/],
      ['Bearer gst_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /not valid/],
      ['Bearer nonsense', /not valid/],
      ['Basic dXNlcjpwYXNz', /not valid/], // git's way: the password is the token
    ] as const) {
      const res = await fetch(`${server.url}/v1/branches/main/keys/app/web/port`, {
        headers: token ? { authorization: token } : {},
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(JSON.parse(await res.text()).error).toMatchObject({
        code: 'UNAUTHORIZED',
        message: expect.stringMatching(why),
      });
    }
    for (const url of ['/v1/health', '/v1/openapi.json', '/docs'])
      expect((await call('none', 'GET', url)).status).toBe(200);
  });

  it('a revoked token is refused within 100 ms', async () => {
    const made = await cli(['--repo', repo, 'token', 'create', 'short-lived', '--role', 'web']);
    const token = made.stdout.trim();
    const get = () =>
      fetch(`${server.url}/v1/branches/main/keys/app/web/port`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get()).status).toBe(200);
    const listed = await cli(['--repo', repo, 'token', 'list', '--json']);
    const entry = (JSON.parse(listed.stdout) as { name: string; roles: string[] }[]).find(
      (t) => t.name === 'short-lived',
    );
    expect(entry?.roles).toEqual(['web']);
    // The secret (it may itself hold '_': base64url) is everything after `gst_<id>_`.
    expect(listed.stdout).not.toContain(token.slice('gst_'.length + 13));
    expect((await cli(['--repo', repo, 'token', 'revoke', 'short-lived'])).code).toBe(0);
    await sleep(110);
    expect((await get()).status).toBe(401);
  });

  it('the CLI sends --token or $STORE_TOKEN with --url, and exits 5 without one', async () => {
    const args = ['--url', server.url, 'get', 'app/web/port'];
    expect((await cli([...args, '--token', tokens.web])).stdout).toBe('8080');
    expect((await cli(args, { env: { STORE_TOKEN: tokens.web } })).stdout).toBe('8080');
    const without = await cli(args);
    expect(without.code).toBe(5);
    expect(without.stderr).toMatch(/needs a token/);
    const denied = await cli(['--url', server.url, '--token', tokens.web, 'get', 'secret/key']);
    expect(denied.code).toBe(5);
    expect(denied.stderr).not.toContain('top secret');
  });
});

describe('tokens over HTTP', () => {
  it('an admin token makes, lists and revokes tokens with `store token --url`; no other token can', async () => {
    const asAdmin = ['--url', server.url, '--token', tokens.admin, 'token'];
    const made = await cli([
      ...asAdmin,
      'create',
      'remote-made',
      '--role',
      'web',
      '--role',
      'later',
      '--expires',
      '1d',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toMatch(/cannot be shown again/);
    expect(made.stderr).toMatch(/no such role in .store\/access.json yet: later/);
    const secret = made.stdout.trim();
    expect(secret).toMatch(/^gst_[0-9a-f]{12}_/);
    // The new token works, with its role's rights and no more.
    const get = (key: string) =>
      fetch(`${server.url}/v1/branches/main/keys/${key}`, { headers: { authorization: `Bearer ${secret}` } });
    expect((await get('app/web/port')).status).toBe(200);
    expect((await get('secret/key')).status).toBe(403);

    const listed = await cli([...asAdmin, 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const entry = (JSON.parse(listed.stdout) as { name: string; roles: string[]; expires: string }[]).find(
      (t) => t.name === 'remote-made',
    );
    expect(entry).toMatchObject({ roles: ['web', 'later'] });
    expect(Date.parse(entry!.expires) - Date.now()).toBeGreaterThan(86_000_000);
    expect(listed.stdout).not.toContain(secret.slice('gst_'.length + 13));

    // Not for a token without admin: 403, nothing made.
    const denied = await cli([
      '--url',
      server.url,
      '--token',
      tokens.appw,
      'token',
      'create',
      'sneaky',
      '--role',
      'admin',
    ]);
    expect(denied.code).toBe(5);
    expect(denied.stderr).toMatch(/needs admin/);
    const direct = await call('appw', 'GET', '/v1/tokens');
    expect(direct.status).toBe(403);
    expect(direct.text).not.toContain('remote-made');
    expect((await cli(['--repo', repo, 'token', 'list'])).stdout).not.toContain('sneaky');

    // A bad body is the caller's error, named.
    const bad = await call('admin', 'POST', '/v1/tokens', { name: 'x y' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.message).toMatch(/invalid token name/);
    const created = await call('admin', 'POST', '/v1/tokens', { name: 'no-cache', roles: [] });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');

    expect((await cli([...asAdmin, 'revoke', 'remote-made'])).code).toBe(0);
    expect((await cli([...asAdmin, 'revoke', 'remote-made'])).code).toBe(3); // NOT_FOUND
    await sleep(110);
    expect((await get('app/web/port')).status).toBe(401);
  });

  it('the first token is not made over HTTP: it would turn auth on for every client', async () => {
    const dir = path.join(path.dirname(repo), 'open.git');
    const open = await startServe(dir, ['--port', '0']);
    try {
      const res = await fetch(`${open.url}/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'first', roles: ['admin'] }),
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/store token create/);
      expect(fs.existsSync(path.join(dir, 'auth'))).toBe(false);
      // Still open: it made nothing.
      expect((await fetch(`${open.url}/v1/branches`)).status).toBe(200);
    } finally {
      await stopServe(open);
    }
  });
});

describe('authorisation', () => {
  it('a reader of app/web/ reads it, and sees nothing else: not in listings, branches, or errors', async () => {
    expect((await call('web', 'GET', '/v1/branches/main/keys/app/web/port')).text).toBe('8080');
    const denied = await call('web', 'GET', '/v1/branches/main/keys/secret/key');
    expect(denied.status).toBe(403);
    expect(denied.text).not.toContain('top secret');
    expect((await call('web', 'GET', '/v1/branches/main/keys/app/db/password')).status).toBe(403);
    const keys = async (url: string) =>
      (JSON.parse((await call('web', 'GET', url)).text) as { entries: { key: string }[] }).entries.map((e) => e.key);
    expect(await keys('/v1/branches/main/list')).toEqual(['app']);
    expect(await keys('/v1/branches/main/list/app')).toEqual(['app/web']);
    expect(await keys('/v1/branches/main/list?recursive=true')).toEqual(['app/web/port']);
    expect((await call('web', 'GET', '/v1/branches/main/list/secret')).status).toBe(403);
    const branches = JSON.parse((await call('web', 'GET', '/v1/branches')).text) as { name: string }[];
    expect(branches.map((b) => b.name)).toEqual(['main']);
    expect((await call('web', 'PUT', '/v1/branches/main/keys/app/web/port', '9090')).status).toBe(403);
    expect((await call('admin', 'GET', '/v1/branches/main/keys/app/web/port')).text).toBe('8080');
  });

  it('writes are signed with the token; naming another author needs impersonate; .store/ needs admin', async () => {
    const before = head();
    const w = await call('appw', 'PUT', '/v1/branches/main/keys/app/web/port', '9090');
    expect(w.status).toBe(200);
    expect(git(['--git-dir', repo, 'log', '-1', '--format=%an|%cn', 'main']).toString().trim()).toBe('appw|appw');
    const other = await call('appw', 'PUT', '/v1/branches/main/keys/app/web/port', '1', {
      'x-store-author': 'Someone Else <else@example.com>',
    });
    expect(other.status).toBe(403);
    expect(other.text).toMatch(/X-Store-Author/);
    for (const key of ['.store/merge.json', '.store/access.json']) {
      expect((await call('appw', 'PUT', `/v1/branches/main/keys/${key}`, '{}')).status).toBe(403);
    }
    // A batch with one key outside the token's rights writes nothing.
    const batch = await call('appw', 'POST', '/v1/branches/main/batch', {
      ops: [
        { op: 'set', key: 'app/a', value: '1' },
        { op: 'set', key: 'secret/b', value: '2' },
      ],
    });
    expect(batch.status).toBe(403);
    expect(
      git(['--git-dir', repo, 'rev-list', '--count', `${before}..main`])
        .toString()
        .trim(),
    ).toBe('1');
    // A recursive delete needs write on everything below.
    expect((await call('appw', 'DELETE', '/v1/branches/main/keys/app?recursive=true')).status).toBe(200);
    expect((await call('devw', 'DELETE', '/v1/branches/main/keys/secret?recursive=true')).status).toBe(403);
    expect((await call('admin', 'PUT', '/v1/branches/main/keys/app/web/port', '8080')).status).toBe(201);
  });

  it('history for a reader of app/web/: only commits and keys it may read, and only of its branch', async () => {
    const admin = async (method: string, url: string, body?: unknown) => {
      const r = await call('admin', method, url, body);
      expect(r.status, r.text).toBeLessThan(300);
      return r;
    };
    await admin('PUT', '/v1/branches/main/keys/secret/only', 'hidden value');
    const secretOnly = head();
    await admin('POST', '/v1/branches/main/batch', {
      ops: [
        { op: 'set', key: 'app/web/mode', value: 'blue' },
        { op: 'set', key: 'secret/mixed', value: 'hidden too' },
      ],
    });
    const mixed = head();
    await admin('PUT', '/v1/branches/dev/keys/app/web/dev-only', 'on dev');
    const devHead = git(['--git-dir', repo, 'rev-parse', 'dev']).toString().trim();
    const json = async (url: string) => {
      const r = await call('web', 'GET', url);
      expect(r.status, `${url}: ${r.text}`).toBe(200);
      expect(r.text).not.toMatch(/secret|hidden/);
      return JSON.parse(r.text);
    };
    // The log lists the commit that changed app/web/, not the one that changed only a secret (its message,
    // `set secret/only`, would name the key).
    const log = (await json('/v1/branches/main/log?limit=1000')) as { commits: { id: string }[] };
    const ids = log.commits.map((c) => c.id);
    expect(ids).toContain(mixed);
    expect(ids).not.toContain(secretOnly);
    const adminLog = JSON.parse((await call('admin', 'GET', '/v1/branches/main/log?limit=1000')).text);
    expect(adminLog.commits.map((c: { id: string }) => c.id)).toContain(secretOnly);
    // One commit: only its readable changes; one that changed nothing readable is refused.
    const commit = (await json(`/v1/commits/${mixed}`)) as { changes: { key: string }[] };
    expect(commit.changes.map((c) => c.key)).toEqual(['app/web/mode']);
    const hidden = await call('web', 'GET', `/v1/commits/${secretOnly}`);
    expect(hidden.status).toBe(403);
    expect(hidden.text).not.toMatch(/secret/);
    // A diff, a blame and a bisection show only readable keys.
    const diff = (await json(`/v1/diff?from=${secretOnly}~1&to=${mixed}`)) as { changes: { key: string }[] };
    expect(diff.changes.map((c) => c.key)).toEqual(['app/web/mode']);
    const blame = (await json('/v1/branches/main/blame')) as { keys: { key: string }[] };
    expect(blame.keys.map((k) => k.key)).toEqual(['app/web/mode', 'app/web/port']);
    const bisect = await call('web', 'POST', '/v1/branches/main/bisect', {
      good: `${secretOnly}~1`,
      key: 'app/web/mode',
      equals: 'blue',
    });
    expect(bisect.status, bisect.text).toBe(200);
    expect(JSON.parse(bisect.text)).toMatchObject({ firstBad: { id: mixed }, changes: [{ key: 'app/web/mode' }] });
    expect(bisect.text).not.toMatch(/secret/);
    // What it may not read is refused, not cut: a secret's log or blame, a key's bisection, another branch's commit.
    expect((await call('web', 'GET', '/v1/branches/main/log?key=secret')).status).toBe(403);
    expect((await call('web', 'GET', '/v1/branches/main/blame/secret')).status).toBe(403);
    expect(
      (await call('web', 'POST', '/v1/branches/main/bisect', { good: 'main~1', key: 'secret/only', missing: true }))
        .status,
    ).toBe(403);
    expect((await call('web', 'GET', `/v1/commits/${devHead}`)).status).toBe(403);
    expect((await call('web', 'GET', `/v1/diff?from=${devHead}&to=main`)).status).toBe(403);
    expect((await call('web', 'GET', '/v1/branches/dev/log')).status).toBe(403);
    // A reader of all of the branch sees it all.
    expect((await call('admin', 'GET', `/v1/commits/${secretOnly}`)).status).toBe(200);
    await admin('DELETE', '/v1/branches/main/keys/secret/only');
    await admin('DELETE', '/v1/branches/main/keys/secret/mixed');
    await admin('DELETE', '/v1/branches/main/keys/app/web/mode');
  });

  it('transactions belong to the token that began them; another token is told they do not exist', async () => {
    const begun = await call('devw', 'POST', '/v1/branches/dev/transactions');
    expect(begun.status).toBe(201);
    const { id } = JSON.parse(begun.text) as { id: string };
    expect((await call('devw', 'PUT', `/v1/transactions/${id}/keys/x`, '1')).status).toBe(200);
    for (const who of ['web', 'appw', 'admin'] as const) {
      expect((await call(who, 'GET', `/v1/transactions/${id}/keys/x`)).status, who).toBe(404);
      expect((await call(who, 'POST', `/v1/transactions/${id}/commit`)).status, who).toBe(404);
    }
    // X-Store-Client does not make another client of the same token.
    expect(
      (await call('devw', 'GET', `/v1/transactions/${id}/keys/x`, undefined, { 'x-store-client': 'z' })).status,
    ).toBe(200);
    expect((await call('devw', 'POST', `/v1/transactions/${id}/commit`)).status).toBe(200);
    expect(git(['--git-dir', repo, 'show', 'dev:x']).toString()).toBe('1');
  });

  it('the cap on open transactions counts per token: a new X-Store-Client each time does not get round it', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const r = await call('devw', 'POST', '/v1/branches/dev/transactions', undefined, { 'x-store-client': `c${i}` });
      expect(r.status).toBe(201);
      ids.push((JSON.parse(r.text) as { id: string }).id);
    }
    const over = await call('devw', 'POST', '/v1/branches/dev/transactions', undefined, { 'x-store-client': 'new' });
    expect(over.status).toBe(429);
    expect(JSON.parse(over.text).error.message).toMatch(/already has 1000 open transactions/);
    // Another token has its own.
    expect((await call('admin', 'POST', '/v1/branches/dev/transactions')).status).toBe(201);
    for (const id of ids) await call('devw', 'DELETE', `/v1/transactions/${id}`);
  });

  it('a watch never sends an event, key name or value the token may not read', async () => {
    const reader = new StoreClient(server.url, { token: tokens.web });
    const watch = await reader.watch({ prefix: '' });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const group of watch.commits()) {
        for (const e of group.events) seen.push(e.key);
        if (seen.includes('app/web/last')) return;
      }
    })();
    const admin = new StoreClient(server.url, { token: tokens.admin });
    await admin.set('secret/new', 'classified');
    await admin.batch([
      { op: 'set', key: 'secret/other', value: 'x' },
      { op: 'set', key: 'app/web/mid', value: 'y' },
    ]);
    await admin.set('app/web/last', 'z');
    await reading;
    await watch.close();
    expect(seen).toEqual(['app/web/mid', 'app/web/last']);
    // A watch of a prefix it cannot read is refused.
    await expect(reader.watch({ prefix: 'secret' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await reader.close();
    await admin.close();
  });
});

describe('schemas (issue 18) with auth on', () => {
  it('X-Store-Force is for admins: 403 from any other token, whatever it writes; an admin adopts a schema with it', async () => {
    const admin = async (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
      const r = await call('admin', method, url, body, headers);
      expect(r.status, `${method} ${url}: ${r.text}`).toBeLessThan(300);
      return r;
    };
    const force = { 'x-store-force': 'true' };
    const port = '/v1/branches/main/keys/app/web/port';
    const schema = '/v1/branches/main/keys/.store/schema.json';
    await admin('PUT', schema, JSON.stringify({ 'app/*/port': { type: 'integer', minimum: 1 } }));
    try {
      // The schema holds for every token: a writer of app/ gets 422 for a value that breaks it.
      const before = head();
      const low = await call('appw', 'PUT', port, '0');
      expect(low.status, low.text).toBe(422);
      expect(JSON.parse(low.text).error).toMatchObject({ code: 'INVALID_VALUE', data: { total: 1 } });
      // Force from a token that is not admin is 403 on every write route that takes it — from one that may make the
      // write without it (a writer of app/ on main, a writer of dev on dev) because of the force.
      const writes = [
        ['PUT', port, '9090', 'appw'],
        ['DELETE', port, undefined, 'appw'],
        ['POST', '/v1/branches/main/batch', { ops: [{ op: 'set', key: 'app/web/port', value: '9090' }] }, 'appw'],
        ['POST', '/v1/branches/dev/batch', { ops: [{ op: 'set', key: 'x', value: '1' }] }, 'devw'],
      ] as const;
      for (const [method, url, body, writer] of writes) {
        for (const who of ['appw', 'devw', 'web'] as const) {
          const r = await call(who, method, url, body, force);
          expect(r.status, `${who} ${method} ${url}: ${r.text}`).toBe(403);
          expect(JSON.parse(r.text).error.code).toBe('FORBIDDEN');
          if (who === writer) expect(JSON.parse(r.text).error.message).toMatch(/force a schema change/);
        }
      }
      const devBefore = head('dev');
      const cliDenied = await cli([
        '--url',
        server.url,
        '--token',
        tokens.appw,
        'set',
        '--force',
        'app/web/port',
        '9090',
      ]);
      expect(cliDenied.code, cliDenied.stderr).toBe(5);
      expect(head()).toBe(before);
      expect(head('dev')).toBe(devBefore);
      expect((await call('admin', 'GET', port)).text).toBe('8080');

      // A schema that the stored 8080 breaks: refused without force (to the admin too), adopted with it.
      const tighter = JSON.stringify({ 'app/*/port': { type: 'integer', minimum: 9000 } });
      const refused = await call('admin', 'PUT', schema, tighter);
      expect(refused.status, refused.text).toBe(422);
      expect(JSON.parse(refused.text).error.data.violations.map((v: { key: string }) => v.key)).toEqual([
        'app/web/port',
      ]);
      expect(head()).toBe(before);
      expect((await call('admin', 'PUT', schema, tighter, { 'x-store-force': 'yes' })).status).toBe(400);
      await admin('PUT', schema, tighter, force);
      expect(head()).not.toBe(before);
      const report = JSON.parse((await admin('GET', '/v1/branches/main/validate')).text);
      expect(report).toMatchObject({ valid: false, violations: [{ key: 'app/web/port', keyword: 'minimum' }] });
      // The CLI's --force over --url, as an admin: a looser schema still, forced (8080 breaks it too).
      const looser = JSON.stringify({ 'app/*/port': { type: 'integer', minimum: 8500 } });
      const asAdmin = ['--url', server.url, '--token', tokens.admin];
      expect((await cli([...asAdmin, 'set', '.store/schema.json', looser])).code).toBe(7);
      const forced = await cli([...asAdmin, 'set', '--force', '.store/schema.json', looser]);
      expect(forced.code, forced.stderr).toBe(0);
      expect(forced.stdout.trim()).toBe(head());

      // validate needs read on all of the branch: a reader of app/web/ is refused, a writer of all of dev is not.
      expect((await call('web', 'GET', '/v1/branches/main/validate')).status).toBe(403);
      expect((await call('appw', 'GET', '/v1/branches/main/validate')).status).toBe(403);
      const dev = await call('devw', 'GET', '/v1/branches/dev/validate');
      expect(dev.status, dev.text).toBe(200);
      expect(JSON.parse(dev.text)).toMatchObject({ valid: true, patterns: [] });
      expect((await cli(['--url', server.url, '--token', tokens.web, 'validate'])).code).toBe(5);
    } finally {
      // Removing the schemas is never refused.
      await admin('DELETE', schema);
    }
  });
});

/** One request per route, with what it needs in its path; the body is enough to pass validation. */
const SAMPLE: Record<string, { method: string; url: string; body?: unknown }> = {};
const row = (route: string, url: string, body?: unknown) => {
  const method = route.split(' ')[0]!;
  SAMPLE[route] = { method, url, body };
};
row('GET /v1/health', '/v1/health');
row('GET /v1/openapi.json', '/v1/openapi.json');
row('GET /docs', '/docs');
row('GET /metrics', '/metrics');
row('GET /v1/branches', '/v1/branches');
row('POST /v1/branches', '/v1/branches', { name: 'dev/m' });
row('DELETE /v1/branches/:branch', '/v1/branches/nosuch');
row('GET /v1/branches/:branch/keys/*', '/v1/branches/main/keys/app/web/port');
row('PUT /v1/branches/:branch/keys/*', '/v1/branches/main/keys/app/m', 'v');
row('DELETE /v1/branches/:branch/keys/*', '/v1/branches/main/keys/app/m');
row('GET /v1/branches/:branch/list/*', '/v1/branches/main/list/app');
row('GET /v1/branches/:branch/list', '/v1/branches/main/list');
row('POST /v1/branches/:branch/batch', '/v1/branches/main/batch', { ops: [{ op: 'set', key: 'app/b', value: '1' }] });
row('POST /v1/branches/:branch/merge', '/v1/branches/main/merge', { from: 'main' });
row('GET /v1/branches/:branch/log', '/v1/branches/main/log');
row('GET /v1/commits/:rev', '/v1/commits/SEED'); // a commit that changed app/web/port: set in beforeAll
row('GET /v1/diff', '/v1/diff?from=main~1&to=main');
row('POST /v1/branches/:branch/bisect', '/v1/branches/main/bisect', {
  good: 'main~1',
  key: 'app/web/port',
  equals: 'x',
});
row('GET /v1/branches/:branch/validate', '/v1/branches/main/validate');
row('GET /v1/branches/:branch/blame/*', '/v1/branches/main/blame/app');
row('GET /v1/branches/:branch/blame', '/v1/branches/main/blame');
row('POST /v1/gc', '/v1/gc');
row('POST /v1/branches/:branch/compact', '/v1/branches/main/compact', { dryRun: true });
row('POST /v1/branches/:branch/revert', '/v1/branches/main/revert', { commit: '0'.repeat(40) });
row('POST /v1/branches/:branch/transactions', '/v1/branches/main/transactions');
row('DELETE /v1/transactions/:id', '/v1/transactions/nosuch');
row('POST /v1/transactions/:id/commit', '/v1/transactions/nosuch/commit');
row('GET /v1/transactions/:id/keys/*', '/v1/transactions/nosuch/keys/app/x');
row('PUT /v1/transactions/:id/keys/*', '/v1/transactions/nosuch/keys/app/x', 'v');
row('DELETE /v1/transactions/:id/keys/*', '/v1/transactions/nosuch/keys/app/x');
row('GET /v1/transactions/:id/list/*', '/v1/transactions/nosuch/list/app');
row('GET /v1/transactions/:id/list', '/v1/transactions/nosuch/list');
row('GET /v1/branches/:branch/watch', '/v1/branches/main/watch');
row('GET /v1/replication', '/v1/replication');
row('POST /v1/replication/branches/:branch/objects', '/v1/replication/branches/main/objects', { have: [] });
row('GET /v1/remotes', '/v1/remotes');
row('PUT /v1/remotes/:remote', '/v1/remotes/origin', { url: 'http://127.0.0.1:1/git' });
row('DELETE /v1/remotes/:remote', '/v1/remotes/nosuch');
row('POST /v1/remotes/:remote/fetch', '/v1/remotes/nosuch/fetch');
row('POST /v1/remotes/:remote/pull', '/v1/remotes/nosuch/pull');
row('POST /v1/remotes/:remote/push', '/v1/remotes/nosuch/push');
row('GET /v1/tokens', '/v1/tokens');
row('GET /v1/me', '/v1/me?path=app/web/port');
row('POST /v1/branches/:branch/merge/preview', '/v1/branches/main/merge/preview', { from: 'main~1' });
row('GET /', '/');
row('GET /ui/*', '/ui/style.css');
row('POST /v1/tokens', '/v1/tokens', { name: 'matrix-made', roles: ['web'] });
row('DELETE /v1/tokens/:name', '/v1/tokens/nosuch');
row('GET /git/*', '/git/info/refs?service=git-upload-pack');
row('POST /git/*', '/git/git-upload-pack', '0000');

/**
 * Whether each kind of token may use each route (the sample request above): true when it gets past access control
 * (whatever the route then answers), false when it is refused 403. Without a token every guarded route is 401.
 */
const PUBLIC = { web: true, appw: true, devw: true, admin: true };
const ADMIN_ONLY = { web: false, appw: false, devw: false, admin: true };
const ANY_TOKEN = { web: true, appw: true, devw: true, admin: true };
const MAIN_READERS = { web: true, appw: true, devw: false, admin: true };
const ALLOWED: Record<string, Record<Exclude<Who, 'none'>, boolean>> = {
  'GET /v1/health': PUBLIC,
  'GET /v1/openapi.json': PUBLIC,
  'GET /docs': PUBLIC,
  'GET /metrics': ADMIN_ONLY,
  'GET /v1/branches': ANY_TOKEN,
  'POST /v1/branches': { web: false, appw: false, devw: false, admin: true },
  'DELETE /v1/branches/:branch': ADMIN_ONLY,
  'GET /v1/branches/:branch/keys/*': MAIN_READERS,
  'PUT /v1/branches/:branch/keys/*': { web: false, appw: true, devw: false, admin: true },
  'DELETE /v1/branches/:branch/keys/*': { web: false, appw: true, devw: false, admin: true },
  'GET /v1/branches/:branch/list/*': MAIN_READERS,
  'GET /v1/branches/:branch/list': MAIN_READERS,
  'POST /v1/branches/:branch/batch': { web: false, appw: true, devw: false, admin: true },
  // main into main brings nothing: it is answered (400, itself) to a reader of main. What a merge brings is checked
  // key by key in access-bypass.test.ts.
  'POST /v1/branches/:branch/merge': MAIN_READERS,
  // History shows each reader of a branch what it may read of it.
  'GET /v1/branches/:branch/log': MAIN_READERS,
  'GET /v1/commits/:rev': MAIN_READERS,
  'GET /v1/diff': MAIN_READERS,
  'POST /v1/branches/:branch/bisect': MAIN_READERS,
  // Its answer may name any value of the branch: it needs read on all of it, which no role but admin has on main.
  'GET /v1/branches/:branch/validate': { web: false, appw: false, devw: false, admin: true },
  'GET /v1/branches/:branch/blame/*': MAIN_READERS,
  'GET /v1/branches/:branch/blame': MAIN_READERS,
  'POST /v1/gc': ADMIN_ONLY,
  'POST /v1/branches/:branch/compact': ADMIN_ONLY,
  // Past access control for a reader of main: the route then checks the commit (here none: 404) and its keys.
  'POST /v1/branches/:branch/revert': MAIN_READERS,
  'POST /v1/branches/:branch/transactions': MAIN_READERS,
  // An unknown transaction is 404 for every token: access is checked on the transaction's own branch.
  'DELETE /v1/transactions/:id': ANY_TOKEN,
  'POST /v1/transactions/:id/commit': ANY_TOKEN,
  'GET /v1/transactions/:id/keys/*': ANY_TOKEN,
  'PUT /v1/transactions/:id/keys/*': ANY_TOKEN,
  'DELETE /v1/transactions/:id/keys/*': ANY_TOKEN,
  'GET /v1/transactions/:id/list/*': ANY_TOKEN,
  'GET /v1/transactions/:id/list': ANY_TOKEN,
  'GET /v1/branches/:branch/watch': MAIN_READERS,
  'GET /v1/replication': ADMIN_ONLY,
  'POST /v1/replication/branches/:branch/objects': ADMIN_ONLY,
  'GET /v1/remotes': ADMIN_ONLY,
  'PUT /v1/remotes/:remote': ADMIN_ONLY,
  'DELETE /v1/remotes/:remote': ADMIN_ONLY,
  'POST /v1/remotes/:remote/fetch': ADMIN_ONLY,
  'POST /v1/remotes/:remote/pull': ADMIN_ONLY,
  'POST /v1/remotes/:remote/push': ADMIN_ONLY,
  'GET /v1/tokens': ADMIN_ONLY,
  'GET /v1/me': ANY_TOKEN,
  // main~1 is behind main: nothing to bring, and the preview says up-to-date to a reader of main.
  'POST /v1/branches/:branch/merge/preview': MAIN_READERS,
  'GET /': PUBLIC,
  'GET /ui/*': PUBLIC,
  'POST /v1/tokens': ADMIN_ONLY,
  'DELETE /v1/tokens/:name': ADMIN_ONLY,
  // git serves each token the branches it may read whole, and checks pushes key by key (git-access.test.ts).
  'GET /git/*': ANY_TOKEN,
  'POST /git/*': ANY_TOKEN,
};

describe('the permission matrix', () => {
  it('has a row for every route the server has, and no other', () => {
    expect(Object.keys(SAMPLE).sort()).toEqual(Object.keys(NEEDS).sort());
    expect(Object.keys(ALLOWED).sort()).toEqual(Object.keys(NEEDS).sort());
  });

  it('every route × {no token, reader of a prefix, writer of a prefix, writer of another branch, admin}', async () => {
    const wrong: string[] = [];
    for (const [route, sample] of Object.entries(SAMPLE)) {
      for (const who of WHO) {
        const { method, body } = sample;
        const url = sample.url.replace('SEED', seed);
        const controller = new AbortController();
        const headers: Record<string, string> = who === 'none' ? {} : { authorization: `Bearer ${tokens[who]}` };
        let bodyText: string | undefined;
        if (body !== undefined) {
          bodyText = typeof body === 'string' ? body : JSON.stringify(body);
          headers['content-type'] = route.startsWith('POST /git')
            ? 'application/x-git-upload-pack-request'
            : typeof body === 'string'
              ? 'application/octet-stream'
              : 'application/json';
        }
        const res = await fetch(`${server.url}${url}`, { method, headers, body: bodyText, signal: controller.signal });
        // A watch's stream never ends: its status is the answer.
        controller.abort();
        const status = res.status;
        const open = NEEDS[route]!.kind === 'public';
        const expected = who === 'none' ? (open ? 'passes' : 401) : ALLOWED[route]![who] ? 'passes' : 403;
        const got = status === 401 || status === 403 ? status : 'passes';
        if (got !== expected) wrong.push(`${route} as ${who}: ${status}, expected ${expected}`);
        if (status >= 500) wrong.push(`${route} as ${who}: ${status}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
