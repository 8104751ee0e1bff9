import fs from 'node:fs';
import { openStore, Replicator, replicationOf, StoreError } from '../src/index.js';
import { buildApp } from './app.js';

export interface ServeOptions {
  repo: string;
  host: string;
  port: number;
  memory?: boolean;
  bodyLimit?: number;
  /** Largest request body of git's protocol under /git, and largest pack a push may send (default 1 GiB). */
  gitBodyLimit?: number;
  /** How current reads are, unless a request asks (default linearizable); see OpenOptions. */
  consistency?: 'linearizable' | 'cached';
  /** After this long, connections still open at shutdown are cut (default 10 s). */
  shutdownMs?: number;
  /** Peers to replicate with, besides those in `.store/replication.json`. */
  peers?: string[];
  log?: (line: string) => void;
}

/**
 * Opens (creating if missing) the store and listens. SIGTERM/SIGINT stop accepting, let in-flight requests finish
 * — an acknowledged write is already durable — then close the store.
 */
export async function serve(options: ServeOptions): Promise<{ url: string; close: () => Promise<void> }> {
  const consistency = options.consistency;
  const store = await openStore(
    options.memory ? { memory: true, consistency } : { fs, dir: options.repo, create: true, consistency },
  );
  const config = await replicationOf(
    (key) =>
      store.get(key).catch((e) => {
        if (!(e instanceof StoreError) || (e.code !== 'NOT_FOUND' && e.code !== 'CORRUPT')) throw e;
        // A damaged default branch must not keep the server from serving what it can (and saying CORRUPT).
        if (e.code === 'CORRUPT') options.log?.(`replication: cannot read ${key}: ${e.message}`);
        return null;
      }),
    store.defaultBranch,
    options.peers,
  );
  if (options.memory && config.peers.length > 0) {
    await store.close();
    throw new StoreError(
      'INVALID_ARGUMENT',
      'replication needs a repository on disk: --memory serves none; use --repo',
    );
  }
  const replicator =
    config.peers.length > 0
      ? new Replicator(store, config, { log: (level, message) => options.log?.(`replication ${level}: ${message}`) })
      : null;
  // Errors only, on stderr (stdout carries the URL, for supervisors and scripts): an INTERNAL answer says "the
  // server log has the details", so the error and its stack must be there.
  const app = await buildApp({
    store,
    bodyLimit: options.bodyLimit,
    git: { maxBodyBytes: options.gitBodyLimit },
    logger: { level: 'error', stream: process.stderr },
    replication: () => replicator?.status() ?? null,
  });
  let closing: Promise<void> | undefined;
  // While shutting down, every answer tells its client to hang up: fastify closes only connections idle at the
  // moment close starts, and keep-alive clients would otherwise hold the process open until their timeout.
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  const close = () => {
    closing ??= (async () => {
      const sweep = setInterval(() => app.server.closeIdleConnections(), 25);
      const deadline = setTimeout(() => app.server.closeAllConnections(), options.shutdownMs ?? 10_000);
      try {
        await replicator?.stop();
        await app.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(deadline);
      }
      await store.close();
    })();
    return closing;
  };
  // Before listening: a supervisor may signal the moment the port is open, and without a handler the signal's
  // default action would kill the process mid-write.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      options.log?.(`${signal}: finishing in-flight requests`);
      close().then(() => {
        process.exitCode = 0;
      });
    });
  }
  const url = await app.listen({ host: options.host, port: options.port });
  replicator?.start();
  return { url, close };
}
