import type { FastifyInstance, RouteOptions } from 'fastify';
import type { ErrorCode } from '../src/index.js';
import { STATUS } from './errors.js';
import { errorSchema, type Operation, REQUEST_HEADERS, RESPONSE_HEADERS } from './spec.js';

/**
 * The OpenAPI document, built from the operations the server registers (server/spec.ts), so it describes the API
 * that runs. OpenAPI 3.1, not 3.0: its Schema Object is JSON Schema (2020-12), so the schemas fastify validates and
 * serialises with — `type: ["string", "null"]`, `const` — are valid in the document as they are, with no
 * translation to 3.0's `nullable` dialect that could drift.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: the route is not part of the JSON API (git's protocol) and stays out of the document. */
    openapi?: boolean;
  }
}

const TAGS = [
  { name: 'keys', description: 'Values: raw bytes in and out, with the blob oid as ETag for compare-and-set.' },
  { name: 'branches', description: 'Branches, and merging one into another.' },
  { name: 'history', description: 'The log, commits, diffs, bisect, blame, reverts and maintenance.' },
  {
    name: 'schemas',
    description: 'JSON Schemas a branch declares in .store/schema.json: every write is held against them.',
  },
  { name: 'transactions', description: 'Multi-step transactions on a branch, committed as a merge.' },
  { name: 'watch', description: 'Server-Sent Events of a branch’s changes.' },
  {
    name: 'remotes',
    description: 'Remotes (git’s, in the repository’s config) and fetch, pull and push through them.',
  },
  {
    name: 'tokens',
    description: 'The API’s tokens, for an admin token (the first is made with `store token create`).',
  },
  { name: 'meta', description: 'Health, metrics and this document.' },
];

/** What a wildcard path parameter is called in the document, by route. */
const wildcardName = (url: string) => (/\/(list|blame)\/\*$/.test(url) ? 'prefix' : 'key');

const KEY_PARAMETER_NOTE =
  'A key is one path parameter: send each `/` in it as `%2F` (`vm%2Fweb1%2Fmemory`), as OpenAPI clients do. The ' +
  'server also takes the `/`s as they are (`vm/web1/memory`).';

/** `/v1/branches/:branch/keys/*` → `/v1/branches/{branch}/keys/{key}`, with its path parameters in order. */
function openApiPath(url: string): { path: string; params: { name: string; route: string }[] } {
  const params: { name: string; route: string }[] = [];
  const path = url
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) {
        params.push({ name: part.slice(1), route: part.slice(1) });
        return `{${part.slice(1)}}`;
      }
      if (part === '*') {
        const name = wildcardName(url);
        params.push({ name, route: '*' });
        return `{${name}}`;
      }
      return part;
    })
    .join('/');
  return { path, params };
}

type Schema = { properties?: Record<string, Record<string, unknown>>; required?: string[] };

/** A schema's `description` belongs to the parameter in OpenAPI; the rest stays its schema. */
function parameter(name: string, where: 'path' | 'query', schema: Record<string, unknown>, required: boolean) {
  const { description, ...rest } = schema as { description?: string };
  return { name, in: where, required, ...(description ? { description } : {}), schema: rest };
}

/** The shared error answers, one per status used, naming the codes that map to it. */
function errorResponses(used: Set<number>): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, status] of Object.entries(STATUS) as [ErrorCode, number][]) {
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus]
      .filter(([status]) => used.has(status))
      .map(([status, codes]) => [
        `E${status}`,
        {
          description: `An error: ${codes.join(', ')}.`,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      ]),
  );
}

