/**
 * `store gc`: every pack rewritten as one, deflated, wide trees as delta chains — through the library, the real
 * `store` binary and the HTTP API, and while other processes write (plain git reading all along). Needs
 * `npm run build` first (the binary and test/fixtures/gc-writer.mjs run the compiled code).
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { type GcResult, openStore, type Store, StoreClient } from '../src/index.js';
import { expectFsckClean, gitValues, verifyPacks } from './git-packs.js';
import { cliEnv, diskStore, git, gitEnv, random, runProcess, sleep, until } from './helpers.js';
import { startWriter, stopChildren, type Writer } from './writers.js';

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../dist/bundle/main.js', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
const GC_WRITER = fileURLToPath(new URL('./fixtures/gc-writer.mjs', import.meta.url));

const GC_FIELDS = ['bytesAfter', 'bytesBefore', 'ms', 'objects', 'packsAfter', 'packsBefore'];

const apps: FastifyInstance[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  await stopChildren(children);
});

beforeAll(() => {
  for (const file of [BUNDLE, DIST]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  }
});

// ---- git's view ------------------------------------------------------------------------------------------------

/** The packs of a repository and their total size in bytes, .pack and .idx files (what gc reports as bytes). */
function packFiles(dir: string): { count: number; bytes: number } {
  const packDir = path.join(dir, 'objects/pack');
  const files = fs.readdirSync(packDir);
  const bytes = files
    .filter((f) => /\.(pack|idx)$/.test(f))
    .reduce((n, f) => n + fs.statSync(path.join(packDir, f)).size, 0);
  return { count: files.filter((f) => f.endsWith('.pack')).length, bytes };
}

/** How many distinct objects the repository holds, as git counts them. */
const gitObjectCount = (dir: string) =>
  git(['--git-dir', dir, 'cat-file', '--batch-all-objects', '--batch-check'], { maxBuffer: 64 << 20 })
    .toString()
    .trim()
    .split('\n').length;

// ---- the store's view ------------------------------------------------------------------------------------------

interface View {
  branches: { name: string; head: string; default: boolean }[];
  /** Per branch: its whole first-parent log, page by page. */
  pages: Record<string, { id: string; subject: string; parents: string[] }[][]>;
  /** Per branch: every key's value (base64). */
  values: Record<string, Record<string, string>>;
}

/** Everything a reader can see of a store: branches, each branch's whole log (paged) and every value. */
async function view(store: Store): Promise<View> {
  const branches = await store.branches();
  const out: View = { branches, pages: {}, values: {} };
  for (const { name } of branches) {
    const pages: View['pages'][string] = [];
    let cursor: string | null | undefined;
    do {
      const page = await store.log({ branch: name, limit: 9, ...(cursor ? { cursor } : {}) });
      pages.push(page.commits.map((c) => ({ id: c.id, subject: c.subject, parents: c.parents })));
      cursor = page.next;
    } while (cursor);
    const values: Record<string, string> = {};
    for (const e of (await store.list('', { branch: name, recursive: true })).entries) {
      values[e.key] = Buffer.from(await store.get(e.key, { branch: name })).toString('base64');
    }
    out.pages[name] = pages;
    out.values[name] = values;
  }
  return out;
}

const WIDE = 300;
const wideKey = (i: number) => `local/domain/${i}/name`;

/** A wide directory (300 entries, ~9 KB serialised) in one commit, then `writes` single-key commits, one pack each. */
async function wideHistory(store: Store, writes: number, seed: number, branch = 'main'): Promise<void> {
  if (branch === 'main') {
    await store.batch(
      Array.from({ length: WIDE }, (_, i) => ({ op: 'set' as const, key: wideKey(i), value: `domain-${i}` })),
    );
  }
  const rand = random(seed);
  for (let n = 0; n < writes; n++) await store.set(wideKey(rand(WIDE)), `${branch}-${seed}-${n}`, { branch });
}

// ---- processes ---------------------------------------------------------------------------------------------------

const run = runProcess;

