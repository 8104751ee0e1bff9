/**
 * The HTTP API (server/): the route matrix through `app.inject()`, a few of the same over a real socket, many
 * concurrent clients, and graceful shutdown of the real `store serve` binary (needs `npm run build` first).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../server/app.js';
import { openStore, type Store } from '../src/index.js';
import { diskStore, git, gitSubjects, tempDir } from './helpers.js';
import { checkInjected } from './setup/validate-responses.js';

// Every route fastify actually registers, per app, seen by an onRoute hook installed before buildApp adds any route:
// the OpenAPI document is checked against this, not against the server's own bookkeeping.
const registered = vi.hoisted(() => new WeakMap<object, { method: string; url: string }[]>());
vi.mock('fastify', async (importOriginal) => {
  const mod = await importOriginal<typeof import('fastify')>();
  const factory = ((options: Parameters<typeof mod.default>[0]) => {
    const app = mod.default(options);
    const routes: { method: string; url: string }[] = [];
    registered.set(app, routes);
    app.addHook('onRoute', (route) => {
      // Routes of another protocol than the API (git's, under /git) are out of the document: kept apart.
      const outside = route.config?.openapi === false ? 'outside ' : '';
      for (const method of [route.method].flat()) routes.push({ method: `${outside}${method}`, url: route.url });
    });
    return app;
  }) as unknown as typeof mod.default;
  return { ...mod, default: factory, fastify: factory };
});

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));
const DIST_SERVER = fileURLToPath(new URL('../dist/server/main.js', import.meta.url));

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function setup(options: { bodyLimit?: number; disk?: boolean } = {}): Promise<{
  app: FastifyInstance;
  store: Store;
}> {
  const store = options.disk ? await diskStore() : await openStore({ memory: true });
  const app = checkInjected(await buildApp({ store, bodyLimit: options.bodyLimit }));
  apps.push(app);
  return { app, store };
}

/** git's blob id of some bytes. */
const blobOid = (bytes: Buffer | string): string => {
  const b = Buffer.from(bytes);
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
};

const HEX40 = /^[0-9a-f]{40}$/;
const keyUrl = (key: string, branch = 'main') => `/v1/branches/${encodeURIComponent(branch)}/keys/${key}`;

function put(app: FastifyInstance, key: string, value: Buffer | string, extra: Partial<InjectOptions> = {}) {
  return app.inject({
    method: 'PUT',
    url: keyUrl(key),
    payload: value,
    ...extra,
    headers: { 'content-type': 'application/octet-stream', ...extra.headers },
  });
}

