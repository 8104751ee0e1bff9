/**
 * Transactions over HTTP (server/routes/transactions.ts) — 1,000 concurrent "VM start" transactions over a real
 * socket, conflicts as 409, abort, the per-client cap as 429 — and through the CLI's `store tx` (the real
 * bin/store.js, so `npm run build` first).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { openStore, type Store } from '../src/index.js';
import { cliEnv, diskStore, git, gitEnv, sleep, tempDir } from './helpers.js';
import { checkInjected } from './setup/validate-responses.js';

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../dist/bundle/main.js', import.meta.url));
const HEX40 = /^[0-9a-f]{40}$/;

const apps: FastifyInstance[] = [];
const stores: Store[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  for (const store of stores.splice(0)) await store.close();
});

async function setup(store: Store): Promise<FastifyInstance> {
  const app = checkInjected(await buildApp({ store }));
  apps.push(app);
  stores.push(store);
  return app;
}

/** `git fsck --strict`: throws on any error; only dangling objects (from aborted transactions) may be reported. */
function fsckClean(dir: string): void {
  const out = git(['--git-dir', dir, 'fsck', '--strict', '--no-progress']).toString();
  expect(out.split('\n').filter((l) => l && !/^dangling (commit|tree|blob) [0-9a-f]{40}$/.test(l))).toEqual([]);
}

interface ErrorBody {
  error: {
    code: string;
    message: string;
    data?: { conflicts?: { key: string; kind: string }[] } & Record<string, unknown>;
  };
}

// ---- app.inject: the route matrix ------------------------------------------------------------------------------

