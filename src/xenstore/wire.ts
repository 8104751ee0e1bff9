/**
 * The xenstored wire protocol (Xen's `xs_wire.h`): a 16-byte header — type, request id, transaction id, payload
 * length, little-endian u32 — then the payload, NUL-separated strings (a WRITE's value is raw bytes after the path).
 */

export const XS = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;

/** Names of the message types, for commit messages and logs. */
export const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(XS).map(([name, code]) => [code, name.toLowerCase()]),
);

/** The largest payload either side may send. */
export const PAYLOAD_MAX = 4096;
const HEADER = 16;

/** The errors a reply may name (Xen's `xsd_errors`, plus the quota error oxenstored sends). */
export type XsErrno =
  | 'EINVAL'
  | 'EACCES'
  | 'EEXIST'
  | 'EISDIR'
  | 'ENOENT'
  | 'ENOMEM'
  | 'ENOSPC'
  | 'EIO'
  | 'ENOTEMPTY'
  | 'ENOSYS'
  | 'EROFS'
  | 'EBUSY'
  | 'EAGAIN'
  | 'EISCONN'
  | 'E2BIG'
  | 'EPERM'
  | 'EQUOTA';

/** An operation's failure, answered as an ERROR message naming `errno`. */
export class XsError extends Error {
  constructor(
    readonly errno: XsErrno,
    message: string = errno,
  ) {
    super(message);
  }
}

export interface Message {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

/** Encodes one message. */
export function encode(type: number, reqId: number, txId: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(reqId, 4);
  out.writeUInt32LE(txId, 8);
  out.writeUInt32LE(payload.length, 12);
  out.set(payload, HEADER);
  return out;
}

/** NUL-terminated strings, as replies and events carry them. */
export const strings = (...parts: string[]): Buffer => Buffer.from(parts.map((p) => `${p}\0`).join(''), 'utf8');

/**
 * Splits a byte stream into messages: requests may arrive split across reads or several in one. A header announcing
 * a payload over the limit makes the stream `broken` (the messages before it are still returned): the connection is
 * then closed, as xenstored does with a bad client.
 */
export class Framer {
  private pending: Buffer = Buffer.alloc(0);
  broken = false;

  push(chunk: Buffer): Message[] {
    if (this.broken) return [];
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Message[] = [];
    while (this.pending.length >= HEADER) {
      const len = this.pending.readUInt32LE(12);
      if (len > PAYLOAD_MAX) {
        this.broken = true;
        break;
      }
      if (this.pending.length < HEADER + len) break;
      out.push({
        type: this.pending.readUInt32LE(0),
        reqId: this.pending.readUInt32LE(4),
        txId: this.pending.readUInt32LE(8),
        payload: Buffer.from(this.pending.subarray(HEADER, HEADER + len)),
      });
      this.pending = this.pending.subarray(HEADER + len);
    }
    return out;
  }
}

/** The NUL-terminated strings of a payload; EINVAL unless there are exactly `n` (or at least `n` with `more`). */
export function args(payload: Buffer, n: number, more = false): string[] {
  if (payload.length === 0 || payload[payload.length - 1] !== 0) throw new XsError('EINVAL');
  const parts = payload.subarray(0, -1).toString('utf8').split('\0');
  if (more ? parts.length < n : parts.length !== n) throw new XsError('EINVAL');
  return parts;
}

/** A WRITE's path and value: the value is every byte after the path's NUL (it may hold NULs itself). */
export function pathAndValue(payload: Buffer): { path: string; value: Buffer } {
  const nul = payload.indexOf(0);
  if (nul < 0) throw new XsError('EINVAL');
  return { path: payload.subarray(0, nul).toString('utf8'), value: Buffer.from(payload.subarray(nul + 1)) };
}
