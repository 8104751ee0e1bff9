import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../bench/free-port.js';
import { openStore, type ReplicationStatus, StoreClient, StoreError } from '../src/index.js';
import { expectFsckClean, gitBlobs } from './git-packs.js';
import { git, sleep, tempDir } from './helpers.js';
import { put, type Served, startServe, stopServe } from './serve.js';

/**
 * Three `store serve` replicas on loopback, all peered, each taking writes of its own: they converge to one `main`
 * tree, and no acknowledged write is lost under each strategy's meaning (issue 14, "A convergence test"). The full
 * size (1,000 writes per replica) runs in `npm run test:slow`; `npm test` runs the same scenario smaller.
 */

const POLICY = { default: 'conflict', prefixes: { lww: 'lww', cnt: 'counter', cfg: 'json', tags: 'set' } };
const COUNTERS = ['cnt/c0', 'cnt/c1', 'cnt/c2'];
const SETS = ['tags/t0', 'tags/t1'];
/** How long replicas may take to agree once writes stop; stated in README. */
const CONVERGE_MS = 120_000;

const tree = (repo: string) => git(['--git-dir', repo, 'rev-parse', 'main^{tree}']).toString().trim();
const show = (repo: string, key: string) => git(['--git-dir', repo, 'show', `main:${key}`]).toString();

/**
 * Each commit of `repo` whose value of `key` differs from a parent's (merges included, which `git log -- key` would
 * simplify away), with its parents, time and value: what a count that is off needs.
 */
function historyOf(repo: string, key: string): string {
  const commits = git(['--git-dir', repo, 'log', '--format=%H %P %ct %s', 'main'])
    .toString()
    .trim()
    .split('\n')
    .map((line) => ({
      line,
      id: line.slice(0, 40),
      parents: line
        .split(' ')
        .slice(1)
        .filter((w) => /^[0-9a-f]{40}$/.test(w)),
    }));
  const values = gitBlobs(
    repo,
    commits.map((c) => `${c.id}:${key}`),
  );
  const at = (id: string) => values.get(`${id}:${key}`)?.toString().trim() ?? '(absent)';
  return commits
    .filter((c) => c.parents.length === 0 || c.parents.some((p) => at(p) !== at(c.id)))
    .map((c) => `${c.line} = ${at(c.id)}`)
    .join('\n');
}

/** Read-modify-write with If-Match, again whenever someone (a replication merge included) changed the key meanwhile. */
async function modify(client: StoreClient, key: string, change: (old: string) => string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const { value, oid } = await client.read(key);
    try {
      await client.set(key, change(Buffer.from(value).toString()), { ifMatch: oid });
      return;
    } catch (e) {
      if (!(e instanceof StoreError && e.code === 'PRECONDITION_FAILED') || attempt > 200) throw e;
    }
  }
}

const running: Served[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => stopServe(s)));
});