/** The real `store` binary. */
const storeCli = (args: string[], env: NodeJS.ProcessEnv = cliEnv()) => run(process.execPath, [BIN, ...args], env);

function expectGcResult(r: unknown): asserts r is GcResult {
  expect(Object.keys(r as object).sort()).toEqual(GC_FIELDS);
  for (const k of GC_FIELDS) expect(Number.isInteger((r as Record<string, unknown>)[k]), k).toBe(true);
}

/** A test/fixtures/gc-writer.mjs process (it stops when its stdin ends), ended after each test. */
function startGcWriter(dir: string, id: string): Writer {
  const writer = startWriter(GC_WRITER, [dir, id], {}, 'pipe');
  children.push(writer.child);
  return writer;
}

// ---- tests -------------------------------------------------------------------------------------------------------

describe('store gc', () => {
  it('merges many packs into one, smaller; readers see exactly what they saw; git agrees, and git gc still works', async () => {
    const store = await diskStore();
    const dir = store.dir;
    // > 32 packs, so background consolidation has already made packs with deltas of their own.
    await wideHistory(store, 70, 1);
    await store.createBranch('feature');
    await wideHistory(store, 6, 2, 'feature');
    await store.set('feature/only', 'on a branch', { branch: 'feature' });
    for (let n = 0; n < 5; n++) await store.set(`cfg/k${n}`, `config ${n}`);
    await store.set('bin', Uint8Array.from([0, 255, 10, 13, 0, 128]));
    expect((await store.merge('feature', { strategy: 'theirs' })).outcome).toBe('merged');
    await store.delete('cfg/k0');
    await store.db.idle();

    const before = await view(store);
    const disk = packFiles(dir);
    const objects = gitObjectCount(dir);
    expect(disk.count).toBeGreaterThan(5);

    const r = await store.gc();
    expectGcResult(r);
    expect(r.packsBefore).toBe(disk.count);
    expect(r.bytesBefore).toBe(disk.bytes);
    expect(r.packsAfter).toBe(1);
    expect(packFiles(dir)).toEqual({ count: 1, bytes: r.bytesAfter });
    expect(r.objects).toBe(objects);

    // Nothing a reader sees changed: this store (its caches) and a fresh one (everything read from the new pack).
    expect(await view(store)).toEqual(before);
    const fresh = await openStore({ fs, dir });
    expect(await view(fresh)).toEqual(before);

    const { packs, deltas, objects: packed } = verifyPacks(dir);
    expect(packs).toHaveLength(1);
    expect(packed).toBe(objects);
    expect(gitObjectCount(dir)).toBe(objects);
    expect(deltas.length).toBeGreaterThan(50);
    expect(Math.max(...deltas.map((d) => d.depth))).toBeLessThanOrEqual(50); // git's default --depth
    expectFsckClean(dir);
    const mainKeys = Object.keys(before.values.main!);
    const values = gitValues(dir, mainKeys);
    expect(values.size).toBe(mainKeys.length);
    for (const key of mainKeys) {
      expect(values.get(key)!.toString('base64'), key).toBe(before.values.main![key]);
    }
    expect(git(['--git-dir', dir, 'show', 'main:feature/only']).toString()).toBe('on a branch');
    expect(git(['--git-dir', dir, 'rev-list', '--count', 'main']).toString().trim()).toBe(
      String(git(['--git-dir', dir, 'rev-list', 'main']).toString().trim().split('\n').length),
    );

    // Deflated, with delta chains: smaller than the packs it replaced (which had deltas of their own).
    expect(r.bytesAfter).toBeLessThan(r.bytesBefore);

    // The store writes on after gc, and git's own gc (which rewrites every delta) still works on the result.
    await fresh.set('after/gc', 'written after gc');
    const aggressive = spawnSync('git', ['--git-dir', dir, 'gc', '--aggressive', '--quiet'], {
      env: gitEnv,
      encoding: 'utf8',
    });
    expect(aggressive.status, aggressive.stderr).toBe(0);
    expectFsckClean(dir);
    verifyPacks(dir);
    const afterGit = await openStore({ fs, dir });
    expect(await afterGit.getText('after/gc')).toBe('written after gc');
    const seen = await view(afterGit);
    expect(seen.values.feature).toEqual(before.values.feature);
    expect(seen.values.main).toEqual({
      ...before.values.main,
      'after/gc': Buffer.from('written after gc').toString('base64'),
    });
    expect(seen.pages.main!.flat().slice(1)).toEqual(before.pages.main!.flat());

    // And store gc on the packs git made (its deltas, not ours).
    const now = gitObjectCount(dir);
    const again = await afterGit.gc();
    expect(again.packsAfter).toBe(1);
    expect(again.objects).toBe(now);
    expect(verifyPacks(dir).objects).toBe(now);
    expectFsckClean(dir);
    // The files git kept beside the pack store gc replaced (its .bitmap) went with it: git counts none as garbage.
    expect.soft(git(['--git-dir', dir, 'count-objects', '-v']).toString()).toMatch(/^garbage: 0$/m);
    expect(await view(await openStore({ fs, dir }))).toEqual(seen);
  });

  it("gc of a gc'd repository keeps its delta chains: the pack does not grow", async () => {
    const store = await diskStore();
    const dir = store.dir;
    await wideHistory(store, 40, 3);
    await store.close(); // background consolidation (every 32 packs) has finished
    const before = packFiles(dir).count;
    expect(before).toBeGreaterThan(1);
    const first = await store.gc();
    expect(first.packsBefore).toBe(before);
    expect(first.packsAfter).toBe(1);
    const chained = verifyPacks(dir).deltas.length;
    expect(chained).toBeGreaterThan(30);

    const second = await store.gc();
    expect(second.packsBefore).toBe(1);
    expect(second.packsAfter).toBe(1);
    expect(second.objects).toBe(first.objects);
    expect(second.bytesBefore).toBe(first.bytesAfter);
    const { deltas } = verifyPacks(dir);
    expect(deltas.length).toBeGreaterThanOrEqual(chained);
    expect(second.bytesAfter).toBeLessThanOrEqual(second.bytesBefore);
    expectFsckClean(dir);
    const fresh = await openStore({ fs, dir });
    expect((await fresh.list('local/domain')).entries).toHaveLength(WIDE);
    expect(await fresh.getText(wideKey(0), { at: 'main~40' })).toBe('domain-0');
  });

  it('the CLI (`store gc`, `store gc --json`, also with --url) and POST /v1/gc on a real server', async () => {
    const store = await diskStore();
    const dir = store.dir;
    await wideHistory(store, 11, 4);
    await store.close();

    // --json: the result object, nothing else.
    let disk = packFiles(dir);
    let objects = gitObjectCount(dir);
    let r = await storeCli(['gc', '--repo', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const json = JSON.parse(r.stdout) as GcResult;
    expectGcResult(json);
    expect(json).toMatchObject({ packsBefore: 12, packsAfter: 1, bytesBefore: disk.bytes, objects });
    expect(json.bytesAfter).toBe(packFiles(dir).bytes);
    expect(json.bytesAfter).toBeLessThan(json.bytesBefore);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);

    // Without --json: one line for people.
    const writer = await openStore({ fs, dir });
    for (let n = 0; n < 3; n++) await writer.set(`cfg/k${n}`, `v${n}`);
    disk = packFiles(dir);
    expect(disk.count).toBe(4);
    objects = gitObjectCount(dir);
    r = await storeCli(['gc', '--repo', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
    const after = packFiles(dir);
    expect(after.count).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        `^packed ${objects} objects: 4 packs, ${mb(disk.bytes)} → 1 pack, ${mb(after.bytes)} \\(\\d+ ms\\)\n$`,
      ),
    );
    expectFsckClean(dir);
    verifyPacks(dir);

    // Over HTTP: a real server on a port, POST /v1/gc, through fetch, StoreClient and the CLI's --url.
    const served = await openStore({ fs, dir });
    const app = await buildApp({ store: served });
    apps.push(app);
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    for (let n = 0; n < 2; n++) {
      const put = await fetch(`${base}/v1/branches/main/keys/http/k${n}`, {
        method: 'PUT',
        body: `over http ${n}`,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(put.status).toBeLessThan(300);
      await put.arrayBuffer();
    }
    disk = packFiles(dir);
    expect(disk.count).toBe(3);
    const res = await fetch(`${base}/v1/gc`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as GcResult;
    expectGcResult(body);
    expect(body).toMatchObject({
      packsBefore: 3,
      packsAfter: 1,
      bytesBefore: disk.bytes,
      objects: gitObjectCount(dir),
    });
    expect(body.bytesAfter).toBe(packFiles(dir).bytes);

    await served.set('http/k9', 'one more');
    const viaClient = await new StoreClient(base).gc();
    expectGcResult(viaClient);
    expect(viaClient).toMatchObject({ packsBefore: 2, packsAfter: 1 });

    await served.set('http/k10', 'and another');
    r = await storeCli(['gc', '--url', base, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const viaCli = JSON.parse(r.stdout) as GcResult;
    expectGcResult(viaCli);
    expect(viaCli).toMatchObject({ packsBefore: 2, packsAfter: 1 });

    expectFsckClean(dir);
    verifyPacks(dir);
    expect(gitValues(dir, ['http/k0', 'http/k1', 'http/k9', 'http/k10', 'cfg/k2'])).toEqual(
      new Map(
        [
          ['http/k0', 'over http 0'],
          ['http/k1', 'over http 1'],
          ['http/k9', 'one more'],
          ['http/k10', 'and another'],
          ['cfg/k2', 'v2'],
        ].map(([k, v]) => [k!, Buffer.from(v!)]),
      ),
    );
    expect(await (await openStore({ fs, dir })).getText('http/k10')).toBe('and another');
  });

  // A long simulation (three gcs amid writer processes; over 40 s of a loaded 2-core machine): `npm run test:slow`.
  // The gc scenarios above run in `npm test`.
  it('runs while two writer processes and in-process writers write, with plain git reading all along', {
    tags: ['slow'],
  }, async () => {
    const GCS = 3;
    const PACE = 30;
    const store = await diskStore();
    const dir = store.dir;
    // A wide directory to start with, so gc has delta chains to make from the start.
    await wideHistory(store, 0, 5);

    const writers = [startGcWriter(dir, '1'), startGcWriter(dir, '2')];
    const acked = () => writers.reduce((n, w) => n + w.acks.size, 0);
    let stop = false;

    // In-process writers: four concurrent callers on this process's store (batches of several commits).
    const local = new Map<string, string>();
    const localFailures: string[] = [];
    const localWriters = Array.from({ length: 4 }, async (_, c) => {
      for (let n = 0; !stop; n++) {
        const key = `local/w${c}/k${n}`;
        try {
          await store.set(key, `local ${c}.${n}`);
        } catch (e) {
          localFailures.push(`${key}: ${(e as Error).message}`);
          return;
        }
        local.set(key, `local ${c}.${n}`);
      }
    });

    // Plain git reading in a loop: each command must succeed, whatever gc is doing to the packs.
    const gitFailures: string[] = [];
    let gitReads = 0;
    const gitReaders = (async () => {
      const commands = [
        ['log', '-1', '--format=%H', 'main'],
        ['cat-file', '-p', 'main^{tree}'],
        ['rev-list', '--count', 'main'],
      ];
      while (!stop) {
        for (const args of commands) {
          const r = await run('git', ['--git-dir', dir, ...args]);
          gitReads++;
          if (r.code !== 0 || r.stdout.trim() === '') gitFailures.push(`git ${args.join(' ')}: ${r.code} ${r.stderr}`);
        }
        await sleep(10); // leave the two cores to the writers and gc
      }
    })();

    // A reader with its own store (its own pack list and caches) reading acknowledged values back; refreshMs 0, so
    // it looks at the ref on every read instead of a head up to 10 ms old.
    const readFailures: string[] = [];
    let storeReads = 0;
    const reader = await openStore({ fs, dir, refreshMs: 0 });
    const storeReader = (async () => {
      const rand = random(6);
      while (!stop) {
        const id = 1 + rand(2);
        const w = writers[id - 1]!;
        const key = `wide/${id}-${rand(Math.max(1, w.acks.size))}`;
        if (!w.acks.has(key)) {
          await sleep(5);
          continue;
        }
        try {
          const value = await reader.getText(key);
          if (value !== `v${key.slice('wide/'.length)}`) readFailures.push(`${key}: ${value}`);
        } catch (e) {
          readFailures.push(`${key}: ${(e as Error).message}`);
        }
        storeReads++;
      }
    })();

    // store gc, the real binary, three times while all that goes on, each after every writer process acknowledged
    // PACE more writes; from the third on, the writer processes also consolidate their own packs (every 32 writes).
    // A gc that fails is recorded and asserted on last, after what matters more: that no write was lost.
    const gcs: GcResult[] = [];
    const gcFailures: string[] = [];
    try {
      for (let g = 1; g <= GCS; g++) {
        await until(
          () => writers.every((w) => w.acks.size >= PACE * g),
          `writers to acknowledge ${PACE * g} writes each`,
          120_000,
        );
        const r = await storeCli(['gc', '--repo', dir, '--json'], { ...cliEnv(), STORE_DEBUG: '1' });
        if (r.code !== 0) {
          gcFailures.push(`gc ${g} exited ${r.code}: ${r.stderr}`);
          continue;
        }
        const result = JSON.parse(r.stdout) as GcResult;
        expectGcResult(result);
        expect(result.packsAfter).toBeGreaterThanOrEqual(1);
        expect(result.objects).toBeGreaterThan(WIDE);
        gcs.push(result);
      }
      // Writes go on after the last gc too.
      const last = acked();
      await until(() => acked() >= last + 20, 'writes after the last gc', 120_000);
    } finally {
      // Stop everything, also when an assertion above failed.
      stop = true;
      for (const w of writers) w.child.stdin!.end();
    }
    const exits = await Promise.all(writers.map((w) => w.exited));
    for (const [i, e] of exits.entries())
      expect(e, `writer ${i + 1}: ${writers[i]!.stderr()}`).toEqual({ code: 0, signal: null });
    await Promise.all([...localWriters, gitReaders, storeReader]);
    await store.close();
    await reader.close();

    expect(localFailures).toEqual([]);
    expect(gitFailures).toEqual([]);
    expect(gitReads).toBeGreaterThan(0);
    expect(readFailures).toEqual([]);
    expect(storeReads).toBeGreaterThan(0);

    // Every acknowledged write is there: for a fresh store and for git.
    const expected = new Map(local);
    for (const [id, w] of [
      ['1', writers[0]!],
      ['2', writers[1]!],
    ] as const) {
      expect(w.acks.size).toBeGreaterThanOrEqual(PACE * GCS);
      for (const key of w.acks.keys()) expected.set(key, `v${id}-${key.slice(`wide/${id}-`.length)}`);
    }
    const fresh = await openStore({ fs, dir });
    for (const [key, value] of expected) expect(await fresh.getText(key), key).toBe(value);
    const inGit = gitValues(dir, [...expected.keys()]);
    expect(inGit.size).toBe(expected.size);
    for (const [key, value] of expected) expect(inGit.get(key)?.toString(), key).toBe(value);
    // Each acknowledged commit is in main's history.
    const history = new Set(git(['--git-dir', dir, 'rev-list', 'main']).toString().trim().split('\n'));
    for (const w of writers) for (const commit of w.acks.values()) expect(history.has(commit)).toBe(true);
    expect((await fresh.list('wide')).entries).toHaveLength(writers[0]!.acks.size + writers[1]!.acks.size);
    expectFsckClean(dir);
    verifyPacks(dir);

    // Every gc succeeded, though writer processes consolidated (removed) packs it had listed.
    expect(gcFailures).toEqual([]);
    expect(gcs).toHaveLength(GCS);
  });
});