function operationObject(url: string, op: Operation): Record<string, unknown> {
  const { params } = openApiPath(url);
  const pathSchema = (op.params as Schema | undefined)?.properties ?? {};
  const query = op.querystring as Schema | undefined;
  const parameters = [
    ...params.map(({ name, route }) =>
      parameter(
        name,
        'path',
        { ...(pathSchema[route] ?? { type: 'string' }), ...(route === '*' ? { description: KEY_PARAMETER_NOTE } : {}) },
        true,
      ),
    ),
    ...Object.entries(query?.properties ?? {}).map(([name, schema]) =>
      parameter(name, 'query', schema, query?.required?.includes(name) ?? false),
    ),
    ...(op.headers ?? []).map((h) => ({ in: 'header', required: false, ...REQUEST_HEADERS[h] })),
  ];
  const responses: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(op.ok)) {
    const headers = Object.fromEntries(
      [
        ...(answer.headers ?? []).map((h) => [h, true] as const),
        ...(answer.optionalHeaders ?? []).map((h) => [h, false] as const),
      ].map(([h, required]) => {
        const { name, description, schema } = RESPONSE_HEADERS[h];
        return [name, { description, required, schema }];
      }),
    );
    const content = answer.json
      ? { 'application/json': { schema: answer.json } }
      : answer.content
        ? { [answer.content.type]: { schema: answer.content.schema } }
        : undefined;
    responses[status] = {
      description: answer.description,
      ...(Object.keys(headers).length ? { headers } : {}),
      ...(content ? { content } : {}),
    };
  }
  for (const status of [...new Set([...op.errors, 500])].sort()) {
    responses[status] = { $ref: `#/components/responses/E${status}` };
  }
  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    tags: op.tags,
    ...(parameters.length ? { parameters } : {}),
    ...(op.body
      ? { requestBody: { required: !op.bodyOptional, content: { 'application/json': { schema: op.body } } } }
      : {}),
    ...(op.rawBody
      ? {
          requestBody: {
            required: false,
            description: 'The value, byte-exact (any content type is taken as raw bytes; empty: an empty value).',
            content: { 'application/octet-stream': {} },
          },
        }
      : {}),
    ...(op.open ? { security: [] } : {}),
    responses,
  };
}

/**
 * Collects every route as it is registered; each must describe itself (server/spec.ts), so none can be missing from
 * the document. Returns the document's builder.
 */
export function collectRoutes(app: FastifyInstance): () => Record<string, unknown> {
  const operations: { method: string; url: string; op: Operation }[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    // A route that is another protocol than this API (git's, under /git) says so, and is not documented here.
    if (route.config?.openapi === false) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const op = route.schema?.['x-operation'];
    if (!op) throw new Error(`route ${methods.join(',')} ${route.url} has no operation (server/spec.ts)`);
    for (const method of methods) operations.push({ method: method.toLowerCase(), url: route.url, op });
  });
  return () => {
    const paths: Record<string, Record<string, unknown>> = {};
    const used = new Set<number>([500]);
    for (const { method, url, op } of operations) {
      for (const status of op.errors) used.add(status);
      const { path } = openApiPath(url);
      paths[path] ??= {};
      paths[path][method] = operationObject(url, op);
    }
    return {
      openapi: '3.1.0',
      info: {
        title: 'gitstore',
        version: '1',
        summary: 'A configuration store where every write is a git commit.',
        description:
          'Every error answer has the body `{"error":{"code","message","data"}}`. A request to a path that is no ' +
          'route answers 404 NOT_FOUND in the same shape, and a URL whose percent-encoding is malformed 400 ' +
          'INVALID_ARGUMENT.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: 'http://127.0.0.1:7070', description: '`store serve` at its default address' }],
      tags: TAGS,
      paths,
      // A bearer token once the store has one (`store token create`); without tokens, none (the empty requirement).
      security: [{ token: [] }, {}],
      components: {
        schemas: { Error: errorSchema },
        responses: errorResponses(used),
        securitySchemes: {
          token: {
            type: 'http',
            scheme: 'bearer',
            description:
              'A token of `store token create`: `Authorization: Bearer gst_…`. Needed once the store has one.',
          },
        },
      },
    };
  };
}

/** A browsable page of the document, without fetching anything from elsewhere. */
export function docsPage(doc: Record<string, unknown>): string {
  const paths = doc.paths as Record<string, Record<string, { summary: string }>>;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = Object.entries(paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(
        ([method, op]) =>
          `<tr><td class="m ${method}">${method.toUpperCase()}</td><td><code>${esc(path)}</code></td><td>${esc(op.summary)}</td></tr>`,
      ),
    )
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>gitstore API</title><style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}td{padding:.3em .8em;border-bottom:1px solid #ddd;vertical-align:top}
.m{font-weight:bold}.get{color:#05a}.put{color:#a50}.post{color:#080}.delete{color:#a00}</style></head><body>
<h1>gitstore API</h1><p>Every route, from the <a href="/v1/openapi.json">OpenAPI document</a> the server generates from its schemas.</p>
<table>${rows}</table></body></html>`;
}