async function converge(writes: number) {
  const dir = tempDir('gitstore-repl-');
  const repos = [0, 1, 2].map((i) => path.join(dir, `r${i}.git`));
  const ports = await Promise.all(repos.map(() => freePort()));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const start = async (i: number) => {
    const peers = urls.filter((_, j) => j !== i).flatMap((u) => ['--peer', u]);
    const s = await startServe(repos[i]!, ['--port', String(ports[i]), ...peers]);
    running.push(s);
    return s;
  };

  // One history to start from, with the strategies: replicas are clones of it.
  const first = await start(0);
  const seed = new StoreClient(first.url);
  await seed.batch([
    { op: 'set', key: '.store/merge.json', value: JSON.stringify(POLICY) },
    ...COUNTERS.map((key) => ({ op: 'set' as const, key, value: '0' })),
    ...SETS.map((key) => ({ op: 'set' as const, key, value: '' })),
    { op: 'set', key: 'cfg/app.json', value: '{}' },
  ]);
  for (const r of repos.slice(1)) git(['clone', '--bare', '-q', repos[0]!, r]);
  const servers: (Served | null)[] = [first, await start(1), await start(2)];

  const increments = new Map(COUNTERS.map((k) => [k, 0]));
  const members = new Map(SETS.map((k) => [k, new Set<string>()]));
  const lastLww = new Map<string, Set<string>>();
  const lastJson: number[] = [-1, -1, -1];
  let downFor = 0;

  const writer = async (i: number) => {
    let client = new StoreClient(urls[i]!);
    for (let j = 0; j < writes; j++) {
      if (i === 2 && j === Math.floor(writes / 2)) {
        // Replica 2 goes down mid-way while the others go on writing, then comes back and catches up.
        await stopServe(servers[2]!);
        servers[2] = null;
        const down = Date.now();
        await sleep(2000);
        servers[2] = await start(2);
        downFor = Date.now() - down;
        await client.close();
        client = new StoreClient(urls[i]!);
      }
      switch (j % 5) {
        case 0: {
          const key = `lww/k${j % 7}`;
          await client.set(key, `r${i} ${j}`);
          const last = lastLww.get(key) ?? new Set();
          for (const v of last) if (v.startsWith(`r${i} `)) last.delete(v);
          last.add(`r${i} ${j}`);
          lastLww.set(key, last);
          break;
        }
        case 1: {
          const key = COUNTERS[j % COUNTERS.length]!;
          await modify(client, key, (old) => String(Number(old) + 1));
          increments.set(key, increments.get(key)! + 1);
          break;
        }
        case 2:
          await modify(client, 'cfg/app.json', (old) => JSON.stringify({ ...JSON.parse(old), [`r${i}`]: j }));
          lastJson[i] = j;
          break;
        case 3: {
          const key = SETS[j % SETS.length]!;
          await modify(client, key, (old) => `${old}r${i}-${j}\n`);
          members.get(key)!.add(`r${i}-${j}`);
          break;
        }
        default:
          await client.set(`own/r${i}/k${j}`, String(j));
      }
    }
    await client.close();
  };
  await Promise.all([0, 1, 2].map(writer));

  const stopped = Date.now();
  while (new Set(repos.map(tree)).size > 1 && Date.now() - stopped < CONVERGE_MS) await sleep(100);
  const convergedMs = Date.now() - stopped;
  const states = async () => JSON.stringify(await Promise.all(urls.map(statusOf)), null, 1);
  if (new Set(repos.map(tree)).size > 1) expect.fail(`trees still differ after ${CONVERGE_MS} ms: ${await states()}`);

  for (const repo of repos) {
    for (const [key, n] of increments) {
      const counted = Number(show(repo, key));
      // The key's history only when the count is off: it reads the key at every commit of the branch.
      expect(counted, counted === n ? key : `${key}\n${historyOf(repo, key)}`).toBe(n);
    }
    for (const [key, added] of members) {
      const lines = show(repo, key).split('\n').filter(Boolean);
      expect(new Set(lines)).toEqual(added);
      expect(lines.length).toBe(added.size); // a set holds each member once
    }
    const cfg = JSON.parse(show(repo, 'cfg/app.json'));
    for (const i of [0, 1, 2]) expect(cfg[`r${i}`], `cfg/app.json r${i}`).toBe(lastJson[i]);
    for (const [key, last] of lastLww) expect(last, key).toContain(show(repo, key));
    const own = git(['--git-dir', repo, 'ls-tree', '-r', '--name-only', 'main', 'own/']).toString().trim().split('\n');
    expect(own.length).toBe(3 * Math.floor((writes + 1) / 5)); // j % 5 === 4, for j < writes
    expectFsckClean(repo);
  }

  // Criss-cross merges happened (merges whose parents have several best common ancestors), and were handled.
  const merges = git(['--git-dir', repos[0]!, 'rev-list', '--merges', '--parents', 'main'])
    .toString()
    .trim()
    .split('\n')
    .map((l) => l.split(' '));
  const crissCross = merges.filter(
    ([, a, b]) => git(['--git-dir', repos[0]!, 'merge-base', '--all', a!, b!]).toString().trim().split('\n').length > 1,
  ).length;
  expect(crissCross).toBeGreaterThan(0);

  // Every link reports ok, and nothing is left in conflict.
  for (const url of urls) expect((await statusOf(url)).links.map((l) => l.state)).toEqual(['ok', 'ok']);
  return { convergedMs, downFor, crissCross, merges: merges.length };
}

