import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { git, gitEnv } from './helpers.js';

/** Checks on a repository's packs through plain git, shared by the pack and gc tests. */

export interface DeltaEntry {
  pack: string;
  oid: string;
  type: string;
  depth: number;
  base: string;
}

/**
 * `git verify-pack -v` on every pack of a repository, each of which must pass; checks every pack has its idx (and no
 * temporary file is left). Returns the packs and every entry verify-pack lists as a delta (with a depth and a base).
 */
export function verifyPacks(dir: string): { packs: string[]; deltas: DeltaEntry[]; objects: number } {
  const packDir = path.join(dir, 'objects/pack');
  const files = fs.readdirSync(packDir);
  // No temporary files left behind; git's own .bitmap/.rev files may sit beside its packs.
  expect(files.filter((f) => !/^pack-[0-9a-f]{40}\.(pack|idx|bitmap|rev)$/.test(f))).toEqual([]);
  const packs = files.filter((f) => f.endsWith('.pack')).map((f) => f.slice(0, -5));
  expect(files.filter((f) => f.endsWith('.idx')).map((f) => f.slice(0, -4))).toEqual(packs);
  const deltas: DeltaEntry[] = [];
  let objects = 0;
  // One verify-pack for all of them (it checks each in turn, and fails if any fails); its report of each pack ends
  // with "<pack>.pack: ok".
  const r = spawnSync(
    'git',
    ['--git-dir', dir, 'verify-pack', '-v', ...packs.map((p) => path.join(packDir, `${p}.idx`))],
    {
      env: gitEnv,
      encoding: 'utf8',
      maxBuffer: 256 << 20,
    },
  );
  expect(r.status, `verify-pack: ${r.stderr}`).toBe(0);
  let pack = '';
  const ok: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const done = /^(.*)\.pack: ok$/.exec(line);
    if (done) {
      ok.push(path.basename(done[1]!));
      continue;
    }
    const m = /^([0-9a-f]{40}) (commit|tree|blob|tag) +\d+ \d+ \d+(?: (\d+) ([0-9a-f]{40}))?$/.exec(line);
    if (!m) continue;
    pack = packs[ok.length] ?? '';
    objects++;
    if (m[3]) deltas.push({ pack, oid: m[1]!, type: m[2]!, depth: Number(m[3]), base: m[4]! });
  }
  expect(ok).toEqual(packs);
  return { packs, deltas, objects };
}

/**
 * `git fsck --strict --full`: exit 0 and nothing reported but dangling objects. A store process still running on the
 * repository may consolidate packs while fsck reads them; git's fsck then reports "packfile … index not opened" for a
 * pack it listed and that was removed meanwhile (plain `git gc` beside `git fsck` does the same). Only that is run
 * again, after a pause that grows, up to 10 runs: a pack whose index is really unreadable fails every run, while the
 * race does not last (measured: fsck run back to back beside 8 writers at ~370 writes/s, 159 of 537 runs raced, at
 * most 4 in a row). Every other report fails at once.
 */
export function expectFsckClean(dir: string) {
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync('git', ['--git-dir', dir, 'fsck', '--strict', '--full'], { env: gitEnv, encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    const problems = out.split('\n').filter((l) => /^(error|warning|missing|broken|bad)/i.test(l));
    const raced = problems.length > 0 && problems.every((l) => /^error: packfile .* index not opened$/.test(l));
    if (raced && attempt < 10) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50 * attempt);
      continue;
    }
    expect(r.status, out).toBe(0);
    expect(problems, out).toEqual([]);
    return;
  }
}

/** The values of `keys` at `rev` as git reads them (one `git cat-file --batch` for all); absent keys are left out. */
export function gitValues(dir: string, keys: string[], rev = 'main'): Map<string, Buffer> {
  const found = gitBlobs(
    dir,
    keys.map((k) => `${rev}:${k}`),
  );
  return new Map(keys.flatMap((k) => (found.has(`${rev}:${k}`) ? [[k, found.get(`${rev}:${k}`)!]] : [])));
}

/** Blobs named `<rev>:<path>` as git reads them (one `git cat-file --batch` for all); missing ones are left out. */
export function gitBlobs(dir: string, names: string[]): Map<string, Buffer> {
  const out = git(['--git-dir', dir, 'cat-file', '--batch'], {
    input: names.map((n) => `${n}\n`).join(''),
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  const values = new Map<string, Buffer>();
  let at = 0;
  for (const name of names) {
    const nl = out.indexOf(10, at);
    const m = /^[0-9a-f]{40} blob (\d+)$/.exec(out.toString('utf8', at, nl));
    if (!m) {
      at = nl + 1; // "<name> missing"
      continue;
    }
    const size = Number(m[1]);
    values.set(name, out.subarray(nl + 1, nl + 1 + size));
    at = nl + 1 + size + 1;
  }
  return values;
}

/** Copies a repository out of a memfs volume onto disk, so that plain git can check it. */
export function copyFromMemfs(
  mfs: {
    readdirSync(p: string): unknown;
    statSync(p: string): { isDirectory(): boolean };
    readFileSync(p: string): unknown;
  },
  from: string,
  to: string,
): void {
  fs.mkdirSync(to, { recursive: true });
  for (const name of mfs.readdirSync(from) as string[]) {
    const src = `${from}/${name}`;
    if (mfs.statSync(src).isDirectory()) copyFromMemfs(mfs, src, path.join(to, name));
    else fs.writeFileSync(path.join(to, name), mfs.readFileSync(src) as Buffer);
  }
}
