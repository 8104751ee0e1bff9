/**
 * Compaction (issue 7) over HTTP: POST /v1/branches/:b/compact on a real socket while 50 clients write, its answers
 * (dry run, 400, 404, 410 COMPACTED for reads at dropped commits or inside compacted gaps) and StoreClient.compact.
 * The server is the real app (server/app.ts) listening on a free port over a store opened here: serve()
 * (server/main.ts) takes no store options, and these tests need `pruneGraceMs: 0` (pruning seen at once) and, where
 * commit times matter, a clock they move.
 */
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { type CompactResult, type OpenOptions, openStore, type Store, StoreClient } from '../src/index.js';
import { expectFsckClean, gitValues } from './git-packs.js';
import { codeOf, diskStore, git, sleep } from './helpers.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** A disk store (pruning without grace) served by the real app on a free port. */
async function serveStore(options: Partial<OpenOptions> = {}): Promise<{ store: Store; base: string }> {
  const store = await diskStore({ pruneGraceMs: 0, ...options });
  // 50 clients share one address: the per-caller rate limit (1,000/s by default) would answer some with 429.
  const app = await buildApp({ store, limits: { requestsPerSecond: 0 } });
  apps.push(app);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { store, base };
}

/** Everything older than a second (whole seconds: up to two) collapses into one snapshot per epoch-aligned hour. */
const SHORT_POLICY = [
  { within: '1s', keep: 'all' },
  { within: '1y', every: '1h' },
];

const keyUrl = (base: string, key: string, branch = 'main') =>
  `${base}/v1/branches/${encodeURIComponent(branch)}/keys/${key}`;

type ErrorBody = { error: { code: string; message: string; data?: Record<string, unknown> } };

async function compactHttp(base: string, body: unknown, branch = 'main') {
  const res = await fetch(`${base}/v1/branches/${encodeURIComponent(branch)}/compact`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  return { status: res.status, json: (await res.json()) as CompactResult & Partial<ErrorBody> };
}

/** A GET of a key at a revision: status, body, and the commit it was read at. */
async function getAt(base: string, key: string, at: string) {
  const res = await fetch(`${keyUrl(base, key)}?at=${encodeURIComponent(at)}`);
  return { status: res.status, text: await res.text(), commit: res.headers.get('x-store-commit') };
}

async function headOf(base: string, branch = 'main'): Promise<string> {
  const list = (await (await fetch(`${base}/v1/branches`)).json()) as { name: string; head: string }[];
  const found = list.find((b) => b.name === branch);
  expect(found, `branch ${branch}`).toBeDefined();
  return found!.head;
}

/** The first-parent chain of a branch as [commit, ...parents], newest first. */
const firstParents = (dir: string, rev = 'main'): string[][] =>
  git(['--git-dir', dir, 'rev-list', '--first-parent', '--parents', rev])
    .toString()
    .trim()
    .split('\n')
    .map((line) => line.split(' '));

/** The branch's compaction map as plain git shows it: 16-digit old id → [new id, kept|dropped]. */
function compactionMap(dir: string, branch = 'main'): Map<string, { to: string; kind: string }> {
  const text = git(['--git-dir', dir, 'show', `refs/store/compacted/${branch}:map`]).toString();
  const map = new Map<string, { to: string; kind: string }>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{16}) ([0-9a-f]{40}) (kept|dropped) \d+$/.exec(line);
    if (m) map.set(m[1]!, { to: m[2]!, kind: m[3]! });
  }
  return map;
}

const hasRef = (dir: string, ref: string) =>
  git(['--git-dir', dir, 'for-each-ref', '--format=%(refname)', ref]).toString().trim() !== '';

