import { isStoreError } from '../errors.js';
import { isAncestor } from '../merge/merge-base.js';
import type { ObjectDb } from '../objects/db.js';
import { installPack, packPresent } from '../objects/pack.js';
import { tornPacks } from '../objects/pack-check.js';
import type { Files } from '../storage/fs.js';
import { isJournalLive, JOURNAL_DIR } from '../storage/journal.js';
import { type JournalRecord, readSegment } from '../storage/journal-format.js';
import { liveness, parseTempTag, selfOwner, tempTag } from '../storage/owner.js';
import type { Refs } from '../storage/refs.js';

/**
 * Recovery (docs/ARCHITECTURE.md, "The journal"): every store process, at open, replays the journals left by
 * processes that are gone, restoring what a power cut took of what they acknowledged, then makes it durable and
 * removes the journals. Replaying is idempotent, so a crash during recovery only means it runs again:
 * - a pack a record holds is written again when it is missing or cut short, else fsynced where it is;
 * - a ref is moved to the journaled value only forward: when it holds the journaled old value (the move as it was
 *   made, a compaction's too), is missing (a branch the write created), torn, names a commit that is not there, or
 *   is an ancestor of the journaled value. A ref another writer has moved past (or elsewhere: a compaction, a reset)
 *   is left alone.
 * Journals of a live process are not touched; one whose owner cannot be judged (another machine, or this one
 * before a reboot) is replayed, and removed once it has not changed for UNKNOWN_OWNER_MS.
 */

/** What a ref file holds when it is not an object id: a power cut took its data. */
const TORN: unique symbol = Symbol('torn');

/** How long a journal of an owner that cannot be judged must be unchanged before it is removed. */
const UNKNOWN_OWNER_MS = 60_000;

export interface RecoveryReport {
  /** Journals replayed (one per process). */
  journals: number;
  records: number;
  /** Packs written again from the journal. */
  packs: number;
  /** Refs moved to a journaled value. */
  refs: string[];
  /** Torn packs removed. */
  torn: number;
}

export interface RecoveryParts {
  files: Files;
  dir: string;
  db: ObjectDb;
  refs: Refs;
}

/** The journal segments under the repository, by owner tag (`<tag>.<n>.wal`). */
async function journalsOf(files: Files, dir: string): Promise<Map<string, string[]>> {
  const byTag = new Map<string, string[]>();
  for (const name of await files.list(`${dir}/${JOURNAL_DIR}`)) {
    const m = /^(.+)\.\d+\.wal$/.exec(name);
    if (!m) continue;
    const list = byTag.get(m[1]!) ?? [];
    list.push(`${dir}/${JOURNAL_DIR}/${name}`);
    byTag.set(m[1]!, list);
  }
  return byTag;
}

/** A report of a recovery that found nothing to do. */
export const nothingRecovered = (): RecoveryReport => ({ journals: 0, records: 0, packs: 0, refs: [], torn: 0 });

/** Replays every journal no live process owns; see above. */
export async function recover(parts: RecoveryParts): Promise<RecoveryReport> {
  const { files, dir } = parts;
  const report = nothingRecovered();
  const done: string[] = [];
  for (const [tag, paths] of await journalsOf(files, dir)) {
    if (paths.some((p) => isJournalLive(files, p))) continue; // this process's own, open
    const owner = parseTempTag(tag);
    const state = owner ? await liveness(files, owner) : 'unknown';
    // One of this process that no open journal claims is a store of this process dropped without closing: gone.
    if (state === 'alive' && tag !== tempTag(await selfOwner(files))) continue;
    const segments = [];
    for (const path of paths) {
      const bytes = await files.read(path);
      const segment = bytes && readSegment(bytes);
      if (segment) segments.push(segment);
    }
    segments.sort((a, b) => a.generation - b.generation);
    const records = segments.flatMap((s) => s.records);
    await replay(parts, records, report);
    report.journals++;
    report.records += records.length;
    if (state === 'unknown') {
      const stats = await Promise.all(paths.map((p) => files.stat(p)));
      if (stats.some((s) => s && Date.now() - s.mtimeMs < UNKNOWN_OWNER_MS)) continue;
    }
    done.push(...paths);
  }
  if (report.journals === 0) return report;
  // A process died with a journal: maybe a power cut, which can leave packs written without fsync torn (a
  // transaction's, or one the journal has restored under its name already). Plain git would fail on them. They go
  // before the journals do: a journal left is what tells the next open, after a cut here, to look again.
  const packDir = `${dir}/objects/pack`;
  for (const name of await tornPacks(files, packDir)) {
    await files.remove(`${packDir}/${name}.idx`);
    await files.remove(`${packDir}/${name}.pack`);
    report.torn++;
  }
  await files.syncDir(packDir);
  for (const path of done) await files.remove(path);
  if (done.length > 0) await files.syncDir(`${dir}/${JOURNAL_DIR}`);
  return report;
}

async function replay(parts: RecoveryParts, records: JournalRecord[], report: RecoveryReport): Promise<void> {
  const { files, dir, db, refs } = parts;
  const packDir = `${dir}/objects/pack`;
  // Objects first: a ref is only moved to a commit that is there.
  for (const { packs } of records) {
    for (const { name, pack, idx } of packs) {
      if (await packPresent(files, packDir, name, pack.length, idx.length)) {
        await files.syncFile(`${packDir}/${name}.pack`);
        await files.syncFile(`${packDir}/${name}.idx`);
        continue;
      }
      await files.mkdirp(packDir);
      await installPack(files, packDir, name, pack, idx);
      report.packs++;
    }
  }
  await files.syncDir(packDir);
  db.refreshPacks();
  const exists = (oid: string) =>
    db.readCommit(oid).then(
      () => true,
      () => false,
    );
  for (const { refs: moves } of records) {
    for (const { ref, old, next } of moves) {
      const read: string | null | typeof TORN = await refs.read(ref).catch((e: unknown) => {
        if (!isStoreError(e) || e.code !== 'CORRUPT') throw e;
        return TORN;
      });
      if (typeof read === 'symbol') {
        // Its directory entry was made durable, its data was not (the journal does not flush ref files): the
        // journal has what it held. Removed, then written as a ref that did not exist.
        if (!(await exists(next))) continue;
        await files.remove(`${dir}/${ref}`);
        if (await refs.compareAndSwap(ref, null, next)) report.refs.push(ref);
        continue;
      }
      const current: string | null = read;
      if (current === next) {
        const path = `${dir}/${ref}`;
        await files.syncFile(path);
        await files.syncDir(path.slice(0, path.lastIndexOf('/')));
        continue;
      }
      if (!(await exists(next))) continue; // not restorable: its pack was never whole (not acknowledged)
      // The move as journaled (from its own old value: also a compaction's, which is not a fast-forward), or a
      // fast-forward from an older value a power cut brought back, or over a ref whose commit a power cut took.
      const forward =
        current === old ||
        (current === null
          ? old === null // a branch the write created; one deleted since stays deleted
          : !(await exists(current)) ||
            (await isAncestor((oid) => db.readCommit(oid), current, next).catch(() => false)));
      if (forward && (await refs.compareAndSwap(ref, current, next))) report.refs.push(ref);
    }
  }
}
