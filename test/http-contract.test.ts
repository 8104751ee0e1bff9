/**
 * The HTTP contract (src/http/contract.ts) as the server answers it: RFC 9110 conditional headers (If-Match `*` and
 * lists), batch ops that refuse unknown fields and invalid base64, keys sent as one `%2F`-encoded path segment — and
 * StoreClient sending exactly that.
 */
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { encodeKey, ifMatchOf, ifNoneMatchHits, parseEntityTags, pathOf, ROUTES } from '../src/http/contract.js';
import { openStore, type Store, StoreClient } from '../src/index.js';
import { codeOf } from './helpers.js';
import { checkInjected } from './setup/validate-responses.js';

const opened: { app: FastifyInstance; store: Store }[] = [];
afterEach(async () => {
  for (const { app, store } of opened.splice(0)) {
    await app.close();
    await store.close();
  }
});

async function setup() {
  const store = await openStore({ memory: true });
  const app = checkInjected(await buildApp({ store }));
  opened.push({ app, store });
  return { app, store };
}

const keyUrl = (key: string) => pathOf(ROUTES.key, { branch: 'main', key });

const put = (app: FastifyInstance, key: string, value: string, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'PUT',
    url: keyUrl(key),
    payload: value,
    headers: { 'content-type': 'application/octet-stream', ...headers },
  });

const batch = (app: FastifyInstance, body: unknown) =>
  app.inject({ method: 'POST', url: '/v1/branches/main/batch', payload: body } as InjectOptions);

const head = async (store: Store) => (await store.branches()).find((b) => b.name === 'main')!.head;

