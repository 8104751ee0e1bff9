import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Store } from '../src/index.js';
import { installErrorHandler } from './errors.js';
import { installMetrics } from './metrics.js';
import { collectRoutes, docsPage } from './openapi.js';
import { branchRoutes } from './routes/branches.js';
import { historyRoutes } from './routes/history.js';
import { batchRoute, keyRoutes } from './routes/keys.js';
import { transactionRoutes } from './routes/transactions.js';
import { watchRoutes } from './routes/watch.js';

export interface AppOptions {
  store: Store;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Fastify's logger (default off: tests and embedders log as they like; `store serve` logs errors to stderr). */
  logger?: FastifyServerOptions['logger'];
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
  });
  installErrorHandler(app);
  const openapi = collectRoutes(app);
  installMetrics(app, store);
  app.get('/v1/health', { schema: { summary: 'Liveness', tags: ['meta'] } }, async () => ({ status: 'ok' }));
  await app.register(branchRoutes(store));
  await app.register(keyRoutes(store));
  await app.register(batchRoute(store));
  await app.register(historyRoutes(store));
  await app.register(transactionRoutes(store));
  await app.register(watchRoutes(store));
  app.get('/v1/openapi.json', async () => openapi());
  app.get('/docs', async (_request, reply) => reply.type('text/html').send(docsPage(openapi())));
  return app;
}
