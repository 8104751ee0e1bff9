import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ROUTES } from '../src/http/contract.js';
import type { ReplicationStatus, Store } from '../src/index.js';
import { installAuth } from './auth.js';
import { lazySchemaCompilers } from './compilers.js';
import { frameworkErrors, installErrorHandler } from './errors.js';
import { type GitServerOptions, gitRoutes } from './git/routes.js';
import { DEFAULT_LIMITS, installRateLimit, type Limits } from './limits.js';
import { installMetrics } from './metrics.js';
import { collectRoutes, docsPage } from './openapi.js';
import { branchRoutes } from './routes/branches.js';
import { historyRoutes } from './routes/history.js';
import { batchRoute, keyRoutes } from './routes/keys.js';
import { meRoutes } from './routes/me.js';
import { remoteRoutes } from './routes/remotes.js';
import { replicationRoutes } from './routes/replication.js';
import { schemaRoutes } from './routes/schemas.js';
import { tokenRoutes } from './routes/tokens.js';
import { transactionRoutes } from './routes/transactions.js';
import { watchRoutes } from './routes/watch.js';
import { operation } from './spec.js';
import { installUi } from './ui.js';

export interface AppOptions {
  store: Store;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Fastify's logger (default off: tests and embedders log as they like; `store serve` logs errors to stderr). */
  logger?: FastifyServerOptions['logger'];
  /** Where replication stands (`store serve --peer`): served at /v1/replication and in /metrics. */
  replication?: () => ReplicationStatus | null;
  /** The git server under /git (server/git/): its options. */
  git?: GitServerOptions;
  /** Per-caller limits (default DEFAULT_LIMITS). */
  limits?: Partial<Limits>;
  /** Makes the HTTP(S) server (main.ts: TLS and timeouts for slow clients); default fastify's own. */
  serverFactory?: FastifyServerOptions['serverFactory'];
  /** The built web UI's directory (default: `dist/ui` beside the code; null: no UI). */
  ui?: string | null;
}

/** Builds the HTTP API over a store; `main.ts` only listens. Tests use `app.inject()` on this. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { store } = options;
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? 1 << 20,
    logger: options.logger ?? false,
    // Keys are paths: keep them as sent (no trailing-slash games); params may be long.
    routerOptions: { maxParamLength: 4096 },
    // An unknown field is refused, not silently dropped: `{"dryrun": true}` must not run a real compaction.
    ajv: { customOptions: { removeAdditional: false } },
    schemaController: lazySchemaCompilers(),
    // While closing, a request that still arrives on an open connection is served like any other (and told to hang
    // up, see main.ts) rather than refused with fastify's own 503 body, which is not the API's error shape.
    return503OnClosing: false,
    frameworkErrors,
    // Only the documented routes: fastify would otherwise answer HEAD on every GET route, which no one uses and the
    // OpenAPI document does not describe.
    exposeHeadRoutes: false,
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
  });
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  installErrorHandler(app);
  installAuth(app, store);
  await installRateLimit(app, limits);
  // Security headers (a strict content policy, no sniffing, no framing) on the HTML pages, each of which calls
  // reply.helmet(): on every JSON answer they cost ~6 % of a read's CPU (profiled), for browsers that render none.
  await app.register(helmet, { global: false });
  const openapi = collectRoutes(app);
  const replication = options.replication ?? (() => null);
  installMetrics(app, store, replication);
  app.get(
    ROUTES.health,
    {
      schema: operation({
        operationId: 'health',
        open: true,
        summary: 'Liveness',
        tags: ['meta'],
        ok: {
          200: {
            description: 'The server is up.',
            json: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } },
          },
        },
        errors: [],
      }),
    },
    async () => ({ status: 'ok' }),
  );
  await app.register(branchRoutes(store));
  await app.register(keyRoutes(store));
  await app.register(batchRoute(store));
  await app.register(historyRoutes(store));
  await app.register(schemaRoutes(store));
  await app.register(transactionRoutes(store));
  await app.register(watchRoutes(store, limits.watches));
  await app.register(replicationRoutes(store, replication));
  await app.register(gitRoutes(store, options.git));
  await app.register(remoteRoutes(store));
  await app.register(tokenRoutes(store));
  await app.register(meRoutes(store));
  await installUi(app, options.ui);
  app.get(
    ROUTES.openapi,
    {
      schema: operation({
        operationId: 'openapi',
        open: true,
        summary: 'This document (OpenAPI 3.1)',
        tags: ['meta'],
        ok: {
          200: {
            description: 'The OpenAPI document.',
            content: { type: 'application/json', schema: { type: 'object' } },
          },
        },
        errors: [],
      }),
    },
    async () => openapi(),
  );
  app.get(
    ROUTES.docs,
    {
      schema: operation({
        operationId: 'docs',
        open: true,
        summary: 'Every route, as a web page',
        tags: ['meta'],
        ok: { 200: { description: 'The page.', content: { type: 'text/html', schema: { type: 'string' } } } },
        errors: [],
      }),
    },
    async (_request, reply) => {
      await reply.helmet();
      return reply.type('text/html').send(docsPage(openapi()));
    },
  );
  return app;
}