describe('replication: three peered replicas', () => {
  it('converge to one tree without losing a write under lww, counter, json and set (40 writes each)', async () => {
    const r = await converge(40);
    expect(r.downFor).toBeGreaterThan(0);
  });

  it('converge with 1,000 writes each, one replica stopped and restarted mid-way', { tags: ['slow'] }, async () => {
    const r = await converge(1000);
    console.log(`replication: converged ${r.convergedMs} ms after the last write; ${JSON.stringify(r)}`);
  });
});

/**
 * GET /v1/replication. Once again when the connection was a kept-alive one the server had just closed as idle (undici
 * reports "other side closed"). The checks above run git synchronously for tens of seconds; the event loop cannot see
 * the server's close meanwhile, so the next fetch takes the dead socket (CI, 1,000-write run).
 */
async function statusOf(url: string): Promise<ReplicationStatus> {
  const get = async () => (await (await fetch(`${url}/v1/replication`)).json()) as ReplicationStatus;
  try {
    return await get();
  } catch {
    return get();
  }
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** `store serve` on two repositories, each the other's peer. */
async function servePeered(a: string, b: string) {
  const [pa, pb] = await Promise.all([freePort(), freePort()]);
  const [ua, ub] = [`http://127.0.0.1:${pa}`, `http://127.0.0.1:${pb}`];
  const sa = await startServe(a, ['--port', String(pa), '--peer', ub]);
  running.push(sa);
  running.push(await startServe(b, ['--port', String(pb), '--peer', ua]));
  return { sa, ua, ub };
}

describe('replication: a conflict under the conflict strategy', () => {
  it('stops that branch only, is reported in /v1/replication, /metrics and the log, and clears once merged by hand', async () => {
    const dir = tempDir('gitstore-repl-conflict-');
    const [a, b] = [path.join(dir, 'a.git'), path.join(dir, 'b.git')];
    const seed = await openStore({ fs, dir: a, create: true });
    await seed.batch([
      { op: 'set', key: '.store/merge.json', value: JSON.stringify({ default: 'conflict' }) },
      { op: 'set', key: 'plain/x', value: '0' },
    ]);
    await seed.close();
    git(['clone', '--bare', '-q', a, b]);
    // Both change plain/x while apart.
    for (const [repo, value] of [
      [a, 'from a'],
      [b, 'from b'],
    ] as const) {
      const s = await openStore({ fs, dir: repo });
      await s.set('plain/x', value);
      await s.close();
    }
    const { sa, ua, ub } = await servePeered(a, b);

    for (const url of [ua, ub])
      await waitFor(`${url} to report the conflict`, async () => (await statusOf(url)).links[0]?.state === 'conflict');
    const link = (await statusOf(ua)).links[0]!;
    expect(link).toMatchObject({ peer: ub, branch: 'main', state: 'conflict', conflicts: ['plain/x'] });
    const metrics = await (await fetch(`${ua}/metrics`)).text();
    expect(metrics).toContain(`gitstore_replication_conflicting_keys{peer="${ub}",branch="main"} 1`);
    expect(metrics).toContain(`gitstore_replication_state{peer="${ub}",branch="main",state="conflict"} 1`);
    expect(sa.stderr()).toMatch(/replication warn: replication of main from .* stopped: conflicting keys plain\/x/);

    // Local writes go on; they do not reach the other side while the branch is stopped.
    expect((await put(ua, 'after', 'a')).status).toBe(201);
    await sleep(1500);
    expect((await fetch(`${ub}/v1/branches/main/keys/after`)).status).toBe(404);
    expect(show(a, 'plain/x')).toBe('from a');
    expect(show(b, 'plain/x')).toBe('from b');

    // A person merges by hand on a, keeping a's value: a pushes the merge, b fast-forwards, both links clear.
    const hand = await openStore({ fs, dir: a });
    await hand.pull(`${ub}/git`, { strategy: 'ours', message: "keep a's plain/x" });
    await hand.close();
    for (const url of [ua, ub])
      await waitFor(`${url} to resume`, async () => (await statusOf(url)).links[0]?.state === 'ok');
    await waitFor('one tree', async () => tree(a) === tree(b));
    expect(show(b, 'plain/x')).toBe('from a');
    expect(show(b, 'after')).toBe('a');
  });
});

describe('replication: a merged result the schemas refuse', () => {
  it('stops that branch as `invalid` on both sides, says why, and resumes once the value is fixed', async () => {
    const dir = tempDir('gitstore-repl-invalid-');
    const [a, b] = [path.join(dir, 'a.git'), path.join(dir, 'b.git')];
    const seed = await openStore({ fs, dir: a, create: true });
    await seed.set('.store/schema.json', JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 64 } }));
    await seed.close();
    git(['clone', '--bare', '-q', a, b]);
    // Apart, each side is valid: a tightens the schema, b writes a value the old one takes.
    const sa0 = await openStore({ fs, dir: a });
    await sa0.set('.store/schema.json', JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 128 } }));
    await sa0.close();
    const sb0 = await openStore({ fs, dir: b });
    await sb0.set('vm/x/memory', '100');
    await sb0.close();
    const { sa, ua, ub } = await servePeered(a, b);
    for (const url of [ua, ub])
      await waitFor(`${url} to report invalid`, async () => (await statusOf(url)).links[0]?.state === 'invalid');
    expect((await statusOf(ua)).links[0]!.error).toMatch(/vm\/x\/memory: must be >= 128/);
    const metrics = await (await fetch(`${ua}/metrics`)).text();
    expect(metrics).toContain(`gitstore_replication_state{peer="${ub}",branch="main",state="invalid"} 1`);
    expect(sa.stderr()).toMatch(/replication of main from .* stopped: the merged result would break the schemas/);
    // Fixed on b: both sides take the merge, and converge.
    expect((await put(ub, 'vm/x/memory', '256')).status).toBe(200);
    for (const url of [ua, ub])
      await waitFor(`${url} to resume`, async () => (await statusOf(url)).links[0]?.state === 'ok');
    await waitFor('one tree', async () => tree(a) === tree(b));
    expect(show(a, 'vm/x/memory')).toBe('256');
  });
});

