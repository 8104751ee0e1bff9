import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import { StoreError } from '../src/index.js';

/** What the HTTP(S) server of `store serve` is made with (main.ts passes its options). */
export interface TransportOptions {
  /** PEM files of the certificate (chain) and its key; both or neither. */
  tlsCert?: string;
  tlsKey?: string;
  /** A request must have arrived whole within this long; default 60 s. */
  requestTimeoutMs?: number;
  /** Its headers within this long (from the connection, or from a kept-alive one's first byte); default 10 s. */
  headersTimeoutMs?: number;
}

/**
 * The HTTP or HTTPS server, with time limits for slow clients: a request's headers must be in within
 * `headersTimeoutMs`, and the whole request within `requestTimeoutMs`, or the connection is closed. Node's own
 * `headersTimeout` and `requestTimeout` are set too, but measured they did not close a stalled connection in every
 * case (headers stopped half-way: never, on Node 20 and 24; a short body: not under `store serve`), so a timer per
 * connection enforces both.
 */
export function serverFactory(options: TransportOptions): NonNullable<FastifyServerOptions['serverFactory']> {
  if (!options.tlsCert !== !options.tlsKey) {
    throw new StoreError('INVALID_ARGUMENT', 'TLS needs both --tls-cert and --tls-key');
  }
  const requestTimeout = options.requestTimeoutMs ?? 60_000;
  const headersTimeout = Math.min(options.headersTimeoutMs ?? 10_000, requestTimeout);
  const timeouts = { requestTimeout, headersTimeout, connectionsCheckingInterval: 1000, keepAliveTimeout: 72_000 };
  const tls = options.tlsCert
    ? {
        cert: readPem(options.tlsCert, '--tls-cert'),
        key: readPem(options.tlsKey!, '--tls-key'),
        handshakeTimeout: headersTimeout,
      }
    : null;
  return (handler) => {
    const server = tls ? https.createServer({ ...tls, ...timeouts }, handler) : http.createServer(timeouts, handler);
    bound(server, tls ? 'secureConnection' : 'connection', headersTimeout, requestTimeout, timeouts.keepAliveTimeout);
    return server;
  };
}

/**
 * Closes a connection whose request does not arrive in time: its headers within `headersMs` and all of it within
 * `requestMs`, counted from the connection (on a kept-alive connection, see below). The time a handler takes to
 * answer is not limited here.
 */
function bound(
  server: http.Server,
  connectionEvent: string,
  headersMs: number,
  requestMs: number,
  keepAliveMs: number,
): void {
  const timers = new WeakMap<Socket, NodeJS.Timeout>();
  /** When the request now arriving on a connection began (the connection, or its first byte). */
  const began = new WeakMap<Socket, number>();
  const start = (socket: Socket) => {
    began.set(socket, Date.now());
    arm(socket, headersMs, () => true);
  };
  const arm = (socket: Socket, ms: number, late: () => boolean) => {
    clearTimeout(timers.get(socket));
    const timer = setTimeout(() => {
      if (late()) socket.destroy();
    }, ms);
    timer.unref();
    timers.set(socket, timer);
  };
  const disarm = (socket: Socket) => {
    clearTimeout(timers.get(socket));
    timers.delete(socket);
  };
  server.on(connectionEvent, (socket: Socket) => {
    start(socket);
    socket.on('close', () => disarm(socket));
  });
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    const socket = request.socket;
    // Headers are in; the body has the rest of the request's time (the parser marks the request complete).
    const elapsed = Date.now() - (began.get(socket) ?? Date.now());
    arm(socket, Math.max(0, requestMs - elapsed), () => !request.complete);
    // Kept alive, the connection may carry the next request: node closes it idle after keepAliveMs, and one whose
    // next request starts but never finishes its headers goes at most headersMs later. (Not counted from that
    // request's first byte: a 'data' listener on the socket takes it off node's native parser, and measured, a
    // connection whose previous body was left unread then stalled.)
    response.once('finish', () => {
      began.delete(socket);
      arm(socket, keepAliveMs + headersMs, () => true);
    });
  });
}

function readPem(file: string, option: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new StoreError(
      'INVALID_ARGUMENT',
      `${option} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code})`,
    );
  }
}