describe('conditional requests (RFC 9110 §13.1)', () => {
  it('If-Match: * matches any value, and fails on an absent key or a directory', async () => {
    const { app, store } = await setup();
    await put(app, 'k', 'one');
    await put(app, 'dir/x', 'x');
    const res = await put(app, 'k', 'two', { 'if-match': '*' });
    expect(res.statusCode, res.body).toBe(200);
    expect(await store.getText('k')).toBe('two');

    const before = await head(store);
    for (const key of ['absent', 'dir']) {
      const refused = await put(app, key, 'x', { 'if-match': '*' });
      expect(refused.statusCode, key).toBe(412);
      expect(refused.json().error).toMatchObject({ code: 'PRECONDITION_FAILED', data: { key, actual: null } });
    }
    expect((await app.inject({ method: 'DELETE', url: keyUrl('k'), headers: { 'if-match': '*' } })).statusCode).toBe(
      200,
    );
    expect((await app.inject({ method: 'DELETE', url: keyUrl('k'), headers: { 'if-match': '*' } })).statusCode).toBe(
      412,
    );
    expect(await head(store)).not.toBe(before);
  });

  it('an If-Match list matches when any of its tags does; weak tags never match', async () => {
    const { app, store } = await setup();
    const v1 = (await put(app, 'k', 'one')).json().oid as string;
    const other = 'f'.repeat(40);
    const res = await put(app, 'k', 'two', { 'if-match': `"${other}", "${v1}"` });
    expect(res.statusCode, res.body).toBe(200);
    const v2 = res.json().oid as string;
    // The same tag list again: v1 is gone, so nothing in it matches.
    const stale = await put(app, 'k', 'three', { 'if-match': `"${other}", "${v1}"` });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().error.data).toMatchObject({ key: 'k', expected: [other, v1], actual: v2 });
    // If-Match compares strongly: W/"v2" is not a match for "v2".
    expect((await put(app, 'k', 'three', { 'if-match': `W/"${v2}"` })).statusCode).toBe(412);
    expect(await store.getText('k')).toBe('two');
    // A malformed list is refused, not guessed at.
    const bad = await put(app, 'k', 'three', { 'if-match': '"unterminated' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('INVALID_ARGUMENT');
  });

  it('If-None-Match on a read: any tag of a list, or *, answers 304', async () => {
    const { app } = await setup();
    const oid = (await put(app, 'k', 'v')).json().oid as string;
    for (const tag of ['*', `"${'0'.repeat(40)}", "${oid}"`, `W/"${oid}"`]) {
      const res = await app.inject({ method: 'GET', url: keyUrl('k'), headers: { 'if-none-match': tag } });
      expect(res.statusCode, tag).toBe(304);
      expect(res.headers.etag).toBe(`"${oid}"`);
    }
  });

  it('parses entity-tag lists: quoted, weak, bare, *; refuses garbage', () => {
    expect(parseEntityTags(' "a" , W/"b",c ')).toEqual([
      { oid: 'a', weak: false },
      { oid: 'b', weak: true },
      { oid: 'c', weak: false },
    ]);
    expect(parseEntityTags('*')).toBe('*');
    expect(ifMatchOf('W/"a", "b"')).toEqual(['b']);
    expect(ifMatchOf(' * ')).toBe('*');
    expect(ifNoneMatchHits('W/"a"', 'a')).toBe(true);
    expect(ifNoneMatchHits(undefined, 'a')).toBe(false);
    for (const bad of ['', '"a" "b"', '"a', 'a,,b']) expect(() => parseEntityTags(bad), bad).toThrow(/entity tag/);
  });
});

describe('batch input', () => {
  it('refuses an unknown field inside an op with 400, writing nothing', async () => {
    const { app, store } = await setup();
    await put(app, 'seed', 's');
    const before = await head(store);
    for (const op of [
      { op: 'set', key: 'a', value: '1', ifmatch: 'x' },
      { op: 'set', key: 'a', value: '1', typo: true },
      { op: 'delete', key: 'seed', recursiv: true },
    ]) {
      const res = await batch(app, { ops: [{ op: 'set', key: 'ok', value: '1' }, op] });
      expect(res.statusCode, JSON.stringify(op)).toBe(400);
      expect(res.json().error.code).toBe('INVALID_ARGUMENT');
      expect(res.json().error.message).toMatch(/ops\/1.*additional properties/);
    }
    // Fields that belong to the other kind of op are refused too.
    const wrongKind = await batch(app, { ops: [{ op: 'delete', key: 'seed', value: 'x' }] });
    expect(wrongKind.statusCode).toBe(400);
    expect(wrongKind.json().error.message).toMatch(/op 0/);
    expect(await head(store)).toBe(before);
    expect(await codeOf(store.get('ok'))).toBe('NOT_FOUND');
  });

  it('refuses invalid base64 with 400 naming the op, instead of storing an empty value', async () => {
    const { app, store } = await setup();
    await put(app, 'seed', 's');
    const before = await head(store);
    for (const value of ['not base64!', 'abc', '====', 'YWJj\n']) {
      const res = await batch(app, {
        ops: [
          { op: 'set', key: 'fine', value: 'x' },
          { op: 'set', key: 'bin', value, encoding: 'base64' },
        ],
      });
      expect(res.statusCode, value).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'INVALID_ARGUMENT', data: { op: 1 } });
      expect(res.json().error.message).toMatch(/^op 1: .*base64/);
    }
    expect(await head(store)).toBe(before);
    // Valid base64 (padded or not needed) still works, byte-exact.
    const ok = await batch(app, {
      ops: [
        { op: 'set', key: 'bin', value: Buffer.from([0, 255, 1]).toString('base64'), encoding: 'base64' },
        { op: 'set', key: 'empty', value: '', encoding: 'base64' },
      ],
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect([...(await store.get('bin'))]).toEqual([0, 255, 1]);
    expect((await store.get('empty')).length).toBe(0);
  });
});

describe('keys in URLs', () => {
  it('takes a key as one %2F-encoded segment (as OpenAPI clients send it) or with raw slashes', async () => {
    const { app, store } = await setup();
    const res = await put(app, 'vm/web1/memory', '2048');
    expect(keyUrl('vm/web1/memory')).toBe('/v1/branches/main/keys/vm%2Fweb1%2Fmemory');
    expect(res.statusCode).toBe(201);
    expect(res.json().key).toBe('vm/web1/memory');
    const raw = await app.inject({ method: 'GET', url: '/v1/branches/main/keys/vm/web1/memory' });
    expect(raw.body).toBe('2048');
    const encoded = await app.inject({ method: 'GET', url: '/v1/branches/main/keys/vm%2Fweb1%2Fmemory' });
    expect(encoded.body).toBe('2048');
    expect(encoded.headers.etag).toBe(raw.headers.etag);
    // Every byte that means something in a URL survives the round trip.
    const odd = 'odd/sp ace/%25/?#/&=+/é';
    expect((await put(app, odd, 'x')).json().key).toBe(odd);
    expect(await store.getText(odd)).toBe('x');
    const listed = await app.inject({ method: 'GET', url: pathOf(ROUTES.list, { branch: 'main', key: 'odd' }) });
    expect(listed.json().entries.map((e: { key: string }) => e.key)).toEqual(['odd/sp ace']);
    // A branch with a slash, likewise.
    await store.createBranch('team/x');
    const onBranch = await app.inject({
      method: 'PUT',
      url: pathOf(ROUTES.key, { branch: 'team/x', key: 'a/b' }),
      payload: 'v',
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(onBranch.statusCode).toBe(201);
    expect(await store.getText('a/b', { branch: 'team/x' })).toBe('v');
  });

  it('StoreClient sends keys as %2F segments, and refuses the dot segments a URL cannot carry', async () => {
    const { app } = await setup();
    const seen: string[] = [];
    app.addHook('onRequest', async (request) => {
      seen.push(request.url);
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const client = new StoreClient(base);
    await client.set('vm/web1/memory', '2048', { branch: 'main' });
    expect(seen).toContain('/v1/branches/main/keys/vm%2Fweb1%2Fmemory');
    expect(await client.getText('vm/web1/memory', { branch: 'main' })).toBe('2048');
    expect(encodeKey('a/b c')).toBe('a%2Fb%20c');
    expect(await codeOf(client.set('..', 'x', { branch: 'main' }))).toBe('INVALID_KEY');
    expect(await codeOf(client.get('.', { branch: 'main' }))).toBe('INVALID_KEY');
    expect(await codeOf(client.set('k', 'x', { branch: '..' }))).toBe('INVALID_BRANCH');
  });

  it('StoreClient sends If-Match lists and * as the library takes them', async () => {
    const { app, store } = await setup();
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const client = new StoreClient(base);
    const v1 = await client.set('k', 'one', { branch: 'main' });
    await client.set('k', 'two', { branch: 'main', ifMatch: ['0'.repeat(40), v1.oid] });
    await client.set('k', 'three', { branch: 'main', ifMatch: '*' });
    expect(await codeOf(client.set('absent', 'x', { branch: 'main', ifMatch: '*' }))).toBe('PRECONDITION_FAILED');
    expect(await store.getText('k')).toBe('three');
  });
});