describe('replication: bad configuration', () => {
  it('store serve refuses a bad --peer, --peer with --memory, and a malformed .store/replication.json, saying why', async () => {
    const repo = path.join(tempDir('gitstore-repl-bad-'), 'r.git');
    await expect(startServe(repo, ['--port', '0', '--peer', 'ftp://example.com'])).rejects.toThrow(
      /exited \(2\).*--peer: a peer is a store server's http\(s\) URL, not ftp:/s,
    );
    await expect(startServe(repo, ['--port', '0', '--peer', 'http://u:p@example.com'])).rejects.toThrow(
      /put no credentials in a peer URL/,
    );
    await expect(startServe(repo, ['--port', '0', '--memory', '--peer', 'http://127.0.0.1:1'])).rejects.toThrow(
      /replication needs a repository on disk/,
    );
    const store = await openStore({ fs, dir: repo, create: true });
    await store.set('.store/replication.json', '{"peers": "http://x"}');
    await store.close();
    await expect(startServe(repo)).rejects.toThrow(/\.store\/replication\.json: "peers" must be an array/);
    // Without peers the status is empty, and no replication metrics are served.
    const fixed = await openStore({ fs, dir: repo });
    await fixed.set('.store/replication.json', '{"peers": []}');
    await fixed.close();
    const served = await startServe(repo);
    running.push(served);
    expect(await statusOf(served.url)).toEqual({ peers: [], branches: [], intervalMs: 0, links: [] });
    expect(await (await fetch(`${served.url}/metrics`)).text()).not.toContain('gitstore_replication_');
  });
});
