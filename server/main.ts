import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { openStore, Replicator, replicationOf, type Store, StoreError } from '../src/index.js';
import { buildApp } from './app.js';
import type { Limits } from './limits.js';
import { serverFactory, type TransportOptions } from './transport.js';

export interface ServeOptions extends TransportOptions {
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
  /** Serve a non-loopback address without tokens (everyone who can reach it may read and write everything). */
  insecure?: boolean;
  /** Per-caller limits (server/limits.ts). */
  limits?: Partial<Limits>;
  /** Open transactions per caller (its token, or its address without auth; default 1000). */
  maxTransactions?: number;
  /** Peers to replicate with, besides those in `.store/replication.json`. */
  peers?: string[];
  /** The token sent to peers with auth on (ReplicatorOptions.token). */
  peerToken?: string;
  log?: (line: string) => void;
}

/**
 * Opens (creating if missing) the store and listens. SIGTERM/SIGINT stop accepting, let in-flight requests finish
 * — an acknowledged write is already durable — then close the store.
 */
export async function serve(options: ServeOptions): Promise<{ url: string; close: () => Promise<void> }> {
  // Checked before the store opens: a bad TLS file must not leave a store open behind the error.
  const factory = serverFactory(options);
  const consistency = options.consistency;
  const store = await openStore(
    options.memory
      ? { memory: true, consistency, maxTransactionsPerClient: options.maxTransactions }
      : { fs, dir: options.repo, create: true, consistency, maxTransactionsPerClient: options.maxTransactions },
  );
  await refuseOpenNetwork(store, options);
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
      ? new Replicator(store, config, {
          log: (level, message) => options.log?.(`replication ${level}: ${message}`),
          token: options.peerToken,
        })
      : null;
  // Errors only, on stderr (stdout carries the URL, for supervisors and scripts): an INTERNAL answer says "the
  // server log has the details", so the error and its stack must be there.
  const app = await buildApp({
    store,
    serverFactory: factory,
    limits: options.limits,
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
  await app.listen({ host: options.host, port: options.port });
  // The address really bound (fastify's answer names 127.0.0.1 when it listens on every interface).
  const bound = app.server.address() as AddressInfo;
  const scheme = options.tlsCert ? 'https' : 'http';
  const url = `${scheme}://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  replicator?.start();
  return { url, close };
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * Without tokens the API lets anyone read and write everything: that is served on loopback only, unless the operator
 * says `--insecure` (and is warned). With tokens, any address.
 */
async function refuseOpenNetwork(store: Store, options: ServeOptions): Promise<void> {
  if (isLoopback(options.host) || (await store.access.tokens.enabled())) return;
  if (options.insecure) {
    options.log?.(
      `WARNING: serving ${options.host} with no token: anyone who can reach it may read and change everything`,
    );
    return;
  }
  await store.close();
  throw new StoreError(
    'INVALID_ARGUMENT',
    `--host ${options.host} would let anyone on the network read and change everything: create a token first ` +
      '(store token create NAME --role admin), or pass --insecure to serve without one',
  );
}