describe('HTTP transactions (inject)', () => {
  const begin = (app: FastifyInstance, body: object | undefined = {}, client?: string, branch = 'main') =>
    app.inject({
      method: 'POST',
      url: `/v1/branches/${branch}/transactions`,
      ...(body === undefined ? {} : { payload: body }),
      headers: client ? { 'x-store-client': client } : {},
    });
  const put = (app: FastifyInstance, id: string, key: string, value: string) =>
    app.inject({
      method: 'PUT',
      url: `/v1/transactions/${id}/keys/${key}`,
      payload: value,
      headers: { 'content-type': 'application/octet-stream' },
    });
  const get = (app: FastifyInstance, id: string, key: string) =>
    app.inject({ method: 'GET', url: `/v1/transactions/${id}/keys/${key}` });
  const commit = (app: FastifyInstance, id: string) =>
    app.inject({ method: 'POST', url: `/v1/transactions/${id}/commit` });
  const beginOk = async (app: FastifyInstance, body: object = {}, client?: string) => {
    const res = await begin(app, body, client);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; branch: string; base: string | null; isolation: string };
  };

  it('begins, reads its own writes, lists, deletes and commits; the branch sees nothing before commit', async () => {
    const store = await openStore({ memory: true });
    const app = await setup(store);
    const seeded = await store.batch([
      { op: 'set', key: 'vm/1/state', value: 'halted' },
      { op: 'set', key: 'vm/1/old', value: 'x' },
    ]);
    const tx = await beginOk(app);
    expect(tx).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      branch: 'main',
      base: seeded.commit,
      isolation: 'snapshot',
    });
    const bare = await begin(app, undefined);
    expect(bare.statusCode, bare.body).toBe(201);
    expect(bare.json().isolation).toBe('snapshot');
    await app.inject({ method: 'DELETE', url: `/v1/transactions/${bare.json().id}` });

    let res = await put(app, tx.id, 'vm/1/state', 'running');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      commit: expect.stringMatching(HEX40),
      key: 'vm/1/state',
      oid: expect.stringMatching(HEX40),
    });
    res = await app.inject({ method: 'DELETE', url: `/v1/transactions/${tx.id}/keys/vm/1/old` });
    expect(res.statusCode, res.body).toBe(200);
    res = await get(app, tx.id, 'vm/1/state');
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('running');
    expect((await get(app, tx.id, 'vm/1/old')).statusCode).toBe(404);
    res = await app.inject({ method: 'GET', url: `/v1/transactions/${tx.id}/list/vm?recursive=true` });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().entries.map((e: { key: string }) => e.key)).toEqual(['vm/1/state']);
    res = await app.inject({ method: 'GET', url: `/v1/transactions/${tx.id}/list` });
    expect(res.json().entries).toEqual([expect.objectContaining({ key: 'vm', type: 'dir' })]);

    // The branch, over the same API, is unchanged.
    expect((await app.inject({ method: 'GET', url: '/v1/branches/main/keys/vm/1/state' })).body).toBe('halted');
    expect((await app.inject({ method: 'GET', url: '/v1/branches/main/keys/vm/1/old' })).statusCode).toBe(200);

    res = await commit(app, tx.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ commit: await store.resolve('main'), outcome: 'fast-forward' });
    expect(await store.getText('vm/1/state')).toBe('running');
    expect((await app.inject({ method: 'GET', url: '/v1/branches/main/keys/vm/1/old' })).statusCode).toBe(404);
    // Over: the id is gone.
    expect((await commit(app, tx.id)).statusCode).toBe(404);
    expect((await get(app, tx.id, 'vm/1/state')).statusCode).toBe(404);
  });

  it('two transactions writing one key: one 200, the other 409 naming the key, its writes absent', async () => {
    const store = await openStore({ memory: true });
    const app = await setup(store);
    await store.set('vm/1/host', 'none');
    const a = await beginOk(app);
    const b = await beginOk(app);
    expect((await put(app, a.id, 'vm/1/host', 'h1')).statusCode).toBe(200);
    expect((await put(app, a.id, 'only/a', 'yes')).statusCode).toBe(200);
    expect((await put(app, b.id, 'vm/1/host', 'h2')).statusCode).toBe(200);
    expect((await put(app, b.id, 'only/b', 'yes')).statusCode).toBe(200);

    const [ra, rb] = await Promise.all([commit(app, a.id), commit(app, b.id)]);
    expect([ra.statusCode, rb.statusCode].sort()).toEqual([200, 409]);
    const [won, lost] = ra.statusCode === 200 ? (['a', 'b'] as const) : (['b', 'a'] as const);
    const conflictRes = ra.statusCode === 409 ? ra : rb;
    const body = conflictRes.json() as ErrorBody;
    expect(body.error.code).toBe('CONFLICT');
    expect(body.error.message).toContain('vm/1/host');
    expect(body.error.data?.conflicts).toEqual([expect.objectContaining({ key: 'vm/1/host', kind: 'both-modified' })]);
    expect(await store.getText('vm/1/host')).toBe(won === 'a' ? 'h1' : 'h2');
    expect(await store.getText(`only/${won}`)).toBe('yes');
    expect((await app.inject({ method: 'GET', url: `/v1/branches/main/keys/only/${lost}` })).statusCode).toBe(404);
    // The loser was aborted.
    expect((await get(app, lost === 'a' ? a.id : b.id, 'vm/1/host')).statusCode).toBe(404);
  });

  it('a serializable transaction whose read key changed gets 409 (read-modified); snapshot commits', async () => {
    const store = await openStore({ memory: true });
    const app = await setup(store);
    await store.set('price', '10');
    for (const isolation of ['serializable', 'snapshot'] as const) {
      const tx = await beginOk(app, { isolation });
      expect(tx.isolation).toBe(isolation);
      expect((await get(app, tx.id, 'price')).body).toBe('10');
      expect((await put(app, tx.id, `order/${isolation}`, 'at 10')).statusCode).toBe(200);
      await store.set('price', '12');
      const res = await commit(app, tx.id);
      if (isolation === 'serializable') {
        expect(res.statusCode, res.body).toBe(409);
        const body = res.json() as ErrorBody;
        expect(body.error.code).toBe('CONFLICT');
        expect(body.error.data?.conflicts).toEqual([expect.objectContaining({ key: 'price', kind: 'read-modified' })]);
        expect(await store.stat('order/serializable').catch((e) => e.code)).toBe('NOT_FOUND');
      } else {
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json().outcome).toBe('merged');
        expect(await store.getText('order/snapshot')).toBe('at 10');
      }
      await store.set('price', '10'); // the same history for the next isolation level
    }
    const bad = await begin(app, { isolation: 'linearizable' });
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as ErrorBody).error.code).toBe('INVALID_ARGUMENT');
  });

  it('abort: 204, then 404 on every call to the transaction; the branch is untouched', async () => {
    const store = await openStore({ memory: true });
    const app = await setup(store);
    const head = (await store.set('k', 'before')).commit;
    const tx = await beginOk(app);
    expect((await put(app, tx.id, 'k', 'during')).statusCode).toBe(200);
    const res = await app.inject({ method: 'DELETE', url: `/v1/transactions/${tx.id}` });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    for (const r of [
      await app.inject({ method: 'DELETE', url: `/v1/transactions/${tx.id}` }),
      await get(app, tx.id, 'k'),
      await put(app, tx.id, 'k', 'after'),
      await commit(app, tx.id),
      await app.inject({ method: 'GET', url: `/v1/transactions/${tx.id}/list` }),
    ]) {
      expect(r.statusCode, r.body).toBe(404);
      expect((r.json() as ErrorBody).error.code).toBe('NOT_FOUND');
    }
    expect(await store.resolve('main')).toBe(head);
    expect(await store.getText('k')).toBe('before');
    expect((await app.inject({ method: 'GET', url: '/v1/transactions/0123456789abcdef/keys/k' })).statusCode).toBe(404);
  });

  it('caps open transactions per X-Store-Client with 429 QUOTA; other clients still begin', async () => {
    const store = await openStore({ memory: true, maxTransactionsPerClient: 2 });
    const app = await setup(store);
    const first = await beginOk(app, {}, 'agent-a');
    await beginOk(app, {}, 'agent-a');
    const res = await begin(app, {}, 'agent-a');
    expect(res.statusCode, res.body).toBe(429);
    const body = res.json() as ErrorBody;
    expect(body.error.code).toBe('QUOTA');
    expect(body.error.message).toMatch(/agent-a already has 2 open transactions \(the limit\)/);
    expect(body.error.data).toEqual({ client: 'agent-a', limit: 2 });

    await beginOk(app, {}, 'agent-b');
    // Without the header the client is the address: its own budget.
    await beginOk(app);
    await beginOk(app);
    expect((await begin(app)).statusCode).toBe(429);
    // A freed slot can be reused.
    expect((await app.inject({ method: 'DELETE', url: `/v1/transactions/${first.id}` })).statusCode).toBe(204);
    await beginOk(app, {}, 'agent-a');
    expect((await begin(app, {}, 'agent-a')).statusCode).toBe(429);
  });
});

