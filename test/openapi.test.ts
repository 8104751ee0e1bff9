/**
 * /v1/openapi.json: a valid OpenAPI 3.1 document (Redocly's linter, recommended rules) that describes what runs —
 * and the response validator the HTTP tests run their traffic through (test/setup/validate-responses.ts) does
 * catch an answer that differs from it.
 */
import { createConfig, lintFromString } from '@redocly/openapi-core';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { openStore, type Store } from '../src/index.js';
import { type Exchange, ResponseValidator } from './openapi-validator.js';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { responses: Record<string, unknown> };
};
type Operation = {
  operationId: string;
  parameters?: { name: string; in: string; description?: string }[];
  responses: Record<string, { $ref?: string; headers?: Record<string, { required: boolean }>; content?: object }>;
};

const opened: { app: FastifyInstance; store: Store }[] = [];
afterEach(async () => {
  for (const { app, store } of opened.splice(0)) {
    await app.close();
    await store.close();
  }
});

async function served(): Promise<{ app: FastifyInstance; doc: Doc; text: string }> {
  const store = await openStore({ memory: true });
  const app = await buildApp({ store });
  opened.push({ app, store });
  const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
  return { app, doc: res.json() as Doc, text: res.body };
}

const exchange = async (app: FastifyInstance, method: string, url: string, payload?: string): Promise<Exchange> => {
  const res = await app.inject({
    method: method as 'GET',
    url,
    payload,
    headers: payload === undefined ? {} : { 'content-type': 'application/octet-stream' },
  });
  const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, v?.toString()]));
  return { method, url, status: res.statusCode, headers, body: res.rawPayload };
};

describe('the OpenAPI document', () => {
  it('lints clean with Redocly (recommended rules): no errors, and only the warnings explained here', async () => {
    const { text } = await served();
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: text, absoluteRef: 'openapi.json', config });
    const shown = problems.map((p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`);
    expect(
      problems.filter((p) => p.severity === 'error'),
      shown.join('\n'),
    ).toEqual([]);
    // operation-4xx-response: these operations take no input that could be wrong and need no token (every other
    // operation can answer 401 and 403), so they have no 4xx to document.
    expect(problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}`).sort(), shown.join('\n')).toEqual(
      ['/v1/health', '/v1/openapi.json', '/docs']
        .map((p) => `operation-4xx-response #/paths/${p.replace(/\//g, '~1')}/get/responses`)
        .sort(),
    );
  });

  it('documents reading a key: 200 raw bytes with ETag and X-Store-Commit, 304, and the key as one %2F segment', async () => {
    const { app, doc } = await served();
    expect(doc.openapi).toBe('3.1.0');
    // HEAD is not served, so the document's GETs are the only reads.
    expect((await app.inject({ method: 'HEAD', url: '/v1/health' })).statusCode).toBe(404);
    const read = doc.paths['/v1/branches/{branch}/keys/{key}']!.get!;
    expect(read.operationId).toBe('readKey');
    expect(read.responses['200']!.content).toEqual({ 'application/octet-stream': { schema: {} } });
    expect(read.responses['200']!.headers).toMatchObject({
      ETag: { required: true },
      'X-Store-Commit': { required: true },
    });
    expect(read.responses['304']).toBeDefined();
    expect(read.responses['304']!.content).toBeUndefined();
    expect(read.parameters?.find((p) => p.name === 'key')?.description).toMatch(/%2F/);
    expect(Object.keys(read.responses).sort()).toEqual(['200', '304', '400', '401', '403', '404', '410', '429', '500']);
  });

  it('gives every operation a unique operationId, and every error status the shared error body', async () => {
    const { doc } = await served();
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(ids.every(Boolean)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) >= 400)
            expect(response.$ref, `${method} ${path} ${status}`).toBe(`#/components/responses/E${status}`);
          else expect(response.$ref, `${method} ${path} ${status}`).toBeUndefined();
        }
      }
    }
  });
});

describe('the response validator', () => {
  it('passes answers that are as documented', async () => {
    const { app, doc } = await served();
    const v = new ResponseValidator(doc);
    expect(v.check(await exchange(app, 'PUT', '/v1/branches/main/keys/a%2Fb', 'v'))).toEqual([]);
    expect(v.check(await exchange(app, 'GET', '/v1/branches/main/keys/a/b'))).toEqual([]);
    expect(v.check(await exchange(app, 'GET', '/v1/branches/main/keys/missing'))).toEqual([]);
    expect(v.check(await exchange(app, 'GET', '/v1/nowhere'))).toEqual([]);
  });

  it('reports a wrong content type, a missing required header, a body off its schema, an undocumented status', async () => {
    const { app, doc } = await served();
    await exchange(app, 'PUT', '/v1/branches/main/keys/k', 'v');
    const read = await exchange(app, 'GET', '/v1/branches/main/keys/k');
    const written = await exchange(app, 'PUT', '/v1/branches/main/keys/k', 'w');
    const broken = structuredClone(doc);
    const readOp = broken.paths['/v1/branches/{branch}/keys/{key}']!.get!;
    readOp.responses['200']!.content = { 'application/json': { schema: { type: 'object' } } };
    const v = new ResponseValidator(broken);
    expect(v.check(read).join('\n')).toMatch(/content type "application\/octet-stream"/);

    const missingHeader = structuredClone(doc);
    missingHeader.paths['/v1/branches/{branch}/keys/{key}']!.get!.responses['200']!.headers!['X-Missing'] = {
      required: true,
    };
    expect(new ResponseValidator(missingHeader).check(read).join('\n')).toMatch(/required header X-Missing/);

    const strictBody = structuredClone(doc) as unknown as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, { content: Record<string, { schema: { required: string[] } }> }> }>
      >;
    };
    strictBody.paths['/v1/branches/{branch}/keys/{key}']!.put!.responses['200']!.content[
      'application/json'
    ]!.schema.required.push('absent');
    expect(new ResponseValidator(strictBody as unknown as Doc).check(written).join('\n')).toMatch(
      /does not match the schema: \(body\) must have required property 'absent'/,
    );

    const v2 = new ResponseValidator(doc);
    expect(v2.check({ ...read, status: 418 }).join('\n')).toMatch(/status 418 is not documented/);
    expect(v2.check({ ...read, method: 'PATCH' }).join('\n')).toMatch(/no documented operation/);
    expect(v2.check({ ...read, headers: { ...read.headers, etag: 'abc' } }).join('\n')).toMatch(/header ETag/);
  });
});
