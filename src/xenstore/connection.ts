/**
 * One Xenstore client connection: its requests answered in order, each operation mapped onto the store's nodes
 * (nodes.ts), its watches and its transactions (store transactions with the nodes they observed, checked at commit).
 * The daemon (daemon.ts) owns the branch, the watch index and the domains.
 */
import { createHash } from 'node:crypto';
import { type Conflict, isStoreError, type StoreError } from '../errors.js';
import type { TreeEdit } from '../store/ports.js';
import type { Store } from '../store/store.js';
import type { Transaction } from '../store/transaction.js';
import {
  missingNodes,
  mkdirNode,
  mustRead,
  type NodeEdit,
  type NodeSource,
  nodeEdit,
  nodeValue,
  permsOf,
  readNode,
  removeNode,
  setPermsNode,
  treeSource,
  writeNode,
} from './nodes.js';
import { asWatched, domainPath, resolvePath, segmentsOf } from './paths.js';
import { checkAccess, checkSetPerms, formatPerms, type Perm, parsePerm, serializePerms } from './permissions.js';
import type { Quotas } from './quota.js';
import {
  args,
  encode,
  type Message,
  PAYLOAD_MAX,
  pathAndValue,
  strings,
  TYPE_NAMES,
  XS,
  type XsErrno,
  XsError,
} from './wire.js';

/** Where a connection's replies go (a Unix socket in xenstored). */
export interface Peer {
  send(bytes: Buffer): void;
}

/** What a connection needs of its daemon (daemon.ts): the branch, the watch index, the domains, the counters. */
export interface ConnectionHost {
  readonly store: Store;
  readonly branch: string;
  readonly quotas: Quotas;
  readonly stats: { requests: number; committed: number; eagain: number };
  readonly entries: { count(tree: string | null, domid: number): Promise<number> };
  log(line: string): void;
  disconnected(c: Connection): void;
  addWatch(connection: Connection, entry: WatchEntry): void;
  removeWatch(connection: Connection, entry: WatchEntry): void;
  fire(path: string): void;
  /** Counts a commit acknowledged to a client, so that watches registered after it do not hear of it. */
  acknowledged(commit: string): void;
  readonly acknowledgements: number;
  introduce(domid: number): void;
  release(domid: number): boolean;
  isIntroduced(domid: number): boolean;
}

export interface WatchEntry {
  given: string;
  abs: string;
  token: string;
  /** The daemon's acknowledgement count when the watch was registered (Daemon.acknowledged). */
  since: number;
}

/** A Xenstore transaction: the store transaction and what it observed, to check at the end. */
class XsTransaction {
  /** `kind path` → what it was when first observed. */
  readonly observed = new Map<string, string>();
  readonly written = new Set<string>();
  readonly ops: string[] = [];
  constructor(readonly tx: Transaction) {}

  /** Whether this transaction wrote `abs` or an ancestor of it (its reads there see its own writes). */
  wrote(abs: string): boolean {
    for (let p = abs; ; p = p.slice(0, Math.max(1, p.lastIndexOf('/')))) {
      if (this.written.has(p)) return true;
      if (p === '/') return false;
    }
  }
}

type Observation = 'value' | 'children' | 'perms';

/** What a node looked like for one kind of read: compared at commit to what it looks like then. */
async function fingerprint(src: NodeSource, segments: string[], kind: Observation): Promise<string> {
  const node = await readNode(src, segments);
  if (!node) return '-';
  if (kind === 'value') return node.value ?? '';
  if (kind === 'children') return node.children.join('/');
  return serializePerms(await permsOf(src, segments));
}
/** A store error as the protocol's errno. */
function errnoOf(e: unknown): XsErrno {
  if (e instanceof XsError) return e.errno;
  switch ((e as StoreError).code) {
    case 'CONFLICT':
      return 'EAGAIN';
    case 'TOO_LARGE':
      return 'E2BIG';
    case 'NOT_FOUND':
      return 'ENOENT';
    case 'INVALID_KEY':
    case 'INVALID_ARGUMENT':
    // A value the branch's schemas refuse (.store/schema.json): Xen's tools know it as an invalid argument.
    case 'INVALID_VALUE':
      return 'EINVAL';
    case 'QUOTA':
      return 'ENOSPC';
    default:
      return 'EIO';
  }
}

