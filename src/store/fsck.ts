import { isStoreError } from '../errors.js';
import type { ObjectDb } from '../objects/db.js';
import { tornPacks } from '../objects/pack-check.js';
import { reachable } from '../objects/reachable.js';
import type { Files } from '../storage/fs.js';
import { isJournalLive, JOURNAL_DIR } from '../storage/journal.js';
import { readSegment } from '../storage/journal-format.js';
import type { Refs } from '../storage/refs.js';
import type { RecoveryReport } from './recovery.js';

/**
 * `store fsck` (docs/ARCHITECTURE.md, "The journal"): checks a repository as the store needs it — every ref holds an
 * object id, everything a ref reaches is there (commits, trees, blobs: git's connectivity check), every pack is whole —
 * and lists the journals. Opening the store already ran recovery (its report is part of the answer); `repair` also
 * removes torn packs, which are never a live writer's (a writer renames a pack into place only once it is written).
 */

export interface FsckProblem {
  kind: 'ref' | 'object' | 'pack';
  name: string;
  message: string;
}

export interface FsckReport {
  /** No problem left. */
  ok: boolean;
  refs: number;
  /** Objects reached from the refs. */
  objects: number;
  problems: FsckProblem[];
  /** What `repair` fixed. */
  repaired: FsckProblem[];
  /** Journal segments left in the repository: this process's or live processes' (and ones recovery kept). */
  journals: { name: string; live: boolean; records: number }[];
  /** What recovery did when this store was opened. */
  recovered: RecoveryReport;
}

export interface FsckParts {
  files: Files;
  dir: string;
  db: ObjectDb;
  refs: Refs;
}

export async function fsck(parts: FsckParts, recovered: RecoveryReport, repair = false): Promise<FsckReport> {
  const { files, dir, db, refs } = parts;
  const problems: FsckProblem[] = [];
  const repaired: FsckProblem[] = [];
  const packDir = `${dir}/objects/pack`;
  for (const name of await tornPacks(files, packDir)) {
    const problem: FsckProblem = { kind: 'pack', name, message: `${name} is torn (cut short by a power cut)` };
    if (!repair) {
      problems.push(problem);
      continue;
    }
    await files.remove(`${packDir}/${name}.idx`);
    await files.remove(`${packDir}/${name}.pack`);
    repaired.push({ ...problem, message: `${problem.message}: removed` });
  }
  if (repaired.length > 0) {
    await files.syncDir(packDir);
    db.refreshPacks();
  }
  // A ref that holds no object id is a problem; the others are where the connectivity check starts.
  const tips = await refs.list('refs/', (ref, e) => {
    if (!isStoreError(e)) throw e; // the disk's failure, not the ref's
    problems.push({ kind: 'ref', name: ref, message: `${ref}: ${e.message}` });
  });
  const seen = await reachable(db, new Set(tips.values()), [], (oid, what) =>
    problems.push({ kind: 'object', name: oid, message: `${what} ${oid} is missing` }),
  );
  const journals: FsckReport['journals'] = [];
  for (const name of await files.list(`${dir}/${JOURNAL_DIR}`)) {
    const path = `${dir}/${JOURNAL_DIR}/${name}`;
    const bytes = await files.read(path);
    journals.push({
      name,
      live: isJournalLive(files, path),
      records: bytes ? (readSegment(bytes)?.records.length ?? 0) : 0,
    });
  }
  return {
    ok: problems.length === 0,
    refs: tips.size,
    objects: seen.size,
    problems,
    repaired,
    journals,
    recovered,
  };
}
