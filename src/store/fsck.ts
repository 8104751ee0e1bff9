import { isStoreError } from '../errors.js';
import type { ObjectDb } from '../objects/db.js';
import { tornPacks } from '../objects/pack-check.js';
import { isTreeMode, MODE_GITLINK } from '../objects/tree.js';
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
  const { files, dir, db } = parts;
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
  const tips = await refTips(parts, problems);
  const seen = new Set<string>();
  const missing = (oid: string, what: string) =>
    problems.push({ kind: 'object', name: oid, message: `${what} ${oid} is missing` });
  const walkTree = async (oid: string): Promise<void> => {
    if (seen.has(oid)) return;
    seen.add(oid);
    const tree = await db.readTree(oid).catch(() => null);
    if (!tree) return void missing(oid, 'tree');
    for (const [, e] of tree) {
      if (e.mode === MODE_GITLINK) continue;
      if (isTreeMode(e.mode)) await walkTree(e.oid);
      else if (!seen.has(e.oid)) {
        seen.add(e.oid);
        if ((await db.typeOf(e.oid).catch(() => null)) === null) missing(e.oid, 'blob');
      }
    }
  };
  const stack = [...tips];
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    const type = await db.typeOf(oid).catch(() => null);
    if (type === 'tag') {
      const target = /^object ([0-9a-f]{40})$/m.exec(new TextDecoder().decode((await db.read(oid)).body));
      if (target) stack.push(target[1]!);
      continue;
    }
    const commit = type === 'commit' ? await db.readCommit(oid).catch(() => null) : null;
    if (!commit) {
      missing(oid, 'commit');
      continue;
    }
    await walkTree(commit.tree);
    stack.push(...commit.parents);
  }
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
    refs: tips.length,
    objects: seen.size,
    problems,
    repaired,
    journals,
    recovered,
  };
}

/** The commits the refs name; a ref file that holds no object id is a problem. */
async function refTips({ files, dir, refs }: FsckParts, problems: FsckProblem[]): Promise<string[]> {
  const tips: string[] = [];
  const walk = async (name: string): Promise<void> => {
    for (const entry of await files.list(`${dir}/${name}`)) {
      const ref = `${name}/${entry}`;
      const stat = await files.stat(`${dir}/${ref}`);
      if (!stat) continue;
      if (stat.isDirectory()) {
        await walk(ref);
        continue;
      }
      if (entry.endsWith('.lock')) continue;
      const oid = await refs.read(ref).catch((e: unknown) => {
        if (!isStoreError(e)) throw e;
        problems.push({ kind: 'ref', name: ref, message: `${ref}: ${e.message}` });
        return null;
      });
      if (oid) tips.push(oid);
    }
  };
  await walk('refs');
  // Refs git packed (packed-refs) are refs too.
  for (const oid of (await refs.list('refs/')).values()) if (!tips.includes(oid)) tips.push(oid);
  return tips;
}
