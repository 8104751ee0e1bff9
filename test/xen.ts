import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { XS } from '../src/xenstore/wire.js';
import { cliEnv, type Run, runProcess, until } from './helpers.js';

/** Helpers for the xenstored tests: Debian's Xen tools, the daemon as a real process, and a raw protocol client. */

const root = fileURLToPath(new URL('..', import.meta.url));

export interface XenTools {
  bin: string;
  testXenstore: string;
  ldLibraryPath: string;
}

/** Runs scripts/xen-tools.sh (idempotent, cached in .cache/xen-tools) and parses what it prints; throws if it fails. */
export function xenTools(): XenTools {
  let out: string;
  try {
    out = execFileSync(path.join(root, 'scripts/xen-tools.sh'), [], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(
      `scripts/xen-tools.sh failed (CI installs the Xen tools through .ci/run): ${err.stderr ?? ''}${err.message}`,
    );
  }
  const vars = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^(XEN_[A-Z_]+)=['"]?(.*?)['"]?$/.exec(line.trim());
    if (m) vars.set(m[1]!, m[2]!);
  }
  const need = (name: string) => {
    const v = vars.get(name);
    if (!v) throw new Error(`scripts/xen-tools.sh printed no ${name}:\n${out}`);
    return v;
  };
  return {
    bin: need('XEN_BIN'),
    testXenstore: need('XEN_TEST_XENSTORE'),
    ldLibraryPath: need('XEN_LD_LIBRARY_PATH'),
  };
}

/** The environment a Xen tool needs to talk to the daemon on `socket`. */
export function toolEnv(tools: XenTools, socket: string): NodeJS.ProcessEnv {
  return { ...process.env, LD_LIBRARY_PATH: tools.ldLibraryPath, XENSTORED_PATH: socket };
}

/** Runs `xenstore-<tool> args…` against the daemon on `socket`. */
export function xs(tools: XenTools, socket: string, tool: string, args: string[]): Promise<Run> {
  return runProcess(path.join(tools.bin, `xenstore-${tool}`), args, toolEnv(tools, socket));
}

/** Whether something accepts connections on the Unix socket `socket`. */
function accepts(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** `store xenstored` as a real child process. */
export interface Daemon {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the exit code and signal once it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node bin/store.js --repo <repo> xenstored --socket <socket>` and waits until the socket accepts. */
export async function startDaemon(
  repo: string,
  socket: string,
  extra: string[] = [],
  commandArgs: string[] = [],
): Promise<Daemon> {
  const child = spawn(
    process.execPath,
    [path.join(root, 'bin/store.js'), '--repo', repo, ...extra, 'xenstored', '--socket', socket, ...commandArgs],
    {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  let up = false;
  const start = Date.now();
  while (!up) {
    if (gone) throw new Error(`store xenstored exited before listening:\n${stderr}`);
    if (Date.now() - start > 60_000) throw new Error(`store xenstored not listening after 60 s:\n${stderr}`);
    up = await accepts(socket);
    if (!up) await new Promise((r) => setTimeout(r, 25));
  }
  return { child, stderr: () => stderr, exited };
}

/** SIGTERM, then the exit status (SIGKILL and a failure if it hangs for more than `ms`). */
export async function stopDaemon(
  d: Daemon,
  ms = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return d.exited;
  d.child.kill('SIGTERM');
  const timer = setTimeout(() => d.child.kill('SIGKILL'), ms);
  const status = await d.exited;
  clearTimeout(timer);
  return status;
}

// The message type codes are facts of the protocol, shared; the framing below is the test's own.
export { XS };

export interface Reply {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

/** One message: the 16-byte header (type, req_id, tx_id, len; little-endian u32) and the payload. */
export function frame(type: number, reqId: number, txId: number, payload: Buffer | string, len?: number): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(16);
  head.writeUInt32LE(type, 0);
  head.writeUInt32LE(reqId, 4);
  head.writeUInt32LE(txId, 8);
  head.writeUInt32LE(len ?? body.length, 12);
  return Buffer.concat([head, body]);
}

/** NUL-terminated strings. */
export const z = (...parts: string[]): string => parts.map((p) => `${p}\0`).join('');

/** A payload's NUL-terminated strings as text (`OK\0` → ['OK']). */
export const texts = (payload: Buffer): string[] => payload.toString('utf8').replace(/\0$/, '').split('\0');

/**
 * A tiny xenstored client over the raw socket: replies are queued in arrival order, watch events kept apart. It sends
 * what it is told (whole messages, pieces, or several at once), so framing can be tested.
 */
export class RawClient {
  readonly events: Reply[] = [];
  private readonly replies: Reply[] = [];
  private pending = Buffer.alloc(0);
  private reqId = 1;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 16) {
        const len = this.pending.readUInt32LE(12);
        if (this.pending.length < 16 + len) break;
        const msg: Reply = {
          type: this.pending.readUInt32LE(0),
          reqId: this.pending.readUInt32LE(4),
          txId: this.pending.readUInt32LE(8),
          payload: Buffer.from(this.pending.subarray(16, 16 + len)),
        };
        this.pending = this.pending.subarray(16 + len);
        (msg.type === XS.WATCH_EVENT ? this.events : this.replies).push(msg);
      }
    });
    socket.on('error', () => {});
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  static connect(socketPath: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next reply (not a watch event), in order. */
  async reply(ms = 10_000): Promise<Reply> {
    await until(() => this.replies.length > 0 || this.closed, 'a reply from xenstored', ms);
    const r = this.replies.shift();
    if (!r) throw new Error('the daemon closed the connection');
    return r;
  }

  /** Sends one request and returns its reply (checking it answers this request). */
  async request(type: number, payload: Buffer | string, txId = 0): Promise<Reply> {
    const reqId = this.reqId++;
    this.write(frame(type, reqId, txId, payload));
    const r = await this.reply();
    if (r.reqId !== reqId) throw new Error(`reply to request ${r.reqId}, expected ${reqId}`);
    if (r.txId !== txId) throw new Error(`reply with tx_id ${r.txId}, expected ${txId}`);
    return r;
  }

  /** A request's reply as text: its strings joined by NUL, `ERROR <errno>` for an error. */
  async ask(type: number, payload: Buffer | string, txId = 0): Promise<string> {
    const r = await this.request(type, payload, txId);
    if (r.type === XS.ERROR) return `ERROR ${texts(r.payload)[0]}`;
    if (r.type !== type) throw new Error(`reply of type ${r.type} to a request of type ${type}`);
    return texts(r.payload).join('\0');
  }

  /** TRANSACTION_START: the new transaction's id. */
  async start(): Promise<number> {
    const id = await this.ask(XS.TRANSACTION_START, '\0');
    if (!/^\d+$/.test(id)) throw new Error(`TRANSACTION_START answered ${id}`);
    return Number(id);
  }

  write1(path: string, value: string | Buffer, txId = 0): Promise<string> {
    return this.ask(XS.WRITE, Buffer.concat([Buffer.from(`${path}\0`), Buffer.from(value)]), txId);
  }

  read1(path: string, txId = 0): Promise<string> {
    return this.ask(XS.READ, z(path), txId);
  }

  end(txId: number, commit = true): Promise<string> {
    return this.ask(XS.TRANSACTION_END, z(commit ? 'T' : 'F'), txId);
  }

  /** XS_CONTROL `status`: the daemon's counters. */
  async status(): Promise<{ line: string; requests: number; committed: number; eagain: number }> {
    const line = await this.ask(XS.CONTROL, z('status'));
    const m = /requests=(\d+) committed=(\d+) eagain=(\d+)/.exec(line);
    if (!m) throw new Error(`CONTROL status answered ${line}`);
    return { line, requests: Number(m[1]), committed: Number(m[2]), eagain: Number(m[3]) };
  }

  /** Watch events as [path, token] pairs. */
  eventTexts(): string[][] {
    return this.events.map((e) => texts(e.payload));
  }

  close(): void {
    this.socket.destroy();
  }
}