/** The invariants every compaction result has, whatever the history. */
function expectConsistent(r: CompactResult) {
  expect(r.commits).toBe(r.kept + r.dropped);
  expect(r.kept).toBe(r.recent + r.snapshots.length);
  for (const s of r.snapshots) {
    expect(s.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(Number.isNaN(Date.parse(s.time))).toBe(false);
  }
  expect(r.pruned.objects).toBeGreaterThanOrEqual(0);
  expect(r.ms).toBeGreaterThanOrEqual(0);
}

describe('compaction over HTTP while 50 clients write', () => {
  it('runs three times: every acknowledged write is kept, old commit ids still answer, history shrinks, fsck clean', async () => {
    const { store, base } = await serveStore();
    const dir = store.dir;
    const CLIENTS = 50;
    const KEYS = 8;
    const latest = new Map<string, string>();
    const acks: { key: string; value: string; commit: string }[] = [];
    const failures: string[] = [];
    let stop = false;
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; !stop; n++) {
        // Paced (under ~17 writes/s each, ~830/s in all): this is about compaction amid writes. Flat out, with a
        // faster write path (~3,000/s), each compaction and its pruning had more history to walk than the last and
        // fell behind for good (see the issue 16 note).
        await sleep(60);
        const key = `c${c}/k${n % KEYS}`;
        const value = `value ${c}.${n}`;
        try {
          const res = await fetch(keyUrl(base, key), {
            method: 'PUT',
            body: value,
            headers: { 'content-type': 'application/octet-stream' },
          });
          const text = await res.text();
          if (res.status >= 200 && res.status < 300) {
            latest.set(key, value);
            acks.push({ key, value, commit: (JSON.parse(text) as { commit: string }).commit });
          } else failures.push(`PUT ${key}: ${res.status} ${text}`);
        } catch (e) {
          failures.push(`PUT ${key}: ${(e as Error).message}`);
        }
      }
    });

    // Three compactions while the clients write, the first once some commits are two whole seconds old.
    const runs: { result: CompactResult; acksBefore: number }[] = [];
    try {
      await sleep(2_100);
      for (let i = 0; i < 3; i++) {
        const acksBefore = acks.length;
        const { status, json } = await compactHttp(base, { policy: SHORT_POLICY });
        expect(status, JSON.stringify(json)).toBe(200);
        expectConsistent(json);
        expect(json.dryRun).toBe(false);
        runs.push({ result: json, acksBefore });
        await sleep(300);
      }
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    expect(failures).toEqual([]);
    expect(acks.length).toBeGreaterThan(300);

    for (const { result } of runs) {
      // Whatever is older than the first tier fits in one hour, or two if the test straddled an hour's end.
      expect(result.snapshots.length).toBeLessThanOrEqual(2);
      if (result.dropped > 0) expect(result.head).not.toBe(result.before);
    }
    expect(runs.some((r) => r.result.dropped > 0)).toBe(true);
    const last = runs.at(-1)!.result;

    // Every acknowledged write: the last value of each key is at the head, through git and over HTTP.
    const keys = [...latest.keys()];
    expect(keys).toHaveLength(CLIENTS * KEYS);
    expect(gitValues(dir, keys)).toEqual(new Map([...latest].map(([k, v]) => [k, Buffer.from(v)])));
    const reads = await Promise.all(keys.map(async (k) => (await fetch(keyUrl(base, k))).text()));
    expect(reads).toEqual(keys.map((k) => latest.get(k)));
    expectFsckClean(dir);

    // The history: the last compaction's head is on the branch, and the branch holds no more than what it kept plus
    // the writes acknowledged since it was asked for — far fewer commits than writes. Every commit on the
    // first-parent chain has one parent (the root none).
    git(['--git-dir', dir, 'merge-base', '--is-ancestor', last.head!, 'main']);
    const chain = firstParents(dir);
    expect(chain.length).toBeLessThanOrEqual(last.kept + acks.length - runs.at(-1)!.acksBefore);
    expect(chain.length).toBeLessThan(acks.length);
    expect(chain.slice(0, -1).filter((c) => c.length !== 2)).toEqual([]);
    expect(chain.at(-1)).toHaveLength(1);

    // Every acknowledged commit id still answers: on the chain as it is, renamed (the same state under its new id), or
    // dropped (410 COMPACTED, never a wrong value).
    const onChain = new Set(chain.map((c) => c[0]!));
    const map = compactionMap(dir);
    const seen = { current: 0, kept: 0, dropped: 0 };
    for (const a of acks) {
      const entry = map.get(a.commit.slice(0, 16));
      if (onChain.has(a.commit)) {
        // (A map entry for a commit still on the branch could only be itself, kept.)
        if (entry) expect(entry, a.commit).toEqual({ to: a.commit, kind: 'kept' });
        expect(await store.getText(a.key, { at: a.commit })).toBe(a.value);
        seen.current++;
      } else if (entry?.kind === 'kept') {
        expect(onChain.has(entry.to), `${a.commit} → ${entry.to}`).toBe(true);
        expect(await store.getText(a.key, { at: a.commit })).toBe(a.value);
        seen.kept++;
      } else {
        expect(entry?.kind, `${a.commit} is neither on main nor in the map`).toBe('dropped');
        expect(await codeOf(store.getText(a.key, { at: a.commit }))).toBe('COMPACTED');
        seen.dropped++;
      }
    }
    expect(seen.dropped).toBeGreaterThan(0);
    expect(seen.kept).toBeGreaterThan(0);

    // Once quiet and two seconds on, one more compaction leaves one snapshot per hour: the head, maybe one more.
    await sleep(2_100);
    const { status, json: quiet } = await compactHttp(base, { policy: SHORT_POLICY });
    expect(status).toBe(200);
    expectConsistent(quiet);
    expect(quiet.recent).toBe(0);
    expect(quiet.dropped).toBeGreaterThan(0);
    expect(quiet.pruned.objects).toBeGreaterThan(0);
    const after = firstParents(dir);
    expect(after.length).toBe(quiet.kept);
    expect(after.length).toBeLessThanOrEqual(2);
    expect(gitValues(dir, keys)).toEqual(new Map([...latest].map(([k, v]) => [k, Buffer.from(v)])));
    expectFsckClean(dir);
  });
});

