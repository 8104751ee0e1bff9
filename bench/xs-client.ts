import net from 'node:net';
import { encode, Framer, type Message, strings, XS } from '../src/xenstore/wire.js';

/**
 * A minimal Xenstore client speaking the wire protocol over a Unix socket, one request at a time as libxenstore does
 * (for the benchmark and the tests: Xen's own tools are C programs).
 */
export class XsClient {
  private readonly framer = new Framer();
  private waiting: ((m: Message) => void) | null = null;
  private readonly events: { path: string; token: string }[] = [];
  private eventWaiters: (() => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      for (const m of this.framer.push(chunk)) {
        if (m.type === XS.WATCH_EVENT) {
          const [path, token] = m.payload.toString('utf8').split('\0');
          this.events.push({ path: path!, token: token! });
          for (const w of this.eventWaiters.splice(0)) w();
        } else this.waiting?.(m);
      }
    });
  }

  static connect(path: string): Promise<XsClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('connect', () => resolve(new XsClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends one request and waits for its reply; an ERROR reply rejects with the errno name as the message. */
  request(type: number, payload: Uint8Array, txId = 0): Promise<Buffer> {
    const run = this.queue.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          this.waiting = (m) => {
            this.waiting = null;
            if (m.type === XS.ERROR) reject(new Error(m.payload.toString('utf8').replace(/\0$/, '')));
            else resolve(m.payload);
          };
          this.socket.write(encode(type, 0, txId, payload));
        }),
    );
    this.queue = run.catch(() => {});
    return run;
  }

  read(path: string, tx = 0): Promise<Buffer> {
    return this.request(XS.READ, strings(path), tx);
  }

  write(path: string, value: string | Uint8Array, tx = 0): Promise<Buffer> {
    return this.request(XS.WRITE, Buffer.concat([strings(path), Buffer.from(value)]), tx);
  }

  rm(path: string, tx = 0): Promise<Buffer> {
    return this.request(XS.RM, strings(path), tx);
  }

  setPerms(path: string, perms: string[], tx = 0): Promise<Buffer> {
    return this.request(XS.SET_PERMS, strings(path, ...perms), tx);
  }

  watch(path: string, token: string): Promise<Buffer> {
    return this.request(XS.WATCH, strings(path, token));
  }

  async start(): Promise<number> {
    return Number((await this.request(XS.TRANSACTION_START, strings(''))).toString('utf8').replace(/\0$/, ''));
  }

  /** Ends a transaction; false when it failed with EAGAIN (the caller retries). */
  async end(tx: number, commit = true): Promise<boolean> {
    try {
      await this.request(XS.TRANSACTION_END, strings(commit ? 'T' : 'F'), tx);
      return true;
    } catch (e) {
      if ((e as Error).message === 'EAGAIN') return false;
      throw e;
    }
  }

  /** Waits for a watch event matching `test` (events already received count). */
  async event(test: (e: { path: string; token: string }) => boolean, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.events.findIndex(test);
      if (i >= 0) {
        this.events.splice(i, 1);
        return;
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for a watch event');
      await new Promise<void>((resolve) => {
        this.eventWaiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  close(): void {
    this.socket.end();
  }
}
