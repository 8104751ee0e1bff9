import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Files } from './fs.js';

/**
 * Which process owns a lock or a temporary file, and whether that process is still alive — so that what a crashed
 * store process left behind is removed at once instead of blocking a branch until it is old (see leftovers.ts).
 *
 * A store process records itself in every lock it takes (git reads nothing from a `.lock` file: the store moves the
 * ref from a separate value file, see refs.ts) and in the name of every temporary file it writes. The record names
 * the process by pid, by its start time (a pid can be reused, a pid and start time cannot) and by its machine:
 * host name, boot id and pid namespace, so a pid is only ever judged where it means the same process. git's own
 * `gc.pid` records pid and host for the same reason.
 */

/** A process as a lock or a temporary file records it. `start` is null where the OS does not tell (no procfs). */
export interface Owner {
  pid: number;
  start: string | null;
  /** A digest of host name, boot id and pid namespace: equal only for processes that share one pid space. */
  machine: string;
  /** For people reading the lock or an error message. */
  host: string;
}

/** What a process knows of the one reading the record: dead (remove its files at once), alive, or unknown. */
export type Liveness = 'alive' | 'dead' | 'unknown';

/** The field of /proc/<pid>/stat after the command name that holds the start time (clock ticks since boot). */
const START_FIELD = 19;

/** /proc/<pid>/stat: the process state and start time; null when the process does not exist (or there is no procfs). */
async function procStat(files: Files, pid: number | 'self'): Promise<{ state: string; start: string } | null> {
  const text = await files.readText(`/proc/${pid}/stat`).catch(() => null);
  if (!text) return null;
  // The command name is in parentheses and may hold spaces and parentheses itself: the fields follow the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const start = fields[START_FIELD];
  return start ? { state: fields[0]!, start } : null;
}

// Keyed by the file system module: a Files and its volatile twin are one process.
const identities = new WeakMap<object, Promise<Owner>>();

/** This process, as its records name it (computed once per file system). */
export function selfOwner(files: Files): Promise<Owner> {
  let known = identities.get(files.raw);
  if (!known) {
    known = (async () => {
      const host = hostname();
      const [stat, boot, ns] = await Promise.all([
        procStat(files, 'self'),
        files.readText('/proc/sys/kernel/random/boot_id').catch(() => null),
        files.stat('/proc/self/ns/pid').catch(() => null),
      ]);
      const machine = createHash('sha1')
        .update(`${host}\n${boot?.trim() ?? ''}\n${ns?.ino ?? ''}`)
        .digest('hex')
        .slice(0, 12);
      return { pid: process.pid, start: stat?.start ?? null, machine, host };
    })();
    identities.set(files.raw, known);
  }
  return known;
}

/** A lock's content: the owner record, and a nonce so two locks of one process are told apart. */
export function lockRecord(owner: Owner): string {
  const { pid, start, machine, host } = owner;
  return `${JSON.stringify({ gitstore: 'lock', pid, start, machine, host, nonce: randomBytes(6).toString('hex') })}\n`;
}

/** The owner a lock's content names; null for a lock of unknown owner (git's hold the new value, or nothing yet). */
export function parseLockRecord(text: string): Owner | null {
  try {
    const r = JSON.parse(text) as Partial<Owner> & { gitstore?: string };
    if (r.gitstore !== 'lock' || !Number.isInteger(r.pid) || typeof r.machine !== 'string') return null;
    return { pid: r.pid!, start: r.start ?? null, machine: r.machine, host: String(r.host ?? '') };
  } catch {
    return null;
  }
}

/** The part of a temporary file's name that names its owner: `gs.<pid>.<start>.<machine>`. */
export function tempTag(owner: Owner): string {
  return `gs.${owner.pid}.${owner.start ?? 'x'}.${owner.machine}`;
}

/** The owner a temporary file's name names (see tempTag); null for names of unknown owners (git's, older ones). */
export function parseTempTag(name: string): Owner | null {
  const m = /gs\.(\d+)\.(\d+|x)\.([0-9a-f]{12})/.exec(name);
  if (!m) return null;
  return { pid: Number(m[1]), start: m[2] === 'x' ? null : m[2]!, machine: m[3]!, host: '' };
}

/** A temporary file name of this process: `<prefix><tag>_<random>`. */
export async function tempName(files: Files, prefix: string): Promise<string> {
  return `${prefix}${tempTag(await selfOwner(files))}_${randomBytes(6).toString('hex')}`;
}

/**
 * Whether `owner` is still running. Unknown for another machine (its pids mean other processes). On this one, a pid
 * that does not exist, a zombie, or one whose start time differs (the pid was reused) is dead.
 */
export async function liveness(files: Files, owner: Owner): Promise<Liveness> {
  const self = await selfOwner(files);
  if (owner.machine !== self.machine) return 'unknown';
  if (owner.pid === self.pid) return owner.start === self.start ? 'alive' : 'dead';
  if (self.start !== null) {
    const stat = await procStat(files, owner.pid);
    if (!stat || stat.state === 'Z' || stat.state === 'X') return 'dead';
    return owner.start === null || stat.start === owner.start ? 'alive' : 'dead';
  }
  // No procfs: only whether the pid exists (EPERM: it does, as another user's process).
  try {
    process.kill(owner.pid, 0);
    return 'alive';
  } catch (e) {
    return (e as { code?: string }).code === 'ESRCH' ? 'dead' : 'alive';
  }
}
