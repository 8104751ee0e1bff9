import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { UI_PATH } from '../src/http/contract.js';
import { StoreError } from '../src/index.js';

/**
 * The web UI (docs/ARCHITECTURE.md, "Web UI"): a page at `/` and its static files under `/ui/`, built from `ui/` by
 * `npm run build` into `dist/ui` and shipped in the package. Nothing is fetched from elsewhere, and the page runs no
 * inline script, so its Content-Security-Policy allows scripts, styles and connections to this server only.
 */

/** Where the built UI is: `dist/ui` beside the running code (dist/server, dist/bundle), or from the sources (tests). */
function builtUi(): string | null {
  for (const relative of ['../ui/', '../dist/ui/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (fs.existsSync(`${dir}app.js`)) return dir;
  }
  return null;
}

/** The page's policy: everything from this origin, nothing inline, no framing, no plugins. */
const CSP = {
  directives: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:', 'blob:'],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
};

/** Serves the UI; must be registered after helmet (for `reply.helmet`). */
export async function installUi(app: FastifyInstance, root: string | null = builtUi()): Promise<void> {
  if (root) await app.register(fastifyStatic, { root, serve: false });
  const send = async (reply: FastifyReply, file: string) => {
    if (!root) {
      throw new StoreError('NOT_FOUND', 'the web UI is not built here: run `npm run build` (the API is under /v1)');
    }
    // The UI's files have plain names, one level deep: anything else (`..`, an encoded slash) is not one of them.
    if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(file)) throw new StoreError('NOT_FOUND', 'no such file of the web UI');
    await reply.helmet({ contentSecurityPolicy: CSP });
    // The page and its files change with each build: revalidate (they carry an ETag) rather than keep a stale copy.
    return reply.header('cache-control', 'no-cache').sendFile(file);
  };
  // Not part of the JSON API: out of the OpenAPI document, and public (they hold no data; server/auth.ts).
  app.get('/', { config: { openapi: false } }, (_request, reply) => send(reply, 'index.html'));
  app.get<{ Params: { '*': string } }>(`${UI_PATH}/*`, { config: { openapi: false } }, (request, reply) =>
    send(reply, request.params['*']),
  );
}