// ---- a real socket: 1,000 concurrent VM starts -----------------------------------------------------------------

const VMS = 1000;
const CLIENTS = 10;
/**
 * Requests in flight at once, like an HTTP agent with this many connections: all 1,000 transactions are open together,
 * their requests multiplexed over the pool. (1,000 simultaneous sockets from one process now and then get ECONNRESET
 * from the kernel's accept queue, which is not what this test is about.)
 */
const CONNECTIONS = 128;

/** A FIFO slot pool: at most `size` callers run at once; a freed slot goes straight to the next waiter. */
function pool(size: number) {
  let free = size;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}
const FIELDS = ['state', 'host', 'memory', 'cpus', 'image', 'emulator', 'disk', 'mac'] as const;

describe('HTTP transactions over a socket', () => {
  it(`${VMS} concurrent VM-start transactions: every commit 200, all ${VMS * FIELDS.length} keys present, fsck clean`, {
    tags: ['slow'],
  }, async () => {
    const store = await diskStore();
    const app = await setup(store);
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const tools = {
      'tool/qemu/version': '9.1.0',
      'tool/qemu/path': '/usr/bin/qemu-system-x86_64',
      'tool/images/base': 'debian-13.qcow2',
      'tool/hosts': 'h0 h1 h2 h3',
    };
    for (const [key, value] of Object.entries(tools)) {
      const res = await fetch(`${base}/v1/branches/main/keys/${key}`, { method: 'PUT', body: value });
      expect(res.status).toBe(201);
      await res.arrayBuffer();
    }
    const seeded = await store.resolve('main');

    const expected = (i: number, field: (typeof FIELDS)[number]) =>
      ({
        state: 'running',
        host: `h${i % 4}`,
        memory: String(1024 * (1 + (i % 8))),
        cpus: String(1 + (i % 4)),
        image: `${tools['tool/images/base']}@vm${i}`,
        emulator: `${tools['tool/qemu/path']} ${tools['tool/qemu/version']}`,
        disk: `/var/lib/vm/${i}.qcow2`,
        mac: `52:54:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
      })[field];

    const outcomes: { vm: number; step: string; status: number; outcome?: string; body?: string }[] = [];
    const started = Date.now();
    const limited = pool(CONNECTIONS);
    let open = 0;
    let peakOpen = 0;
    const startVm = async (i: number) => {
      const headers = { 'x-store-client': `vm-starter-${i % CLIENTS}` };
      const call = async (method: string, url: string, body?: string, type = 'application/octet-stream') => {
        return limited(async () => {
          const res = await fetch(`${base}${url}`, {
            method,
            body,
            headers: body === undefined ? headers : { ...headers, 'content-type': type },
          });
          return { vm: i, step: `${method} ${url}`, status: res.status, body: await res.text() };
        });
      };
      const isolation = i % 2 ? 'serializable' : 'snapshot';
      const begun = await call(
        'POST',
        '/v1/branches/main/transactions',
        JSON.stringify({ isolation }),
        'application/json',
      );
      if (begun.status !== 201) return outcomes.push(begun);
      const { id } = JSON.parse(begun.body) as { id: string };
      peakOpen = Math.max(peakOpen, ++open);
      const tx = `/v1/transactions/${id}`;
      // Read the shared tool keys the way a VM start does: list them, then fetch what it needs.
      const listed = await call('GET', `${tx}/list/tool?recursive=true`);
      const keys = (JSON.parse(listed.body) as { entries: { key: string }[] }).entries.map((e) => e.key);
      if (listed.status !== 200 || keys.length !== 4) return outcomes.push(listed);
      const read: Record<string, string> = {};
      for (const key of ['tool/qemu/version', 'tool/qemu/path', 'tool/images/base']) {
        const r = await call('GET', `${tx}/keys/${key}`);
        if (r.status !== 200) return outcomes.push(r);
        read[key] = r.body;
      }
      for (const field of FIELDS) {
        const value =
          field === 'emulator'
            ? `${read['tool/qemu/path']} ${read['tool/qemu/version']}`
            : field === 'image'
              ? `${read['tool/images/base']}@vm${i}`
              : expected(i, field);
        const w = await call('PUT', `${tx}/keys/local/domain/${i}/${field}`, value);
        if (w.status !== 200) return outcomes.push(w);
      }
      const done = await call('POST', `${tx}/commit`);
      open--;
      const result = done.status === 200 ? (JSON.parse(done.body) as { outcome: string }) : undefined;
      return outcomes.push({ ...done, outcome: result?.outcome });
    };
    await Promise.all(Array.from({ length: VMS }, (_, i) => startVm(i)));
    const elapsed = Date.now() - started;
    console.log(`${VMS} HTTP VM-start transactions in ${elapsed} ms (at most ${peakOpen} open at once)`);

    // Zero aborts: every transaction got to commit, and every commit was a 200.
    const failed = outcomes.filter((o) => o.status !== 200);
    if (failed.length > 0) {
      // Say what the objects named in the errors are, if git has them now.
      for (const oid of new Set(failed.map((f) => /object ([0-9a-f]{40})/.exec(f.body ?? '')?.[1]).filter(Boolean))) {
        const type = spawnSync('git', ['--git-dir', store.dir, 'cat-file', '-t', oid!], { env: gitEnv });
        console.log(
          `missing object ${oid}: git says ${type.stdout.toString().trim() || type.stderr.toString().trim()}`,
        );
      }
    }
    expect(failed).toEqual([]);
    expect(outcomes).toHaveLength(VMS);
    // They really overlapped: (nearly) all were open at the same time.
    expect(peakOpen).toBeGreaterThan(VMS / 2);
    const merged = outcomes.filter((o) => o.outcome === 'merged').length;
    const fastForwards = outcomes.filter((o) => o.outcome === 'fast-forward').length;
    expect(merged + fastForwards).toBe(VMS);

    // Every key, with its value.
    const { entries } = await store.snapshot('local/domain');
    expect(entries).toHaveLength(VMS * FIELDS.length);
    const got = new Map(entries.map((e) => [e.key, Buffer.from(e.value).toString('utf8')]));
    const wrong: string[] = [];
    for (let i = 0; i < VMS; i++) {
      for (const field of FIELDS) {
        if (got.get(`local/domain/${i}/${field}`) !== expected(i, field)) wrong.push(`local/domain/${i}/${field}`);
      }
    }
    expect(wrong).toEqual([]);
    // A sample read back over HTTP as well.
    for (const i of [0, 1, 499, VMS - 1]) {
      const res = await fetch(`${base}/v1/branches/main/keys/local/domain/${i}/mac`);
      expect(await res.text()).toBe(expected(i, 'mac'));
    }
    for (const [key, value] of Object.entries(tools)) expect(await store.getText(key)).toBe(value);

    // History: each merged transaction is one merge commit on the first-parent chain, each fast-forwarded one its
    // 8 `set` commits; nothing else happened since the seed.
    const subjects = git(['--git-dir', store.dir, 'log', '--first-parent', '--format=%s', `${seeded}..main`])
      .toString()
      .trim()
      .split('\n');
    expect(subjects.filter((s) => s.startsWith('commit transaction ')).length).toBe(merged);
    expect(subjects.filter((s) => s.startsWith('set local/domain/')).length).toBe(fastForwards * FIELDS.length);
    expect(subjects).toHaveLength(merged + fastForwards * FIELDS.length);
    expect(git(['--git-dir', store.dir, 'for-each-ref', 'refs/store/tx/']).toString()).toBe('');
    await app.close();
    await store.close();
    fsckClean(store.dir);
  });
});

// ---- the CLI: store tx ---------------------------------------------------------------------------------------

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function store(args: string[], input = ''): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, env: cliEnv(), timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

function storeAsync(args: string[], input = ''): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv() });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.end(input);
  });
}

const rev = (repo: string, name = 'main') => git(['--git-dir', repo, 'rev-parse', '--verify', name]).toString().trim();
const txRefsOnDisk = (repo: string) => git(['--git-dir', repo, 'for-each-ref', 'refs/store/tx/']).toString();

describe('store tx (CLI)', () => {
  beforeAll(() => {
    if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` before these tests`);
  });

  function newRepo(): { repo: string; s: (...args: string[]) => string[] } {
    const repo = path.join(tempDir('gitstore-tx-cli-'), 'store.git');
    expect(store(['--repo', repo, 'init']).code).toBe(0);
    return { repo, s: (...args) => ['--repo', repo, ...args] };
  }

  it('runs a script from stdin as ONE transaction: values land, `get` prints, one ref move', () => {
    const { repo, s } = newRepo();
    expect(store(s('set', 'vm/1/state', 'halted')).code).toBe(0);
    expect(store(s('set', 'old/key', 'x')).code).toBe(0);
    const before = rev(repo);
    const script = [
      '# start vm 1',
      'check vm/1/state halted',
      'set vm/1/state running',
      '',
      'set vm/1/note hello world  with  spaces',
      'get vm/1/state',
      'rm old/key',
      'get vm/1/note',
    ].join('\n');
    const r = store(s('tx'), `${script}\n`);
    expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 2)).toEqual(['running', 'hello world  with  spaces']);
    expect(lines[2]).toMatch(HEX40);
    expect(lines.slice(3)).toEqual(['']);
    const head = rev(repo);
    expect(head).toBe(lines[2]);
    expect(store(s('get', 'vm/1/state')).stdout).toBe('running');
    expect(store(s('get', 'vm/1/note')).stdout).toBe('hello world  with  spaces');
    expect(store(s('get', 'old/key')).code).toBe(3);
    // The three writes are consecutive commits on top of the old head: nothing interleaved, one branch move.
    expect(
      git(['--git-dir', repo, 'log', '--format=%s', `${before}..main`])
        .toString()
        .trim()
        .split('\n'),
    ).toEqual(['delete old/key', 'set vm/1/note', 'set vm/1/state']);
    expect(
      git(['--git-dir', repo, 'rev-list', '--parents', '-n', '1', `${head}~2`])
        .toString()
        .trim(),
    ).toMatch(new RegExp(` ${before}$`));
    expect(txRefsOnDisk(repo)).toBe('');
  });

  it('runs a script from a file (and `-` for stdin) with --json', () => {
    const { repo, s } = newRepo();
    const file = path.join(tempDir(), 'start.txt');
    fs.writeFileSync(file, 'set a 1\r\nset b/c 2\r\nget a\r\n');
    const r = store(s('--json', 'tx', file, '--isolation', 'serializable'));
    expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
    const out = JSON.parse(r.stdout) as { commit: string; outcome: string; transaction: string; read: object };
    expect(out).toEqual({
      commit: rev(repo),
      outcome: 'fast-forward',
      transaction: expect.stringMatching(/^[0-9a-f]{16}$/),
      read: { a: '1' },
    });
    expect(store(s('get', 'b/c')).stdout).toBe('2');

    const dash = store(s('tx', '-'), 'set a 3\nget b/c\n');
    expect(dash, dash.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(dash.stdout).toMatch(/^2\n[0-9a-f]{40}\n$/);
    expect(store(s('get', 'a')).stdout).toBe('3');
  });

  it('a failing check exits 4 and writes nothing', () => {
    const { repo, s } = newRepo();
    expect(store(s('set', 'vm/1/state', 'running')).code).toBe(0);
    const before = rev(repo);
    const r = store(s('tx'), 'set vm/1/host h1\ncheck vm/1/state halted\nset vm/1/state starting\n');
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^error: .*check failed: vm\/1\/state is "running", not "halted"/);
    expect(r.stdout).toBe('');
    expect(rev(repo)).toBe(before);
    expect(store(s('get', 'vm/1/host')).code).toBe(3);
    expect(txRefsOnDisk(repo)).toBe('');
    // A check of an absent key fails the same way.
    const absent = store(s('tx'), 'check nope something\nset x y\n');
    expect(absent.code).toBe(4);
    expect(absent.stderr).toMatch(/nope is absent/);
    expect(rev(repo)).toBe(before);
  });

  it('a malformed line exits 2 before anything is written', () => {
    const { repo, s } = newRepo();
    expect(store(s('set', 'k', 'v')).code).toBe(0);
    const before = rev(repo);
    for (const script of ['set a 1\nfrobnicate a b\n', 'set onlykey\n', 'rm a b\n', 'get\n', 'set a 1\ncheck k\n']) {
      const r = store(s('tx'), script);
      expect(r.code, `${JSON.stringify(script)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^error: line \d+: expected "set KEY VALUE"/);
      expect(rev(repo)).toBe(before);
    }
    expect(store(s('get', 'a')).code).toBe(3);
    const bad = store(s('tx', '--isolation', 'strict'), 'set a 1\n');
    expect(bad.code).toBe(2);
    expect(rev(repo)).toBe(before);
  });

  it('exits 4 on a conflict: the branch moved on the same key while the transaction was open', async () => {
    const { repo, s } = newRepo();
    const local = await openStore({ fs, dir: repo });
    stores.push(local);
    await local.set('race/key', 'base');
    await local.createBranch('other');
    const theirs = (await local.set('race/key', 'theirs', { branch: 'other' })).commit;
    const before = rev(repo);

    // Hold main's lock, git's way: the CLI can begin (reads need no lock) but cannot commit until it is released.
    const lock = path.join(repo, 'refs/heads/main.lock');
    fs.writeFileSync(lock, '', { flag: 'wx' });
    const running = storeAsync(s('tx'), 'set race/key cli\nset cli/only yes\n');
    try {
      // Its ref appearing shows it has begun (on `before`) and written.
      const deadline = Date.now() + 20_000;
      while (!fs.existsSync(path.join(repo, 'refs/store/tx')) || txRefsOnDisk(repo) === '') {
        if (Date.now() > deadline) throw new Error('the CLI transaction never wrote');
        await sleep(5);
      }
      // Someone else moves main to a commit that changed the same key.
      fs.writeFileSync(lock, `${theirs}\n`);
    } finally {
      fs.renameSync(lock, path.join(repo, 'refs/heads/main'));
    }
    const r = await running;
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^error: .*race\/key/);
    expect(rev(repo)).toBe(theirs);
    expect(rev(repo)).not.toBe(before);
    expect(store(s('get', 'race/key')).stdout).toBe('theirs');
    expect(store(s('get', 'cli/only')).code).toBe(3);
    expect(txRefsOnDisk(repo)).toBe('');
  });
});