/** PUTs and returns the response body ({commit, key, oid}), failing unless it was a 2xx. */
async function putOk(app: FastifyInstance, key: string, value: Buffer | string, branch = 'main') {
  const res = await app.inject({
    method: 'PUT',
    url: keyUrl(key, branch),
    payload: value,
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(res.statusCode, res.body).toBeGreaterThanOrEqual(200);
  expect(res.statusCode, res.body).toBeLessThan(300);
  return res.json() as { commit: string; key: string; oid: string };
}

/** Asserts the one error shape every failure has and returns `error`. */
function expectError(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as { error: { code: string; message: string; data?: Record<string, unknown> } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}

async function headOf(app: FastifyInstance, branch = 'main'): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/v1/branches' });
  const found = (res.json() as { name: string; head: string }[]).find((b) => b.name === branch);
  expect(found, `branch ${branch}`).toBeDefined();
  return found!.head;
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('HTTP API via inject', () => {
  it('GET /v1/health answers ok', async () => {
    const { app } = await setup();
    const res = await app.inject({ method: 'GET', url: '/v1/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('lists, creates (201) and deletes (204) branches, including a name with a slash', async () => {
    const { app } = await setup();
    const { commit: first } = await putOk(app, 'seed', 'x');

    let res = await app.inject({ method: 'GET', url: '/v1/branches' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([{ name: 'main', head: first, default: true }]);

    res = await app.inject({ method: 'POST', url: '/v1/branches', payload: { name: 'feature/x' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ name: 'feature/x', head: first, default: false });
    expectError(
      await app.inject({ method: 'POST', url: '/v1/branches', payload: { name: 'feature/x' } }),
      409,
      'BRANCH_EXISTS',
    );

    // Writes and reads on the slashed branch go through its URL-encoded name.
    const onFeature = await putOk(app, 'only/here', 'feature value', 'feature/x');
    res = await app.inject({ method: 'GET', url: '/v1/branches/feature%2Fx/keys/only/here' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('feature value');
    expectError(await app.inject({ method: 'GET', url: keyUrl('only/here') }), 404, 'NOT_FOUND');

    res = await app.inject({ method: 'GET', url: '/v1/branches' });
    expect(res.json()).toEqual(
      expect.arrayContaining([
        { name: 'main', head: first, default: true },
        { name: 'feature/x', head: onFeature.commit, default: false },
      ]),
    );
    expect(res.json()).toHaveLength(2);

    res = await app.inject({ method: 'DELETE', url: '/v1/branches/feature%2Fx' });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    res = await app.inject({ method: 'GET', url: '/v1/branches' });
    expect((res.json() as { name: string }[]).map((b) => b.name)).toEqual(['main']);
    expectError(await app.inject({ method: 'DELETE', url: '/v1/branches/feature%2Fx' }), 404, 'NOT_FOUND');
    expectError(await app.inject({ method: 'DELETE', url: '/v1/branches/main' }), 403, 'FORBIDDEN');
  });

  it('PUT answers 201 on create, 200 on update, with {commit,key,oid} and the ETag', async () => {
    const { app } = await setup();
    let res = await put(app, 'vm/web1/memory', '2048');
    expect(res.statusCode).toBe(201);
    const created = res.json();
    expect(Object.keys(created).sort()).toEqual(['changed', 'commit', 'key', 'oid']);
    expect(created.key).toBe('vm/web1/memory');
    expect(created.oid).toBe(blobOid('2048'));
    expect(created.commit).toMatch(HEX40);
    expect(res.headers.etag).toBe(`"${created.oid}"`);
    expect(await headOf(app)).toBe(created.commit);

    res = await put(app, 'vm/web1/memory', '4096');
    expect(res.statusCode).toBe(200);
    const updated = res.json();
    expect(updated.key).toBe('vm/web1/memory');
    expect(updated.oid).toBe(blobOid('4096'));
    expect(updated.commit).not.toBe(created.commit);
    expect(await headOf(app)).toBe(updated.commit);

    // A leading slash is accepted and dropped from the key.
    res = await put(app, '/vm/web1/memory', '8192');
    expect(res.statusCode).toBe(200);
    expect(res.json().key).toBe('vm/web1/memory');
  });

  it('GET returns the stored bytes exactly, with ETag and X-Store-Commit; JSON bodies are not parsed', async () => {
    const { app, store } = await setup();
    const bin = await putOk(app, 'blob/all-bytes', ALL_BYTES);
    expect(bin.oid).toBe(blobOid(ALL_BYTES));

    let res = await app.inject({ method: 'GET', url: keyUrl('blob/all-bytes') });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(Buffer.compare(res.rawPayload, ALL_BYTES)).toBe(0);
    expect(res.headers.etag).toBe(`"${bin.oid}"`);
    expect(res.headers['x-store-commit']).toBe(bin.commit);

    // Sent as JSON, stored as the bytes sent: spacing, key order and the trailing newline survive.
    const jsonText = '{ "b" : [1,2 ,3],\n  "a":"x" }\n';
    res = await app.inject({
      method: 'PUT',
      url: keyUrl('cfg/doc.json'),
      payload: jsonText,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().oid).toBe(blobOid(jsonText));
    res = await app.inject({ method: 'GET', url: keyUrl('cfg/doc.json') });
    expect(res.body).toBe(jsonText);
    expect(await store.getText('cfg/doc.json')).toBe(jsonText);

    // An empty body is an empty value.
    res = await app.inject({ method: 'PUT', url: keyUrl('empty') });
    expect(res.statusCode).toBe(201);
    res = await app.inject({ method: 'GET', url: keyUrl('empty') });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.length).toBe(0);

    expectError(await app.inject({ method: 'GET', url: keyUrl('no/such/key') }), 404, 'NOT_FOUND');
    // A directory is not a value.
    expectError(await app.inject({ method: 'GET', url: keyUrl('blob') }), 404, 'NOT_FOUND');
  });

  it('GET ?at= reads the past, and If-None-Match with the ETag gives 304', async () => {
    const { app } = await setup();
    const v1 = await putOk(app, 'k', 'one');
    const v2 = await putOk(app, 'k', 'two');

    let res = await app.inject({ method: 'GET', url: `${keyUrl('k')}?at=main~1` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('one');
    expect(res.headers.etag).toBe(`"${v1.oid}"`);
    expect(res.headers['x-store-commit']).toBe(v1.commit);
    res = await app.inject({ method: 'GET', url: `${keyUrl('k')}?at=${v1.commit}` });
    expect(res.body).toBe('one');
    res = await app.inject({ method: 'GET', url: keyUrl('k') });
    expect(res.body).toBe('two');
    expect(res.headers['x-store-commit']).toBe(v2.commit);

    res = await app.inject({ method: 'GET', url: keyUrl('k'), headers: { 'if-none-match': `"${v2.oid}"` } });
    expect(res.statusCode).toBe(304);
    expect(res.rawPayload.length).toBe(0);
    expect(res.headers.etag).toBe(`"${v2.oid}"`);
    // A list of tags matches when any does; a stale tag does not match.
    res = await app.inject({
      method: 'GET',
      url: keyUrl('k'),
      headers: { 'if-none-match': `"${v1.oid}", W/"${v2.oid}"` },
    });
    expect(res.statusCode).toBe(304);
    res = await app.inject({ method: 'GET', url: keyUrl('k'), headers: { 'if-none-match': `"${v1.oid}"` } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('two');
  });

  it('If-Match is compare-and-set (412 on a stale oid), If-None-Match: * is create-only', async () => {
    const { app } = await setup();
    const v1 = await putOk(app, 'cas', 'one');
    const v2 = await putOk(app, 'cas', 'two');

    let err = expectError(
      await put(app, 'cas', 'three', { headers: { 'if-match': `"${v1.oid}"` } }),
      412,
      'PRECONDITION_FAILED',
    );
    expect(err.data).toMatchObject({ key: 'cas', expected: v1.oid, actual: v2.oid });
    expect((await app.inject({ method: 'GET', url: keyUrl('cas') })).body).toBe('two');
    expect(await headOf(app)).toBe(v2.commit);

    let res = await put(app, 'cas', 'three', { headers: { 'if-match': `"${v2.oid}"` } });
    expect(res.statusCode).toBe(200);
    expect(res.json().oid).toBe(blobOid('three'));
    expect((await app.inject({ method: 'GET', url: keyUrl('cas') })).body).toBe('three');

    // If-Match on an absent key fails too.
    expectError(await put(app, 'absent', 'x', { headers: { 'if-match': `"${v2.oid}"` } }), 412, 'PRECONDITION_FAILED');

    res = await put(app, 'create-only', 'first', { headers: { 'if-none-match': '*' } });
    expect(res.statusCode).toBe(201);
    const before = await headOf(app);
    err = expectError(
      await put(app, 'create-only', 'second', { headers: { 'if-none-match': '*' } }),
      412,
      'PRECONDITION_FAILED',
    );
    expect(err.data).toMatchObject({ key: 'create-only' });
    expect((await app.inject({ method: 'GET', url: keyUrl('create-only') })).body).toBe('first');
    expect(await headOf(app)).toBe(before);
  });

  it('DELETE removes a key ({commit}), 404 when absent, ?recursive=true for a directory', async () => {
    const { app } = await setup();
    await putOk(app, 'gone', 'x');
    let res = await app.inject({ method: 'DELETE', url: keyUrl('gone') });
    expect(res.statusCode).toBe(200);
    const { commit } = res.json();
    expect(Object.keys(res.json())).toEqual(['commit', 'changed']);
    expect(commit).toMatch(HEX40);
    expect(await headOf(app)).toBe(commit);
    expectError(await app.inject({ method: 'GET', url: keyUrl('gone') }), 404, 'NOT_FOUND');
    expectError(await app.inject({ method: 'DELETE', url: keyUrl('gone') }), 404, 'NOT_FOUND');

    await putOk(app, 'dir/a', '1');
    await putOk(app, 'dir/sub/b', '2');
    await putOk(app, 'keep', '3');
    const before = await headOf(app);
    res = await app.inject({ method: 'DELETE', url: keyUrl('dir') });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('KEY_IS_DIRECTORY');
    expect(await headOf(app)).toBe(before);

    res = await app.inject({ method: 'DELETE', url: `${keyUrl('dir')}?recursive=true` });
    expect(res.statusCode).toBe(200);
    res = await app.inject({ method: 'GET', url: '/v1/branches/main/list?recursive=true' });
    expect((res.json() as { entries: { key: string }[] }).entries.map((e) => e.key)).toEqual(['keep']);
  });

  it('lists one level or recursively, at the root and below it', async () => {
    const { app } = await setup();
    const a = await putOk(app, 'a', '1');
    const b = await putOk(app, 'd/b', '2');
    const c = await putOk(app, 'd/e/c', '3');

    let res = await app.inject({ method: 'GET', url: '/v1/branches/main/list' });
    expect(res.statusCode).toBe(200);
    let body = res.json() as { commit: string; entries: { key: string; type: string; oid: string }[] };
    expect(body.commit).toBe(c.commit);
    expect(body.entries.map((e) => [e.key, e.type])).toEqual([
      ['a', 'value'],
      ['d', 'dir'],
    ]);
    expect(body.entries[0]!.oid).toBe(a.oid);

    res = await app.inject({ method: 'GET', url: '/v1/branches/main/list?recursive=true' });
    body = res.json();
    expect(body.entries).toEqual([
      { key: 'a', type: 'value', oid: a.oid },
      { key: 'd/b', type: 'value', oid: b.oid },
      { key: 'd/e/c', type: 'value', oid: c.oid },
    ]);

    res = await app.inject({ method: 'GET', url: '/v1/branches/main/list/d' });
    expect((res.json() as typeof body).entries.map((e) => [e.key, e.type])).toEqual([
      ['d/b', 'value'],
      ['d/e', 'dir'],
    ]);
    res = await app.inject({ method: 'GET', url: '/v1/branches/main/list/d?recursive=true' });
    expect((res.json() as typeof body).entries.map((e) => e.key)).toEqual(['d/b', 'd/e/c']);
    res = await app.inject({ method: 'GET', url: `/v1/branches/main/list/d?at=${b.commit}` });
    expect((res.json() as typeof body).entries.map((e) => e.key)).toEqual(['d/b']);

    // A value is not a directory; a missing directory is not found (git has no empty directories), as in the CLI.
    expectError(await app.inject({ method: 'GET', url: '/v1/branches/main/list/a' }), 409, 'KEY_IS_VALUE');
    expectError(await app.inject({ method: 'GET', url: '/v1/branches/main/list/nothing' }), 404, 'NOT_FOUND');
  });

  it('a batch is one commit (with a base64 op), all or nothing', async () => {
    const { app, store } = await setup({ disk: true });
    const seed = await putOk(app, 'old', 'remove me');
    const raw = Buffer.from([0, 255, 1, 254, 10, 13]);
    let res = await app.inject({
      method: 'POST',
      url: '/v1/branches/main/batch',
      payload: {
        ops: [
          { op: 'set', key: 'batch/text', value: 'héllo' },
          { op: 'set', key: 'batch/raw', value: raw.toString('base64'), encoding: 'base64' },
          { op: 'delete', key: 'old' },
        ],
      },
    });
    expect(res.statusCode, res.body).toBe(200);
    const { commit } = res.json();
    expect(commit).toMatch(HEX40);

    res = await app.inject({ method: 'GET', url: '/v1/branches/main/log?limit=10' });
    const log = res.json() as { commits: { id: string; message: string; parents: string[] }[] };
    expect(log.commits.map((c) => c.id)).toEqual([commit, seed.commit]);
    expect(log.commits[0]!.message).toMatch(/^batch: 3 changes/);
    expect(log.commits[0]!.parents).toEqual([seed.commit]);
    expect(gitSubjects(store.dir)).toEqual(['batch: 3 changes', 'set old']);

    expect((await app.inject({ method: 'GET', url: keyUrl('batch/text') })).body).toBe('héllo');
    expect(Buffer.compare((await app.inject({ method: 'GET', url: keyUrl('batch/raw') })).rawPayload, raw)).toBe(0);
    expectError(await app.inject({ method: 'GET', url: keyUrl('old') }), 404, 'NOT_FOUND');

    // One failing op (a stale If-Match) fails the whole batch and writes nothing.
    res = await app.inject({
      method: 'POST',
      url: '/v1/branches/main/batch',
      payload: {
        ops: [
          { op: 'set', key: 'batch/new', value: 'x' },
          { op: 'set', key: 'batch/text', value: 'y', ifMatch: blobOid('not it') },
        ],
      },
    });
    expectError(res, 412, 'PRECONDITION_FAILED');
    expect(await headOf(app)).toBe(commit);
    expectError(await app.inject({ method: 'GET', url: keyUrl('batch/new') }), 404, 'NOT_FOUND');

    // A set without a value is refused before anything is written.
    res = await app.inject({
      method: 'POST',
      url: '/v1/branches/main/batch',
      payload: { ops: [{ op: 'set', key: 'v' }] },
    });
    expectError(res, 400, 'INVALID_ARGUMENT');
    expect(await headOf(app)).toBe(commit);
  });

  it('merges a branch (200 {commit}) and reports a conflict as 409 with data.conflicts', async () => {
    const { app } = await setup();
    await putOk(app, 'shared', 'base');
    expect((await app.inject({ method: 'POST', url: '/v1/branches', payload: { name: 'feature' } })).statusCode).toBe(
      201,
    );
    const theirs = await putOk(app, 'from/feature', 'f', 'feature');
    const ours = await putOk(app, 'from/main', 'm');

    let res = await app.inject({ method: 'POST', url: '/v1/branches/main/merge', payload: { from: 'feature' } });
    expect(res.statusCode, res.body).toBe(200);
    const merged = res.json() as { commit: string; outcome: string };
    expect(merged.commit).toMatch(HEX40);
    expect(merged.outcome).toBe('merged');
    expect(await headOf(app)).toBe(merged.commit);
    res = await app.inject({ method: 'GET', url: `/v1/commits/${merged.commit}` });
    expect(res.json().parents).toEqual([ours.commit, theirs.commit]);
    expect((await app.inject({ method: 'GET', url: keyUrl('from/feature') })).body).toBe('f');
    expect((await app.inject({ method: 'GET', url: keyUrl('from/main') })).body).toBe('m');

    // Both sides change the same key differently.
    await app.inject({ method: 'POST', url: '/v1/branches', payload: { name: 'other' } });
    await putOk(app, 'shared', 'theirs', 'other');
    const head = (await putOk(app, 'shared', 'ours')).commit;
    res = await app.inject({ method: 'POST', url: '/v1/branches/main/merge', payload: { from: 'other' } });
    const err = expectError(res, 409, 'CONFLICT');
    expect(err.data?.conflicts).toEqual([
      expect.objectContaining({
        key: 'shared',
        kind: 'both-modified',
        base: blobOid('base'),
        ours: blobOid('ours'),
        theirs: blobOid('theirs'),
      }),
    ]);
    expect(await headOf(app)).toBe(head);
    expect((await app.inject({ method: 'GET', url: keyUrl('shared') })).body).toBe('ours');

    expectError(
      await app.inject({ method: 'POST', url: '/v1/branches/main/merge', payload: { from: 'nope' } }),
      404,
      'NOT_FOUND',
    );
  });

  it('pages the log with limit and cursor, and filters it by key', async () => {
    const { app } = await setup();
    const c1 = await putOk(app, 'k', '1');
    const c2 = await putOk(app, 'other', 'x');
    const c3 = await putOk(app, 'k', '2');
    const c4 = await putOk(app, 'other', 'y');
    const c5 = await putOk(app, 'k', '3');
    type Page = { commits: { id: string; message: string; time: string; parents: string[] }[]; next: string | null };

    let res = await app.inject({ method: 'GET', url: '/v1/branches/main/log?limit=2' });
    expect(res.statusCode).toBe(200);
    let page = res.json() as Page;
    expect(page.commits.map((c) => c.id)).toEqual([c5.commit, c4.commit]);
    expect(page.commits[0]!.message).toMatch(/^set k\n/);
    expect(page.commits[0]!.parents).toEqual([c4.commit]);
    expect(Number.isNaN(Date.parse(page.commits[0]!.time))).toBe(false);
    expect(page.next).toBe(c3.commit);

    res = await app.inject({ method: 'GET', url: `/v1/branches/main/log?limit=2&cursor=${page.next}` });
    page = res.json();
    expect(page.commits.map((c) => c.id)).toEqual([c3.commit, c2.commit]);
    expect(page.next).toBe(c1.commit);

    res = await app.inject({ method: 'GET', url: `/v1/branches/main/log?limit=2&cursor=${page.next}` });
    page = res.json();
    expect(page.commits.map((c) => c.id)).toEqual([c1.commit]);
    expect(page.next).toBeNull();

    res = await app.inject({ method: 'GET', url: '/v1/branches/main/log' });
    page = res.json();
    expect(page.commits).toHaveLength(5);
    expect(page.next).toBeNull();

    res = await app.inject({ method: 'GET', url: '/v1/branches/main/log?key=k' });
    page = res.json();
    expect(page.commits.map((c) => c.id)).toEqual([c5.commit, c3.commit, c1.commit]);
    res = await app.inject({ method: 'GET', url: '/v1/branches/main/log?key=other' });
    expect((res.json() as Page).commits.map((c) => c.id)).toEqual([c4.commit, c2.commit]);

    expectError(await app.inject({ method: 'GET', url: '/v1/branches/main/log?limit=0' }), 400, 'INVALID_ARGUMENT');
    expectError(await app.inject({ method: 'GET', url: '/v1/branches/nope/log' }), 404, 'NOT_FOUND');
  });

  it('GET /v1/commits/:rev has the changes, /v1/diff compares revisions, revert undoes a commit', async () => {
    const { app } = await setup();
    const c1 = await putOk(app, 'k', '1');
    const c2 = await putOk(app, 'k', '2');
    const c3 = await putOk(app, 'n', 'new');

    let res = await app.inject({ method: 'GET', url: `/v1/commits/${c2.commit}` });
    expect(res.statusCode).toBe(200);
    let commit = res.json();
    expect(commit.id).toBe(c2.commit);
    expect(commit.parents).toEqual([c1.commit]);
    expect(commit.message).toMatch(/^set k/);
    expect(commit.changes).toEqual([{ key: 'k', kind: 'modified', before: c1.oid, after: c2.oid }]);

    res = await app.inject({ method: 'GET', url: '/v1/commits/main~2' });
    commit = res.json();
    expect(commit.id).toBe(c1.commit);
    expect(commit.changes).toEqual([{ key: 'k', kind: 'added', before: null, after: c1.oid }]);
    res = await app.inject({ method: 'GET', url: `/v1/commits/${c3.commit.slice(0, 10)}` });
    expect(res.json().id).toBe(c3.commit);
    expectError(await app.inject({ method: 'GET', url: `/v1/commits/${'0'.repeat(40)}` }), 404, 'NOT_FOUND');

    res = await app.inject({ method: 'GET', url: `/v1/diff?from=${c1.commit}&to=${c3.commit}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      changes: [
        { key: 'k', kind: 'modified', before: c1.oid, after: c2.oid },
        { key: 'n', kind: 'added', before: null, after: c3.oid },
      ],
    });
    res = await app.inject({ method: 'GET', url: '/v1/diff?from=main~1' });
    expect(res.json().changes).toEqual([{ key: 'n', kind: 'added', before: null, after: c3.oid }]);
    expectError(await app.inject({ method: 'GET', url: '/v1/diff' }), 400, 'INVALID_ARGUMENT');

    res = await app.inject({ method: 'POST', url: '/v1/branches/main/revert', payload: { commit: c2.commit } });
    expect(res.statusCode, res.body).toBe(200);
    const reverted = res.json().commit as string;
    expect(reverted).toMatch(HEX40);
    expect(await headOf(app)).toBe(reverted);
    expect((await app.inject({ method: 'GET', url: keyUrl('k') })).body).toBe('1');
    expect((await app.inject({ method: 'GET', url: keyUrl('n') })).body).toBe('new');
    res = await app.inject({ method: 'GET', url: `/v1/commits/${reverted}` });
    expect(res.json().message).toMatch(new RegExp(`^revert ${c2.commit}`));
    expect(res.json().changes).toEqual([{ key: 'k', kind: 'modified', before: c2.oid, after: c1.oid }]);

    // Reverting c1 now conflicts: a later commit (the revert) changed k again.
    await putOk(app, 'k', 'later');
    res = await app.inject({ method: 'POST', url: '/v1/branches/main/revert', payload: { commit: c1.commit } });
    expectError(res, 409, 'CONFLICT');
  });

  it('every client error has the {"error":{"code","message"}} shape and the status of its code', async () => {
    const { app } = await setup();
    await putOk(app, 'dir/leaf', 'v');
    const head = await headOf(app);

    expectError(await put(app, 'a//b', 'x'), 400, 'INVALID_KEY');
    expectError(await app.inject({ method: 'GET', url: keyUrl('a//b') }), 400, 'INVALID_KEY');
    expectError(await put(app, 'x/.git/y', 'x'), 400, 'INVALID_KEY');
    expectError(await app.inject({ method: 'GET', url: '/v1/branches/a..b/keys/x' }), 400, 'INVALID_BRANCH');
    expectError(await put(app, 'x', 'x', { url: '/v1/branches/a..b/keys/x' }), 400, 'INVALID_BRANCH');
    expectError(
      await app.inject({ method: 'POST', url: '/v1/branches', payload: { name: 'a..b' } }),
      400,
      'INVALID_BRANCH',
    );

    // Malformed JSON, and JSON that fails a schema.
    expectError(
      await app.inject({
        method: 'POST',
        url: '/v1/branches',
        payload: '{"name": "x"',
        headers: { 'content-type': 'application/json' },
      }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await app.inject({
        method: 'POST',
        url: '/v1/branches/main/batch',
        payload: '{"ops": [',
        headers: { 'content-type': 'application/json' },
      }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await app.inject({ method: 'POST', url: '/v1/branches/main/batch', payload: { message: 'no ops' } }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await app.inject({ method: 'POST', url: '/v1/branches/main/batch', payload: { ops: [] } }),
      400,
      'INVALID_ARGUMENT',
    );
    expectError(
      await app.inject({ method: 'POST', url: '/v1/branches/main/merge', payload: { into: 'x' } }),
      400,
      'INVALID_ARGUMENT',
    );

    // Unknown routes and methods are JSON 404s.
    let err = expectError(await app.inject({ method: 'GET', url: '/v1/nope?x=1' }), 404, 'NOT_FOUND');
    expect(err.message).toContain('/v1/nope');
    expectError(await app.inject({ method: 'PATCH', url: '/v1/health' }), 404, 'NOT_FOUND');

    // A value where a directory is, and a key below a value.
    err = expectError(await put(app, 'dir', 'x'), 409, 'KEY_IS_DIRECTORY');
    expectError(await put(app, 'dir/leaf/below', 'x'), 409, 'KEY_IS_VALUE');

    // On writes, If-None-Match takes only "*".
    expectError(await put(app, 'k', 'x', { headers: { 'if-none-match': '"abc"' } }), 400, 'INVALID_ARGUMENT');
    expectError(await put(app, 'k', 'x', { headers: { 'x-store-author': 'no email here' } }), 400, 'INVALID_ARGUMENT');

    // None of these wrote anything.
    expect(await headOf(app)).toBe(head);
  });

  it('refuses a body over the limit with 413 TOO_LARGE and accepts one under it', async () => {
    const { app } = await setup({ bodyLimit: 1024 });
    const tooLarge = expectError(await put(app, 'big', Buffer.alloc(2000, 7)), 413, 'TOO_LARGE');
    // It names the limit and the option that sets it.
    expect(tooLarge.message).toMatch(/limit of 1024 bytes \(--body-limit\)/);
    expectError(
      await app.inject({
        method: 'POST',
        url: '/v1/branches/main/batch',
        payload: { ops: [{ op: 'set', key: 'big', value: 'x'.repeat(2000) }] },
      }),
      413,
      'TOO_LARGE',
    );
    expectError(await app.inject({ method: 'GET', url: keyUrl('big') }), 404, 'NOT_FOUND');
    const res = await put(app, 'small', Buffer.alloc(1000, 7));
    expect(res.statusCode).toBe(201);
  });

  it('answers unexpected failures with 500 INTERNAL and no stack trace or internals', async () => {
    const { app, store } = await setup();
    await putOk(app, 'k', 'v');
    const secret = 'boom-secret-detail';
    store.branches = async () => {
      throw new Error(secret);
    };
    store.stat = async () => {
      const e = new TypeError(`${secret} in ${fileURLToPath(import.meta.url)}`);
      throw e;
    };
    for (const url of ['/v1/branches', keyUrl('k')]) {
      const res = await app.inject({ method: 'GET', url });
      const err = expectError(res, 500, 'INTERNAL');
      expect(err.data).toEqual({});
      expect(res.body).not.toContain(secret);
      expect(res.body).not.toMatch(/\bat \S+ \(|\.ts:\d+|\.js:\d+|stack/i);
      expect(res.body).not.toContain(path.dirname(fileURLToPath(import.meta.url)));
    }
  });

  it('serves an OpenAPI 3.1 document listing exactly the registered routes, and /docs as HTML', async () => {
    const { app } = await setup();
    const contract = [
      'GET /v1/health',
      'GET /v1/branches',
      'POST /v1/branches',
      'DELETE /v1/branches/{branch}',
      'GET /v1/branches/{branch}/keys/{key}',
      'PUT /v1/branches/{branch}/keys/{key}',
      'DELETE /v1/branches/{branch}/keys/{key}',
      'GET /v1/branches/{branch}/list',
      'GET /v1/branches/{branch}/list/{prefix}',
      'POST /v1/branches/{branch}/batch',
      'POST /v1/branches/{branch}/merge',
      'POST /v1/branches/{branch}/merge/preview',
      'GET /v1/branches/{branch}/log',
      'GET /v1/commits/{rev}',
      'GET /v1/diff',
      'POST /v1/branches/{branch}/revert',
      'POST /v1/gc',
      'POST /v1/branches/{branch}/compact',
      'POST /v1/branches/{branch}/bisect',
      'GET /v1/branches/{branch}/validate',
      'GET /v1/branches/{branch}/blame',
      'GET /v1/branches/{branch}/blame/{prefix}',
      'GET /metrics',
      'GET /v1/openapi.json',
      'GET /docs',
      // transactions and watches
      'POST /v1/branches/{branch}/transactions',
      'GET /v1/transactions/{id}/keys/{key}',
      'PUT /v1/transactions/{id}/keys/{key}',
      'DELETE /v1/transactions/{id}/keys/{key}',
      'GET /v1/transactions/{id}/list',
      'GET /v1/transactions/{id}/list/{prefix}',
      'POST /v1/transactions/{id}/commit',
      'DELETE /v1/transactions/{id}',
      'GET /v1/branches/{branch}/watch',
      // remotes and replication
      'GET /v1/remotes',
      'PUT /v1/remotes/{remote}',
      'DELETE /v1/remotes/{remote}',
      'POST /v1/remotes/{remote}/fetch',
      'POST /v1/remotes/{remote}/pull',
      'POST /v1/remotes/{remote}/push',
      'GET /v1/replication',
      'POST /v1/replication/branches/{branch}/objects',
      // tokens (an admin's)
      'GET /v1/tokens',
      'POST /v1/tokens',
      'DELETE /v1/tokens/{name}',
      'GET /v1/me',
    ].sort();

    const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { summary: string; responses: Record<string, unknown> }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    expect(doc.info.version).toBeTruthy();
    const documented = Object.entries(doc.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    expect(documented).toEqual(contract);
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        expect(op.summary).toBeTruthy();
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      }
    }

    // Every route fastify registered is documented, and vice versa (HEAD is not served).
    const wildcard = (url: string) => (/\/(list|blame)\/\*$/.test(url) ? '{prefix}' : '{key}');
    const toOpenApi = (url: string) =>
      url
        .split('/')
        .map((part) => (part.startsWith(':') ? `{${part.slice(1)}}` : part === '*' ? wildcard(url) : part))
        .join('/');
    const all = registered.get(app);
    expect(all, 'the fastify mock saw the app being built').toBeDefined();
    const routes = all!.filter((r) => !r.method.startsWith('outside '));
    const served = routes.map((r) => `${r.method} ${toOpenApi(r.url)}`).sort();
    expect(served).toEqual(contract);
    // Only git's smart HTTP protocol (server/git/) and the web UI's page and files (server/ui.ts) are served outside
    // the document.
    expect(all!.filter((r) => r.method.startsWith('outside ')).map((r) => `${r.method} ${r.url}`)).toEqual([
      'outside GET /git/*',
      'outside POST /git/*',
      'outside GET /',
      'outside GET /ui/*',
    ]);
    for (const pair of contract) {
      const [method, url] = pair.split(' ') as [string, string];
      const fastifyUrl = url.replace(/\{(key|prefix)\}/, '*').replace(/\{(\w+)\}/g, ':$1');
      expect(app.hasRoute({ method: method as 'GET', url: fastifyUrl }), pair).toBe(true);
    }

    const docs = await app.inject({ method: 'GET', url: '/docs' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-type']).toMatch(/^text\/html/);
    expect(docs.body).toMatch(/^<!doctype html>/i);
    for (const p of Object.keys(doc.paths)) expect(docs.body).toContain(`<code>${p}</code>`);
  });

  it('exports Prometheus metrics: requests by route and status, commits made', async () => {
    const { app } = await setup({ disk: true });
    const scrape = async () => {
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      return res.body;
    };
    const sample = (text: string, name: string, labels = ''): number | undefined => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };

    const first = await scrape();
    expect(first).toContain('# TYPE gitstore_http_requests_total counter');
    expect(first).toContain('# TYPE gitstore_commits_total counter');
    expect(sample(first, 'gitstore_commits_total')).toBe(0);
    expect(sample(first, 'gitstore_http_requests_total', '{method="GET",route="/v1/health",status="200"}')).toBe(
      undefined,
    );

    for (let i = 0; i < 3; i++) await app.inject({ method: 'GET', url: '/v1/health' });
    await putOk(app, 'a', '1');
    await putOk(app, 'a', '2');
    await app.inject({
      method: 'POST',
      url: '/v1/branches/main/batch',
      payload: { ops: [{ op: 'set', key: 'b', value: '1' }] },
    });
    await app.inject({ method: 'GET', url: keyUrl('missing') });
    // Concurrent writes are made durable together (several per batch) but each is still one commit.
    await Promise.all(Array.from({ length: 30 }, (_, i) => putOk(app, `many/k${i}`, String(i))));

    const text = await scrape();
    expect(sample(text, 'gitstore_http_requests_total', '{method="GET",route="/v1/health",status="200"}')).toBe(3);
    expect(
      sample(text, 'gitstore_http_requests_total', '{method="PUT",route="/v1/branches/:branch/keys/*",status="201"}'),
    ).toBe(31);
    expect(
      sample(text, 'gitstore_http_requests_total', '{method="PUT",route="/v1/branches/:branch/keys/*",status="200"}'),
    ).toBe(1);
    expect(
      sample(text, 'gitstore_http_requests_total', '{method="GET",route="/v1/branches/:branch/keys/*",status="404"}'),
    ).toBe(1);
    expect(sample(text, 'gitstore_http_requests_total', '{method="GET",route="/metrics",status="200"}')).toBe(1);
    expect(sample(text, 'gitstore_commits_total')).toBe(33);
    expect(sample(text, 'gitstore_http_request_duration_seconds_count')).toBeGreaterThanOrEqual(38);
    expect(sample(text, 'gitstore_write_batch_size_sum')).toBe(33);
    const log = await app.inject({ method: 'GET', url: '/v1/branches/main/log?limit=1000' });
    expect(log.json().commits).toHaveLength(33);
  });
});

// ---- over a real socket ------------------------------------------------------------------------------------------

async function listen(options: { disk?: boolean } = {}) {
  const { app, store } = await setup(options);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, store, base };
}

async function putFetch(base: string, key: string, body: Buffer | string, headers: Record<string, string> = {}) {
  return fetch(`${base}${keyUrl(key)}`, {
    method: 'PUT',
    body,
    headers: { 'content-type': 'application/octet-stream', ...headers },
  });
}

describe('HTTP API over a socket', () => {
  it('round-trips binary bytes, does If-Match 412, and reports a merge conflict as 409', async () => {
    const { base } = await listen();

    let res = await putFetch(base, 'bin/all', ALL_BYTES);
    expect(res.status).toBe(201);
    const created = (await res.json()) as { oid: string; commit: string };
    expect(created.oid).toBe(blobOid(ALL_BYTES));
    res = await fetch(`${base}${keyUrl('bin/all')}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${created.oid}"`);
    expect(res.headers.get('x-store-commit')).toBe(created.commit);
    expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), ALL_BYTES)).toBe(0);

    res = await putFetch(base, 'bin/all', 'replaced');
    expect(res.status).toBe(200);
    const fresh = ((await res.json()) as { oid: string }).oid;
    res = await putFetch(base, 'bin/all', 'lost update', { 'if-match': `"${created.oid}"` });
    expect(res.status).toBe(412);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('PRECONDITION_FAILED');
    res = await putFetch(base, 'bin/all', 'good update', { 'if-match': `"${fresh}"` });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(await (await fetch(`${base}${keyUrl('bin/all')}`)).text()).toBe('good update');

    res = await fetch(`${base}/v1/branches`, {
      method: 'POST',
      body: JSON.stringify({ name: 'side' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(201);
    await res.arrayBuffer();
    // Both branches now change the same key differently.
    res = await fetch(`${base}${keyUrl('bin/all', 'side')}`, { method: 'PUT', body: 'side value' });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    res = await putFetch(base, 'bin/all', 'main value');
    expect(res.status).toBe(200);
    const mainHead = ((await res.json()) as { commit: string }).commit;
    res = await fetch(`${base}/v1/branches/main/merge`, {
      method: 'POST',
      body: JSON.stringify({ from: 'side' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as {
      error: { code: string; data: { conflicts: { key: string; kind: string }[] } };
    };
    expect(body.error.code).toBe('CONFLICT');
    expect(body.error.data.conflicts).toEqual([expect.objectContaining({ key: 'bin/all', kind: 'both-modified' })]);
    const branches = (await (await fetch(`${base}/v1/branches`)).json()) as { name: string; head: string }[];
    expect(branches.find((b) => b.name === 'main')?.head).toBe(mainHead);
  });

  it('50 concurrent clients: every write answered 2xx, readable, one commit each, fsck clean', async () => {
    const { store, base } = await listen({ disk: true });
    const seed = await putFetch(base, 'seed', 'x');
    expect(seed.status).toBe(201);
    await seed.arrayBuffer();
    const count = () => Number(git(['--git-dir', store.dir, 'rev-list', '--first-parent', '--count', 'main']));
    const before = count();
    expect(before).toBe(1);

    const CLIENTS = 50;
    const EACH = 10;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let i = 0; i < EACH; i++) {
          const res = await putFetch(base, `client${c}/k${i}`, `value ${c}.${i}`);
          statuses.push(res.status);
          await res.arrayBuffer();
        }
      }),
    );
    expect(statuses).toHaveLength(CLIENTS * EACH);
    expect(statuses.filter((s) => s < 200 || s >= 300)).toEqual([]);

    const reads = await Promise.all(
      Array.from({ length: CLIENTS * EACH }, async (_, n) => {
        const c = Math.floor(n / EACH);
        const i = n % EACH;
        const res = await fetch(`${base}${keyUrl(`client${c}/k${i}`)}`);
        return { status: res.status, text: await res.text(), want: `value ${c}.${i}` };
      }),
    );
    for (const r of reads) {
      expect(r.status).toBe(200);
      expect(r.text).toBe(r.want);
    }

    expect(count()).toBe(before + CLIENTS * EACH);
    // The new first-parent commits are exactly one `set` per write, each client's in the order it wrote them.
    const subjects = gitSubjects(store.dir)
      .slice(0, CLIENTS * EACH)
      .reverse();
    expect(new Set(subjects).size).toBe(CLIENTS * EACH);
    for (let c = 0; c < CLIENTS; c++) {
      const mine = subjects.filter((s) => s.startsWith(`set client${c}/`));
      expect(mine).toEqual(Array.from({ length: EACH }, (_, i) => `set client${c}/k${i}`));
    }
    git(['--git-dir', store.dir, 'fsck', '--strict', '--no-dangling']);
  });
});

// ---- the real binary -------------------------------------------------------------------------------------------

/** Starts `store serve` on a free port; resolves with its URL (the first stdout line). */
function startServer(repo: string): Promise<{
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}> {
  const child = spawn(process.execPath, [BIN, 'serve', '--repo', repo, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, url: out.slice(0, nl).trim(), stderr: () => err, exited });
    });
    void exited.then(({ code }) => reject(new Error(`store serve exited (${code}) before printing its URL: ${err}`)));
  });
}

interface Outcome {
  i: number;
  /** 0: no HTTP answer (the connection failed; `body` is its error code). */
  status: number;
  body: string;
}

/** A PUT over fetch that never throws: a connection failure is an outcome too. */
async function tryPut(url: string, i: number, body: string | ReadableStream<Uint8Array>, keepAlive: boolean) {
  try {
    const res = await fetch(`${url}${keyUrl(`inflight/k${i}`)}`, {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream', ...(keepAlive ? {} : { connection: 'close' }) },
      ...(typeof body === 'string' ? {} : { duplex: 'half' }),
    } as RequestInit);
    return { i, status: res.status, body: await res.text() };
  } catch (e) {
    const cause = (e as Error & { cause?: { code?: string } }).cause;
    return { i, status: 0, body: cause?.code ?? String(cause ?? e) };
  }
}

/** Waits up to `ms` for the process to end; SIGKILLs it after that. */
async function exitWithin(
  server: Awaited<ReturnType<typeof startServer>>,
  ms: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    server.exited,
    new Promise<'still running'>((resolve) => {
      timer = setTimeout(() => resolve('still running'), ms);
    }),
  ]);
  clearTimeout(timer);
  if (exit === 'still running') {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  return exit;
}

/** Every acknowledged PUT is in the repository, on main's history, and the repository is sound. */
async function expectAcknowledgedDurable(repo: string, outcomes: Outcome[]) {
  const acked = outcomes.filter((o) => o.status >= 200 && o.status < 300);
  const store = await openStore({ fs, dir: repo });
  for (const o of acked) {
    const { commit } = JSON.parse(o.body) as { commit: string };
    expect(await store.getText(`inflight/k${o.i}`)).toBe(`value ${o.i}`);
    git(['--git-dir', repo, 'merge-base', '--is-ancestor', commit, 'main']);
  }
  git(['--git-dir', repo, 'fsck', '--strict', '--no-dangling']);
  return acked;
}

async function expectRefused(url: string) {
  const after = await fetch(`${url}/v1/health`).then(
    () => 'answered',
    (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.message,
  );
  expect(after).toBe('ECONNREFUSED');
}

describe('store serve: graceful shutdown', () => {
  beforeAll(() => {
    if (!fs.existsSync(DIST_SERVER)) {
      throw new Error(`${DIST_SERVER} is missing: run \`npm run build\` before these tests`);
    }
  });

  it('SIGTERM amid 100 concurrent PUTs: exits 0, every acknowledged write is in the repository, then refuses', async () => {
    const repo = path.join(tempDir(), 'served.git');
    const server = await startServer(repo);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const N = 100;
    let settled = 0;
    let pendingAtSignal = -1;
    const outcomes = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const o = await tryPut(server.url, i, `value ${i}`, false);
        settled++;
        if (pendingAtSignal < 0) {
          // On the first answer: the other requests are still in flight.
          pendingAtSignal = N - settled;
          server.child.kill('SIGTERM');
        }
        return o;
      }),
    );
    const exit = await exitWithin(server, 60_000);
    expect(exit, server.stderr()).toEqual({ code: 0, signal: null });
    expect(server.stderr()).toContain('SIGTERM');
    expect(pendingAtSignal).toBeGreaterThan(0);

    // Each request was acknowledged, or its connection was refused or reset before the server read it; none failed
    // inside, and none was refused with a 503 (a request that reached the server while closing is still served).
    for (const o of outcomes) {
      if (o.status === 0) expect(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'UND_ERR_SOCKET']).toContain(o.body);
      else expect(o.status, o.body).toBeGreaterThanOrEqual(200);
      if (o.status !== 0) expect(o.status, o.body).toBeLessThan(300);
    }
    const acked = await expectAcknowledgedDurable(repo, outcomes);
    expect(acked.length).toBeGreaterThan(0);
    await expectRefused(server.url);
  });

  it('SIGTERM while 50 PUTs are mid-body: every one is still answered 2xx and durable, then the process exits 0', async () => {
    const repo = path.join(tempDir(), 'served.git');
    const server = await startServer(repo);
    const N = 50;
    // Each PUT sends its headers and half its body now and the rest only after SIGTERM: the server has begun every
    // request before it is told to stop, so a graceful stop must finish them all.
    const rest: (() => void)[] = [];
    const pending = Array.from({ length: N }, (_, i) => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(Buffer.from('value '));
          rest.push(() => {
            controller.enqueue(Buffer.from(String(i)));
            controller.close();
          });
        },
      });
      return tryPut(server.url, i, body, false);
    });
    // Give the server time to read every request's headers (its answer to a later request is a barrier of sorts).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await (await fetch(`${server.url}/v1/health`, { headers: { connection: 'close' } })).json()).toEqual({
      status: 'ok',
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.child.exitCode).toBeNull();
    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Stopped listening, but still finishing what it began.
    expect(server.child.exitCode).toBeNull();
    expect(server.stderr()).toContain('SIGTERM');
    for (const send of rest) send();
    const outcomes = await Promise.all(pending);

    expect(outcomes.map((o) => o.status)).toEqual(outcomes.map(() => 201));
    const exit = await exitWithin(server, 60_000);
    expect(exit, server.stderr()).toEqual({ code: 0, signal: null });
    expect(await expectAcknowledgedDurable(repo, outcomes)).toHaveLength(N);
    expect(gitSubjects(repo)).toHaveLength(N);
    await expectRefused(server.url);
  });

  // With keep-alive clients (fetch's default), a connection whose request was in flight at SIGTERM stays open once
  // answered; the server must tell such clients to hang up and sweep idle connections, or it lingers until fastify's
  // 72 s keepAliveTimeout.
  it('SIGTERM with keep-alive clients in flight: exits promptly once the in-flight requests are answered', async () => {
    const repo = path.join(tempDir(), 'served.git');
    const server = await startServer(repo);
    const N = 50;
    let pendingAtSignal = -1;
    let settled = 0;
    const outcomes = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const o = await tryPut(server.url, i, `value ${i}`, true);
        settled++;
        if (pendingAtSignal < 0) {
          pendingAtSignal = N - settled;
          server.child.kill('SIGTERM');
        }
        return o;
      }),
    );
    expect(pendingAtSignal).toBeGreaterThan(0);
    expect(outcomes.some((o) => o.status === 201)).toBe(true);
    expect(await exitWithin(server, 5_000), server.stderr()).toEqual({ code: 0, signal: null });
  });
});