// ---- what POST /v1/branches/:b/compact answers, on a history with known commit times ----------------------------

const T0 = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;
const POLICY = [
  { within: '1h', keep: 'all' },
  { within: '1d', every: '1h' },
];

/**
 * 18 commits of `k`, one each 10 minutes from 00:00 to 02:50 (value `v<i>` at 00:i0), compacted at 03:20 with
 * POLICY: 02:20–02:50 are recent (4), the hours 00, 01 and 02 give one snapshot each (00:50, 01:50, 02:10), and the
 * other 11 are dropped.
 */
async function knownHistory(options: Partial<OpenOptions> = {}) {
  let t = T0;
  const served = await serveStore({ clock: () => new Date(t), ...options });
  const commits: string[] = [];
  for (let i = 0; i < 18; i++) {
    t = T0 + i * 10 * MIN;
    commits.push((await served.store.set('k', `v${i}`)).commit);
  }
  t = T0 + (3 * 60 + 20) * MIN;
  return { ...served, commits };
}

describe('POST /v1/branches/:b/compact', () => {
  it('a dry run reports what the real run then does and changes nothing; dropped ids answer 410, kept ones resolve', async () => {
    const { store, base, commits } = await knownHistory();
    const dir = store.dir;
    const head = await headOf(base);
    expect(head).toBe(commits[17]);
    const packs = fs.readdirSync(`${dir}/objects/pack`).sort();

    const dry = await compactHttp(base, { dryRun: true, policy: POLICY });
    expect(dry.status, JSON.stringify(dry.json)).toBe(200);
    expectConsistent(dry.json);
    expect(dry.json).toMatchObject({
      branch: 'main',
      dryRun: true,
      before: head,
      head,
      commits: 18,
      kept: 7,
      recent: 4,
      dropped: 11,
    });
    expect(dry.json.snapshots).toEqual([
      { commit: commits[13], time: '2026-01-01T02:10:00.000Z' },
      { commit: commits[11], time: '2026-01-01T01:50:00.000Z' },
      { commit: commits[5], time: '2026-01-01T00:50:00.000Z' },
    ]);
    expect(dry.json.pruned.objects).toBeGreaterThan(0);
    expect(dry.json.bytesAfter).toBe(dry.json.bytesBefore);
    // Nothing changed: the head, the packs, no compaction map; every old commit still reads as it was.
    expect(await headOf(base)).toBe(head);
    expect(fs.readdirSync(`${dir}/objects/pack`).sort()).toEqual(packs);
    expect(hasRef(dir, 'refs/store/compacted/main')).toBe(false);
    expect((await getAt(base, 'k', commits[2]!)).text).toBe('v2');

    const real = await compactHttp(base, { policy: POLICY });
    expect(real.status, JSON.stringify(real.json)).toBe(200);
    expectConsistent(real.json);
    const { ms: _a, pruned: _b, bytesAfter: _c, dryRun: _d, head: newHead, ...same } = real.json;
    const { ms: _e, pruned: _f, bytesAfter: _g, dryRun: _h, head: _i, ...drySame } = dry.json;
    expect(same).toEqual(drySame);
    expect(real.json.dryRun).toBe(false);
    expect(newHead).not.toBe(head);
    expect(await headOf(base)).toBe(newHead);
    expect(real.json.pruned.objects).toBe(dry.json.pruned.objects);
    expect(real.json.bytesAfter).toBeLessThan(real.json.bytesBefore);
    expectFsckClean(dir);

    // What plain git sees: 7 single-parent commits, the head's state unchanged, the old ids in the map.
    const chain = firstParents(dir);
    expect(chain).toHaveLength(7);
    expect(chain[0]![0]).toBe(newHead);
    expect(git(['--git-dir', dir, 'show', 'main:k']).toString()).toBe('v17');
    expect(
      git(['--git-dir', dir, 'log', '--first-parent', '--format=%cI', 'main']).toString().trim().split('\n'),
    ).toEqual(['02:50', '02:40', '02:30', '02:20', '02:10', '01:50', '00:50'].map((hm) => `2026-01-01T${hm}:00+00:00`));
    const map = compactionMap(dir);
    expect(map.size).toBe(18);
    expect([...map.values()].filter((e) => e.kind === 'dropped')).toHaveLength(11);
    const newId = (old: string) => map.get(old.slice(0, 16))!.to;
    expect(newId(commits[17]!)).toBe(newHead);

    // A dropped commit, by full id or a short abbreviation: 410 COMPACTED naming the snapshot that absorbed it.
    for (const at of [commits[2]!, commits[2]!.slice(0, 7)]) {
      const res = await getAt(base, 'k', at);
      expect(res.status, res.text).toBe(410);
      const { error } = JSON.parse(res.text) as ErrorBody;
      expect(error.code).toBe('COMPACTED');
      expect(error.message).toContain(newId(commits[5]!).slice(0, 12));
      expect(error.message).toMatch(/compaction/);
      expect(error.data?.snapshot).toBe(newId(commits[5]!));
    }
    // The list route and the commit route say the same.
    const list = await fetch(`${base}/v1/branches/main/list?at=${commits[7]}`);
    expect(list.status).toBe(410);
    expect(((await list.json()) as ErrorBody).error.code).toBe('COMPACTED');
    const show = await fetch(`${base}/v1/commits/${commits[16]}`);
    const shown = (await show.json()) as { id?: string } & Partial<ErrorBody>;
    expect(show.status, JSON.stringify(shown)).toBe(200);
    expect(shown.id).toBe(newId(commits[16]!));

    // A kept commit (recent, or a snapshot), by full id or abbreviation: its state, read at its new id.
    for (const [i, at] of [
      [15, commits[15]!],
      [11, commits[11]!.slice(0, 8)],
    ] as const) {
      const res = await getAt(base, 'k', at);
      expect(res.status, res.text).toBe(200);
      expect(res.text).toBe(`v${i}`);
      expect(res.commit).toBe(newId(commits[i]!));
    }

    // Times: inside a compacted gap (01:25 lies among the commits the 01:50 snapshot absorbed) is 410; a time a kept
    // snapshot answers exactly (00:55: the state of 00:50, nothing after it until 01:00) is that state.
    const gap = await getAt(base, 'k', '2026-01-01T01:25:00Z');
    expect(gap.status, gap.text).toBe(410);
    expect((JSON.parse(gap.text) as ErrorBody).error.code).toBe('COMPACTED');
    const exact = await getAt(base, 'k', '2026-01-01T00:55:00Z');
    expect(exact.status, exact.text).toBe(200);
    expect(exact.text).toBe('v5');
    expect(exact.commit).toBe(newId(commits[5]!));
    const recent = await getAt(base, 'k', '2026-01-01T02:35:00Z');
    expect(recent.status, recent.text).toBe(200);
    expect(recent.text).toBe('v15');

    // nearest=before (issue 13, defect 11): inside the gap, the kept snapshot at or before the time — 00:50's — named
    // with its time; the key, list and blame routes alike, and StoreClient.
    const nearest = '?at=2026-01-01T01:25:00Z&nearest=before';
    const named = (res: Response) => [res.headers.get('x-store-commit'), res.headers.get('x-store-commit-time')];
    const before = [newId(commits[5]!), '2026-01-01T00:50:00.000Z'];
    const value = await fetch(`${keyUrl(base, 'k')}${nearest}`);
    expect(value.status).toBe(200);
    expect(await value.text()).toBe('v5');
    expect(named(value)).toEqual(before);
    const listed = await fetch(`${base}/v1/branches/main/list${nearest}`);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { commit: string }).commit).toBe(newId(commits[5]!));
    expect(named(listed)).toEqual(before);
    const blamed = await fetch(`${base}/v1/branches/main/blame/k${nearest}`);
    expect(blamed.status).toBe(200);
    expect(named(blamed)).toEqual(before);
    // A dropped commit's id, too.
    const byId = await fetch(`${keyUrl(base, 'k')}?at=${commits[7]}&nearest=before`);
    expect(await byId.text()).toBe('v5');
    expect(named(byId)).toEqual(before);
    // A time read exactly names its commit and time as well.
    expect(named(await fetch(`${keyUrl(base, 'k')}?at=2026-01-01T02:35:00Z`))).toEqual([
      newId(commits[15]!),
      '2026-01-01T02:30:00.000Z',
    ]);
    const client = new StoreClient(base);
    const read = await client.read('k', { at: '2026-01-01T01:25:00Z', nearest: 'before' });
    expect([Buffer.from(read.value).toString(), read.commit]).toEqual(['v5', newId(commits[5]!)]);
    expect(await codeOf(client.read('k', { at: '2026-01-01T01:25:00Z' }))).toBe('COMPACTED');
    // Nothing kept before 00:20 (the oldest snapshot absorbed it): 404; and only `before` is understood: 400.
    const none = await fetch(`${keyUrl(base, 'k')}?at=2026-01-01T00:20:00Z&nearest=before`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as ErrorBody).error.message).toMatch(/no kept commit at or before/);
    const after = await fetch(`${keyUrl(base, 'k')}?at=2026-01-01T01:25:00Z&nearest=after`);
    expect(after.status).toBe(400);
    expect(((await after.json()) as ErrorBody).error.code).toBe('INVALID_ARGUMENT');

    // The same again changes nothing more: what it keeps, it kept before.
    const again = await compactHttp(base, { policy: POLICY });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ commits: 7, kept: 7, dropped: 0, before: newHead, head: newHead });
  });

  it('with the default prune grace, a compaction right after the writes says what it kept and until when', async () => {
    const { base } = await knownHistory({ pruneGraceMs: 60_000 });
    const r = await compactHttp(base, { policy: POLICY });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({ dropped: 11, pruned: { objects: 0, deferred: { graceMs: 60_000 } } });
    const { deferred } = r.json.pruned;
    expect(deferred.objects).toBeGreaterThan(11);
    expect(deferred.bytes).toBeGreaterThan(0);
    expect(deferred.packs).toBeGreaterThan(0);
    const until = Date.parse(deferred.until!);
    expect(until).toBeGreaterThan(Date.now() - 60_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it('refuses bad policies (400), a missing branch (404) and no policy at all (400), writing nothing', async () => {
    const { store, base } = await knownHistory();
    const dir = store.dir;
    const head = await headOf(base);
    const refuse = async (body: unknown, status: number, code: string, message: RegExp, branch = 'main') => {
      const { status: got, json } = await compactHttp(base, body, branch);
      expect(got, JSON.stringify(json)).toBe(status);
      expect(Object.keys(json)).toEqual(['error']);
      expect(json.error!.code).toBe(code);
      expect(json.error!.message).toMatch(message);
      expect(json.error!.message).not.toMatch(/\bat \S+ \(|\.ts:\d+|\.js:\d+/);
    };
    await refuse({ policy: [{ within: '1x', keep: 'all' }] }, 400, 'INVALID_ARGUMENT', /"1x" is not a duration/);
    await refuse({ policy: 'not json' }, 400, 'INVALID_ARGUMENT', /not valid JSON/);
    await refuse({ policy: '[{"within":"1x","keep":"all"}]' }, 400, 'INVALID_ARGUMENT', /"1x" is not a duration/);
    await refuse({ policy: [] }, 400, 'INVALID_ARGUMENT', /non-empty array/);
    await refuse(
      {
        policy: [
          { within: '1d', keep: 'all' },
          { within: '1h', every: '1m' },
        ],
      },
      400,
      'INVALID_ARGUMENT',
      /must be longer than the tier before/,
    );
    await refuse({ policy: 42 }, 400, 'INVALID_ARGUMENT', /./);
    await refuse({ dryRun: 'yes please', policy: POLICY }, 400, 'INVALID_ARGUMENT', /./);
    await refuse({ policy: POLICY }, 404, 'NOT_FOUND', /nope/, 'nope');
    await refuse({ dryRun: true, policy: POLICY }, 404, 'NOT_FOUND', /nope/, 'nope');
    // No policy given and no .store/retention.json on the branch: say how to add one.
    await refuse({}, 400, 'INVALID_ARGUMENT', /\.store\/retention\.json/);
    await refuse({ dryRun: true }, 400, 'INVALID_ARGUMENT', /\.store\/retention\.json/);

    expect(await headOf(base)).toBe(head);
    expect(firstParents(dir)).toHaveLength(18);
    expect(hasRef(dir, 'refs/store/compacted/main')).toBe(false);

    // A .store/retention.json that is not JSON is reported as such, not as a missing policy.
    await store.set('.store/retention.json', '{ oops');
    await refuse({}, 400, 'INVALID_ARGUMENT', /\.store\/retention\.json is not valid JSON/);
    expect(firstParents(dir)).toHaveLength(19);
  });

  // Unknown body fields are refused (found by this test: fastify's default ajv option `removeAdditional` stripped
  // them, so a client misspelling `dryRun` got a real, destructive compaction).
  it('refuses unknown body fields (a misspelled dryRun must not compact for real)', async () => {
    const { store, base } = await knownHistory();
    const head = await headOf(base);
    const { status, json } = await compactHttp(base, { dryrun: true, policy: POLICY });
    expect(firstParents(store.dir)).toHaveLength(18);
    expect(await headOf(base)).toBe(head);
    expect(status, JSON.stringify(json)).toBe(400);
    expect(json.error?.code).toBe('INVALID_ARGUMENT');
  });

  it('StoreClient.compact: the same result as the library, the branch policy by default, errors as codes', async () => {
    const { store, base, commits } = await knownHistory();
    const client = new StoreClient(base);

    const local = await store.compact({ dryRun: true, policy: POLICY });
    const remote = await client.compact({ dryRun: true, policy: POLICY });
    expect(Object.keys(remote).sort()).toEqual(Object.keys(local).sort());
    expect({ ...remote, ms: 0 }).toEqual({ ...local, ms: 0 });
    // The policy as JSON text is the same policy.
    const text = await client.compact({ dryRun: true, policy: JSON.stringify(POLICY) });
    expect({ ...text, ms: 0 }).toEqual({ ...local, ms: 0 });

    expect(await codeOf(client.compact({ branch: 'nope', policy: POLICY }))).toBe('NOT_FOUND');
    expect(await codeOf(client.compact({ policy: [{ within: '1x', keep: 'all' }] }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(client.compact())).toBe('INVALID_ARGUMENT');

    // With the policy in the branch's .store/retention.json (written at 03:20: one more recent commit).
    await client.set('.store/retention.json', JSON.stringify(POLICY));
    const real = await client.compact();
    expect(real).toMatchObject({ branch: 'main', dryRun: false, commits: 19, kept: 8, recent: 5, dropped: 11 });
    expect(real.snapshots.map((s) => s.commit)).toEqual([commits[13], commits[11], commits[5]]);
    expect(real.pruned.objects).toBeGreaterThan(0);
    expect((await client.branches()).find((b) => b.name === 'main')?.head).toBe(real.head);
    const textAt = async (at?: string) => Buffer.from((await client.read('k', { at })).value).toString();
    expect(await textAt()).toBe('v17');
    expect(await codeOf(client.read('k', { at: commits[0] }))).toBe('COMPACTED');
    expect(await textAt(commits[16])).toBe('v16');
    // Another process opening the same repository sees the same.
    const other = await openStore({ fs, dir: store.dir });
    expect(await codeOf(other.getText('k', { at: commits[0] }))).toBe('COMPACTED');
    expect(await other.getText('k', { at: commits[16]!.slice(0, 10) })).toBe('v16');
    expectFsckClean(store.dir);
  });
});