/** One client: its requests answered in order, its watches and transactions. */
export class Connection {
  private readonly watches = new Map<string, WatchEntry>();
  private readonly txs = new Map<number, XsTransaction>();
  private nextTx = 1;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly d: ConnectionHost,
    private readonly peer: Peer,
    readonly domid: number,
  ) {}

  /** Queues a request; replies go out in the order requests came. */
  request(msg: Message): Promise<void> {
    this.queue = this.queue.then(() => this.handle(msg));
    return this.queue;
  }

  private async handle(msg: Message): Promise<void> {
    if (this.closed) return;
    this.d.stats.requests++;
    let after: (() => void) | undefined;
    try {
      const reply = await this.run(msg, (fn) => {
        after = fn;
      });
      if (reply.length > PAYLOAD_MAX) throw new XsError('E2BIG');
      this.send(msg.type, msg.reqId, msg.txId, reply);
      after?.();
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === 'EIO') {
        // An error the store did not raise on purpose is a bug or the disk: its stack is what finds it.
        const what = isStoreError(e) || e instanceof XsError ? (e as Error).message : ((e as Error).stack ?? e);
        this.d.log(`xenstored: ${TYPE_NAMES[msg.type] ?? msg.type} failed: ${what}`);
      }
      this.send(XS.ERROR, msg.reqId, msg.txId, strings(errno));
    }
  }

  private send(type: number, reqId: number, txId: number, payload: Uint8Array): void {
    if (!this.closed) this.peer.send(encode(type, reqId, txId, payload));
  }

  /** Sends a watch event for `path` (which `w` covers). */
  deliver(path: string, w: WatchEntry): void {
    this.send(XS.WATCH_EVENT, 0, 0, strings(asWatched(path, w.given, this.domid), w.token));
  }

  private clearWatches(): void {
    for (const w of this.watches.values()) this.d.removeWatch(this, w);
    this.watches.clear();
  }

  /** Ends the connection: its transactions are aborted, its watches gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearWatches();
    for (const t of this.txs.values()) await t.tx.abort().catch(() => {});
    this.txs.clear();
    this.d.disconnected(this);
  }

  private path(raw: string): { abs: string; segments: string[] } {
    const abs = resolvePath(raw, this.domid);
    return { abs, segments: segmentsOf(abs) };
  }

  /** Reads through the transaction (recording what was seen) or the branch head. */
  private async read<T>(
    t: XsTransaction | null,
    abs: string,
    kind: Observation,
    fn: (src: NodeSource) => Promise<T>,
  ): Promise<T> {
    const { db } = this.d.store;
    if (!t) return fn(treeSource(db, (await this.d.store.tip(this.d.branch)).tree));
    return t.tx.view(async (tree) => {
      const key = `${kind} ${abs}`;
      // What the branch had when the transaction began: its own writes below the node are not a change by others.
      if (!t.observed.has(key) && !t.wrote(abs)) {
        t.observed.set(key, await fingerprint(treeSource(db, t.tx.base.tree), segmentsOf(abs), kind));
      }
      return fn(treeSource(db, tree));
    });
  }

  /** Changes through the transaction or as one commit on the branch. */
  private async edit<T>(
    t: XsTransaction | null,
    what: string,
    abs: string,
    fn: (e: NodeEdit) => Promise<T>,
  ): Promise<T> {
    const message = `xenstore: ${what} ${abs}`;
    const change = (edit: TreeEdit) => fn(nodeEdit(edit));
    if (!t) {
      const r = await this.d.store.update(message, change, { branch: this.d.branch });
      if (r.commit && r.changed) this.d.acknowledged(r.commit);
      // Xen fires a write's watches even when the value was already there; the store made no commit for it, so the
      // branch feed has nothing to say.
      if (!r.changed && FIRES_UNCHANGED.has(what)) this.d.fire(abs);
      return r.value;
    }
    const value = await t.tx.update(message, change);
    t.written.add(abs);
    t.ops.push(`${what} ${abs}`);
    return value;
  }

  /** Non-dom0 callers go through the permission check; dom0 (every socket connection) may do anything. */
  private async check(src: NodeSource, segments: string[], abs: string, want: 'r' | 'w'): Promise<void> {
    if (this.domid !== 0) checkAccess(await permsOf(src, segments), this.domid, want, abs);
  }

  /**
   * A write by a domain other than dom0: it needs write access to the node, or — for a node it creates — to the
   * nearest existing ancestor, and the nodes it would own afterwards must stay within the entries quota.
   */
  private async checkCreate(e: NodeEdit, segments: string[], abs: string): Promise<void> {
    if (this.domid === 0) return;
    const missing = await missingNodes(e.src, segments);
    const existing = segments.slice(0, segments.length - missing);
    checkAccess(await permsOf(e.src, existing), this.domid, 'w', abs);
    if (missing === 0) return;
    const owned = await this.d.entries.count((await this.d.store.tip(this.d.branch)).tree, this.domid);
    if (owned + missing > this.d.quotas.maxEntriesPerDomain) {
      throw new XsError(
        'ENOSPC',
        `domain ${this.domid} would own more than ${this.d.quotas.maxEntriesPerDomain} nodes`,
      );
    }
  }

  private async run(msg: Message, after: (fn: () => void) => void): Promise<Uint8Array> {
    const { payload } = msg;
    const txFree = msg.type === XS.WATCH || msg.type === XS.UNWATCH || msg.type === XS.TRANSACTION_START;
    let t: XsTransaction | null = null;
    if (msg.txId !== 0 && !txFree) {
      t = this.txs.get(msg.txId) ?? null;
      if (!t) throw new XsError('ENOENT');
    }
    const OK = strings('OK');
    switch (msg.type) {
      case XS.READ: {
        const { abs, segments } = this.path(args(payload, 1)[0]!);
        return this.read(t, abs, 'value', async (src) => {
          const node = await mustRead(src, segments);
          await this.check(src, segments, abs, 'r');
          return nodeValue(src, node);
        });
      }
      case XS.WRITE: {
        const { path, value } = pathAndValue(payload);
        const { abs, segments } = this.path(path);
        if (value.length > this.d.quotas.maxValueBytes) throw new XsError('E2BIG');
        await this.edit(t, 'write', abs, async (e) => {
          await this.checkCreate(e, segments, abs);
          await writeNode(e, segments, value, this.domid);
        });
        return OK;
      }
      case XS.MKDIR: {
        const { abs, segments } = this.path(args(payload, 1)[0]!);
        await this.edit(t, 'mkdir', abs, async (e) => {
          await this.checkCreate(e, segments, abs);
          await mkdirNode(e, segments, this.domid);
        });
        return OK;
      }
      case XS.RM: {
        const { abs, segments } = this.path(args(payload, 1)[0]!);
        await this.edit(t, 'rm', abs, async (e) => {
          await this.check(e.src, segments, abs, 'w');
          await removeNode(e, segments);
        });
        return OK;
      }
      case XS.DIRECTORY: {
        const { abs, segments } = this.path(args(payload, 1)[0]!);
        const children = await this.read(t, abs, 'children', async (src) => {
          const node = await mustRead(src, segments);
          await this.check(src, segments, abs, 'r');
          return node.children;
        });
        const reply = strings(...children);
        if (reply.length > PAYLOAD_MAX) throw new XsError('E2BIG');
        return reply;
      }
      case XS.DIRECTORY_PART: {
        const [raw, offsetText] = args(payload, 2);
        const { abs, segments } = this.path(raw!);
        const offset = Number(offsetText);
        if (!/^\d+$/.test(offsetText!)) throw new XsError('EINVAL');
        const { children, generation } = await this.read(t, abs, 'children', async (src) => {
          const node = await mustRead(src, segments);
          await this.check(src, segments, abs, 'r');
          // Any string that changes whenever the list does: the list's own digest.
          return { children: node.children, generation: fingerprintOfList(node.children) };
        });
        const all = strings(...children);
        const head = strings(generation);
        let end = Math.min(all.length, offset + PAYLOAD_MAX - head.length - 1);
        while (end > offset && end < all.length && all[end - 1] !== 0) end--;
        const part = all.subarray(Math.min(offset, all.length), end);
        return Buffer.concat([head, part, end >= all.length ? Buffer.from([0]) : Buffer.alloc(0)]);
      }
      case XS.GET_PERMS: {
        const { abs, segments } = this.path(args(payload, 1)[0]!);
        const perms = await this.read(t, abs, 'perms', async (src) => {
          await mustRead(src, segments);
          await this.check(src, segments, abs, 'r');
          return permsOf(src, segments);
        });
        return strings(...formatPerms(perms));
      }
      case XS.SET_PERMS: {
        const [raw, ...list] = args(payload, 2, true);
        const { abs, segments } = this.path(raw!);
        const perms: Perm[] = list.map(parsePerm);
        await this.edit(t, 'set perms', abs, async (e) => {
          await mustRead(e.src, segments);
          checkSetPerms(await permsOf(e.src, segments), perms, this.domid, this.d.quotas.maxPermEntries);
          await setPermsNode(e, segments, perms);
        });
        return OK;
      }
      case XS.WATCH: {
        const [given, token] = args(payload, 2);
        const abs = resolvePath(given!, this.domid, true);
        const key = `${abs}\0${token}`;
        if (this.watches.has(key)) throw new XsError('EEXIST');
        if (this.watches.size >= this.d.quotas.maxWatches) throw new XsError('E2BIG');
        const entry = { given: given!, abs, token: token!, since: this.d.acknowledgements };
        this.watches.set(key, entry);
        this.d.addWatch(this, entry);
        // Registered watches fire once at once, after the reply.
        after(() => this.send(XS.WATCH_EVENT, 0, 0, strings(given!, token!)));
        return OK;
      }
      case XS.UNWATCH: {
        const [given, token] = args(payload, 2);
        const abs = resolvePath(given!, this.domid, true);
        const entry = this.watches.get(`${abs}\0${token}`);
        if (!entry) throw new XsError('ENOENT');
        this.watches.delete(`${abs}\0${token}`);
        this.d.removeWatch(this, entry);
        return OK;
      }
      case XS.TRANSACTION_START: {
        if (msg.txId !== 0) throw new XsError('EBUSY');
        if (this.txs.size >= this.d.quotas.maxTransactions) throw new XsError('ENOSPC');
        let id = this.nextTx;
        while (id === 0 || this.txs.has(id)) id = (id + 1) >>> 0;
        this.nextTx = (id + 1) >>> 0;
        let t: XsTransaction | null = null;
        const tx = await this.d.store.begin({
          branch: this.d.branch,
          client: `xenstore-${this.domid}`,
          validate: (tree) => validate(this.d.store, t!, tree),
          message: () => transactionMessage(id, t!.ops),
        });
        t = new XsTransaction(tx);
        this.txs.set(id, t);
        return strings(String(id));
      }
      case XS.TRANSACTION_END: {
        const [how] = args(payload, 1);
        if (!t) throw new XsError('ENOENT');
        if (how !== 'T' && how !== 'F') throw new XsError('EINVAL');
        this.txs.delete(msg.txId);
        if (how === 'F') await t.tx.abort();
        else {
          const { outcome, commit } = await t.tx.commit().catch((e: StoreError) => {
            if (e.code === 'CONFLICT') this.d.stats.eagain++;
            throw e;
          });
          if (commit && outcome !== 'empty') this.d.acknowledged(commit);
          this.d.stats.committed++;
          // A transaction whose writes changed nothing made no commit: its writes still fire, as in Xen.
          if (outcome === 'empty') {
            for (const op of t.ops) {
              const space = op.lastIndexOf(' ');
              if (FIRES_UNCHANGED.has(op.slice(0, space))) this.d.fire(op.slice(space + 1));
            }
          }
        }
        return OK;
      }
      case XS.GET_DOMAIN_PATH:
        return strings(domainPath(domidOf(args(payload, 1)[0]!)));
      case XS.INTRODUCE: {
        this.privileged();
        const [domid] = args(payload, 3);
        this.d.introduce(domidOf(domid!));
        return OK;
      }
      case XS.RELEASE:
        this.privileged();
        if (!this.d.release(domidOf(args(payload, 1)[0]!))) throw new XsError('ENOENT');
        return OK;
      case XS.IS_DOMAIN_INTRODUCED:
        this.privileged();
        return strings(this.d.isIntroduced(domidOf(args(payload, 1)[0]!)) ? 'T' : 'F');
      case XS.RESUME:
        this.privileged();
        if (!this.d.isIntroduced(domidOf(args(payload, 1)[0]!))) throw new XsError('ENOENT');
        return OK;
      case XS.SET_TARGET: {
        this.privileged();
        const [domid, target] = args(payload, 2);
        domidOf(domid!);
        domidOf(target!);
        return OK;
      }
      case XS.RESET_WATCHES:
        this.clearWatches();
        for (const x of this.txs.values()) await x.tx.abort().catch(() => {});
        this.txs.clear();
        return OK;
      case XS.CONTROL:
        this.privileged();
        return this.control(args(payload, 1, true));
      default:
        throw new XsError('ENOSYS');
    }
  }

  private privileged(): void {
    if (this.domid !== 0) throw new XsError('EACCES');
  }

  /** XS_CONTROL: `print <text>` logs a line; `status` reports the daemon; `help` lists the commands. */
  private control([command, ...rest]: string[]): Uint8Array {
    switch (command) {
      case 'print':
        this.d.log(`xenstored: ${rest.join(' ')}`);
        return strings('OK');
      case 'status': {
        const { requests, committed, eagain } = this.d.stats;
        return strings(
          `gitstore xenstored: branch ${this.d.branch}; requests=${requests} committed=${committed} ` +
            `eagain=${eagain}; this connection: watches=${this.watches.size} transactions=${this.txs.size}`,
        );
      }
      case 'help':
        return strings('print <text>\nstatus\nhelp');
      default:
        throw new XsError('EINVAL');
    }
  }
}

