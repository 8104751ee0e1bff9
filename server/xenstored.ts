import fs from 'node:fs';
import net from 'node:net';
import { openStore, StoreError } from '../src/index.js';
import { type Quotas, Xenstored } from '../src/xenstore/daemon.js';
import { Framer } from '../src/xenstore/wire.js';

export interface XenstoredOptions {
  repo: string;
  socket: string;
  branch?: string;
  quotas?: Partial<Quotas>;
  log?: (line: string) => void;
}

/**
 * `store xenstored`: the Xenstore daemon (src/xenstore) on a Unix socket, as Xen's tools expect it
 * (`XENSTORED_PATH`). Every socket connection is dom0. SIGTERM/SIGINT stop accepting, abort open transactions
 * (an acknowledged operation is already durable) and close the store.
 */
export async function serveXenstore(options: XenstoredOptions): Promise<{ close: () => Promise<void> }> {
  // A Xenstore transaction lives as long as its connection (at most 10 per connection): no idle expiry to speak of.
  // First: a --socket that cannot be used must be refused before anything is opened.
  await removeStaleSocket(options.socket);
  const store = await openStore({ fs, dir: options.repo, create: true, transactionIdleMs: 24 * 3600_000 });
  const daemon = await Xenstored.start(store, { branch: options.branch, quotas: options.quotas, log: options.log });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const connection = daemon.connect({ send: (bytes) => socket.write(bytes) });
    const framer = new Framer();
    socket.on('data', (chunk) => {
      const answered = framer.push(chunk).map((msg) => connection.request(msg));
      // A payload over the limit: a bad client, dropped as xenstored does, once what came before it is answered.
      if (framer.broken) void Promise.allSettled(answered).then(() => socket.destroy());
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      void connection.close();
    });
  });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.end();
      });
      await daemon.close();
      await store.close();
    })();
    return closing;
  };
  // Before listening: a client may connect, and a supervisor signal, the moment the socket exists.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      options.log?.(`${signal}: closing the Xenstore socket`);
      close().then(() => {
        process.exitCode = 0;
      });
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The socket is dom0's: created 0600 with no moment at a wider mode (a chmod after listen left one, 0777 under
    // umask 000). A Unix socket is bound synchronously inside listen(), so the umask is narrowed just around it.
    const umask = process.umask(0o177);
    try {
      server.listen(options.socket, resolve);
    } finally {
      process.umask(umask);
    }
  });
  return { close };
}

/** A socket file left by a daemon that died is removed; one a live daemon answers on is not (EADDRINUSE). */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = fs.lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isSocket()) {
    throw new StoreError(
      'INVALID_ARGUMENT',
      `--socket ${path} is a file that is not a socket: it is left alone; name another path`,
    );
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw Object.assign(new Error(`another daemon is listening on ${path}`), { code: 'EADDRINUSE' });
  fs.unlinkSync(path);
}
