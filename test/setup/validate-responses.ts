/**
 * Every answer a store server gives in the tests is checked against its OpenAPI document, as a validating proxy
 * would (test/openapi-validator.ts): `fetch` is wrapped here, so StoreClient's traffic and the tests' own requests
 * are covered, and `checkInjected(app)` does the same for `app.inject()`. A violation fails the test it happened in.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach } from 'vitest';
import { type Exchange, ResponseValidator } from '../openapi-validator.js';

const violations: string[] = [];
let validator: Promise<ResponseValidator> | undefined;

/**
 * The document the server serves, fetched once per test file from a server built here (not from the server under
 * test: an extra request there would show in its metrics and its in-flight counts).
 */
function served(): Promise<ResponseValidator> {
  validator ??= (async () => {
    const [{ buildApp }, { openStore }] = await Promise.all([
      import('../../server/app.js'),
      import('../../src/index.js'),
    ]);
    const store = await openStore({ memory: true });
    const app = await buildApp({ store });
    try {
      return new ResponseValidator((await app.inject({ method: 'GET', url: '/v1/openapi.json' })).json());
    } finally {
      await app.close();
      await store.close();
    }
  })();
  return validator;
}

/** Whether a URL is a store server's: one on this machine, on a path the API has. */
const isStoreUrl = (url: URL) =>
  ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && /^\/(v1\/|metrics$|docs$)/.test(url.pathname);

async function record(exchange: Exchange): Promise<void> {
  const problems = (await served()).check(exchange);
  violations.push(...problems);
}

const realFetch = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const response = await realFetch(input, init);
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (!isStoreUrl(url)) return response;
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const headers = Object.fromEntries(response.headers);
  // An event stream never ends: its status and headers are checked, not its body.
  const streaming = (headers['content-type'] ?? '').startsWith('text/event-stream') || method === 'HEAD';
  const body = streaming ? undefined : Buffer.from(await response.clone().arrayBuffer());
  await record({ method, url: `${url.pathname}${url.search}`, status: response.status, headers, body });
  return response;
};

/** Checks every answer of `app.inject(options)` from now on. */
export function checkInjected(app: FastifyInstance): FastifyInstance {
  const inject = app.inject.bind(app) as (options: InjectOptions | string) => Promise<LightMyRequestResponse>;
  const checked = async (options: InjectOptions | string) => {
    const response = await inject(options);
    const o = typeof options === 'string' ? { url: options } : options;
    const url = typeof o.url === 'string' ? o.url : String(o.url ?? o.path ?? '/');
    const headers = Object.fromEntries(
      Object.entries(response.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v?.toString()]),
    );
    await record({
      method: (o.method ?? 'GET').toUpperCase(),
      url,
      status: response.statusCode,
      headers,
      body: response.rawPayload,
    });
    return response;
  };
  (app as unknown as { inject: typeof checked }).inject = checked;
  return app;
}

function failOnViolations() {
  if (violations.length === 0) return;
  const found = violations.splice(0);
  throw new Error(`${found.length} answer(s) not as the OpenAPI document says:\n${found.join('\n')}`);
}

afterEach(failOnViolations);
afterAll(failOnViolations);
