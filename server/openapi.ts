import type { FastifyInstance, RouteOptions } from 'fastify';

interface Operation {
  method: string;
  url: string;
  schema: Record<string, unknown>;
}

/** `/v1/branches/:b/keys/*` → `/v1/branches/{b}/keys/{key}`, with the path parameters it declares. */
function openApiPath(url: string): { path: string; params: string[] } {
  const params: string[] = [];
  const path = url
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) {
        params.push(part.slice(1));
        return `{${part.slice(1)}}`;
      }
      if (part === '*') {
        params.push('key');
        return '{key}';
      }
      return part;
    })
    .join('/');
  return { path, params };
}

/**
 * Collects every route as it is registered and builds the OpenAPI 3 document from the same schemas fastify validates
 * and serialises with, so the document cannot drift from what the server does.
 */
export function collectRoutes(app: FastifyInstance): () => Record<string, unknown> {
  const operations: Operation[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || route.url === '/docs' || route.url.endsWith('openapi.json')) continue;
      operations.push({
        method: method.toLowerCase(),
        url: route.url,
        schema: (route.schema ?? {}) as Record<string, unknown>,
      });
    }
  });
  return () => {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const op of operations) {
      const { path, params } = openApiPath(op.url);
      const s = op.schema as {
        summary?: string;
        tags?: string[];
        querystring?: { properties?: Record<string, unknown>; required?: string[] };
        body?: unknown;
        response?: Record<string, unknown>;
      };
      const parameters = [
        ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
        ...Object.entries(s.querystring?.properties ?? {}).map(([name, schema]) => ({
          name,
          in: 'query',
          required: s.querystring?.required?.includes(name) ?? false,
          schema,
        })),
      ];
      const responses: Record<string, unknown> = {};
      for (const [status, schema] of Object.entries(s.response ?? { 200: {} })) {
        responses[status.toUpperCase()] = { description: status, content: { 'application/json': { schema } } };
      }
      paths[path] ??= {};
      paths[path][op.method] = {
        summary: s.summary ?? `${op.method.toUpperCase()} ${path}`,
        tags: s.tags ?? [],
        parameters,
        ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: s.body } } } } : {}),
        ...(op.method === 'put' && path.includes('{key}')
          ? {
              requestBody: {
                required: false,
                content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
              },
            }
          : {}),
        responses,
      };
    }
    return {
      openapi: '3.0.3',
      info: {
        title: 'gitstore',
        version: '0.1.0',
        description: 'A configuration store where every write is a git commit.',
      },
      paths,
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

declare module 'fastify' {
  interface FastifySchema {
    /** One line for the OpenAPI document and the /docs page. */
    summary?: string;
    tags?: string[];
  }
}