/** Operations whose watches fire even when they leave the node as it was (Xen's daemon fires on every write). */
const FIRES_UNCHANGED = new Set(['write', 'set perms']);

/** EAGAIN material: what a transaction observed that differs on the branch now. */
async function validate(store: Store, t: XsTransaction, tree: string | null): Promise<Conflict[]> {
  const src = treeSource(store.objects, tree);
  const out: Conflict[] = [];
  for (const [key, before] of t.observed) {
    const space = key.indexOf(' ');
    const kind = key.slice(0, space) as Observation;
    const abs = key.slice(space + 1);
    if ((await fingerprint(src, segmentsOf(abs), kind)) !== before) {
      out.push({ key: abs, kind: 'read-modified', base: null, ours: null, theirs: null });
    }
  }
  return out;
}

/** A transaction's merge commit message: what it did, as the commits of single operations say it. */
function transactionMessage(id: number, ops: string[]): string {
  const shown = ops
    .slice(0, 20)
    .map((op) => `  ${op}\n`)
    .join('');
  const more = ops.length > 20 ? `  … and ${ops.length - 20} more\n` : '';
  return `xenstore: transaction ${id} (${ops.length} change${ops.length === 1 ? '' : 's'})\n\n${shown}${more}`;
}

function fingerprintOfList(children: string[]): string {
  return String(Number.parseInt(createHash('sha1').update(children.join('\0')).digest('hex').slice(0, 12), 16));
}

function domidOf(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 0xffff) throw new XsError('EINVAL', `invalid domain id ${text}`);
  return Number(text);
}
