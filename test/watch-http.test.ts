/**
 * Watches over the wire: the SSE route (server/routes/watch.ts) on a real socket — many watchers, resuming with
 * Last-Event-ID, errors before the stream starts, shutdown with streams open — StoreClient.watch, and `store watch`
 * (cli/commands/live.ts) on a repository and with --url against `store serve` (needs `npm run build` first).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { type CommitEvents, openStore, type Store, StoreClient, type WatchEvent } from '../src/index.js';
import { cliEnv, diskStore, settle, sleep, tempDir, until } from './helpers.js';

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));
const DIST_MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

const blobOid = (value: string | Uint8Array) => {
  const bytes = Buffer.from(value);
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
};

const covers = (prefix: string, key: string) => prefix === '' || key === prefix || key.startsWith(`${prefix}/`);

/** Every change of every first-parent commit after `after`, oldest first, from the log and changesOf. */
async function history(s: Store, after: string | null): Promise<CommitEvents[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  outer: for (;;) {
    const page = await s.log({ limit: 1000, cursor });
    for (const c of page.commits) {
      if (c.id === after) break outer;
      ids.push(c.id);
    }
    if (!page.next) break;
    cursor = page.next;
  }
  const out: CommitEvents[] = [];
  for (const commit of ids.reverse()) {
    const events = (await s.changesOf(commit)).map((c) => ({ commit, key: c.key, kind: c.kind, oid: c.after }));
    out.push({ commit, events });
  }
  return out;
}

/** What a watcher of `prefix` must see of `all`. */
const under = (all: CommitEvents[], prefix: string): CommitEvents[] =>
  all
    .map((g) => ({ commit: g.commit, events: g.events.filter((e) => covers(prefix, e.key)) }))
    .filter((g) => g.events.length > 0);

// ---- an SSE client on node:http ----------------------------------------------------------------------------------

interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
}

/**
 * One event-stream request. Parses messages as they arrive; `stopAfter` drops the connection right after that many
 * data messages, discarding anything later in the same chunk, as a client that died there would.
 */
class Sse {
  status = 0;
  contentType = '';
  body = '';
  readonly messages: SseMessage[] = [];
  /** Set once the server's opening comment arrived: the watch is open. */
  watching = false;
  ended = false;
  private buffer = '';
  private stopped = false;
  readonly request: http.ClientRequest;
  readonly opened: Promise<void>;
  readonly finished: Promise<void>;

  constructor(
    url: string,
    options: { headers?: Record<string, string>; agent?: http.Agent | false; stopAfter?: number } = {},
  ) {
    let markOpen!: () => void;
    let markFinished!: () => void;
    let fail!: (e: Error) => void;
    this.opened = new Promise<void>((resolve, reject) => {
      markOpen = resolve;
      fail = reject;
    });
    this.finished = new Promise<void>((resolve) => {
      markFinished = resolve;
    });
    const finish = () => {
      this.ended = true;
      markFinished();
      markOpen();
    };
    this.request = http.get(url, { headers: options.headers, agent: options.agent }, (res) => {
      this.status = res.statusCode ?? 0;
      this.contentType = String(res.headers['content-type'] ?? '');
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (this.stopped) return;
        if (this.status !== 200) {
          this.body += chunk;
          return;
        }
        this.buffer += chunk;
        for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
          const block = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + 2);
          const message: SseMessage = {};
          let comment = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comment = true;
            else if (line.startsWith('id: ')) message.id = line.slice(4);
            else if (line.startsWith('event: ')) message.event = line.slice(7);
            else if (line.startsWith('data: ')) message.data = line.slice(6);
          }
          if (comment && message.data === undefined) {
            if (!this.watching) {
              this.watching = true;
              markOpen();
            }
            continue;
          }
          this.messages.push(message);
          if (options.stopAfter !== undefined && this.events.length >= options.stopAfter) {
            this.stopped = true;
            this.request.destroy();
            return;
          }
        }
      });
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
      if (this.status !== 200) res.on('end', markOpen);
    });
    this.request.on('error', (e) => {
      if (this.stopped || this.ended) return;
      fail(e);
      finish();
    });
  }

  get events(): WatchEvent[] {
    return this.messages.filter((m) => m.data !== undefined).map((m) => JSON.parse(m.data!) as WatchEvent);
  }

  /** The commits received whole (their last event carried the id), as groups; a trailing partial one is left out. */
  get groups(): CommitEvents[] {
    const groups: CommitEvents[] = [];
    let pending: WatchEvent[] = [];
    for (const m of this.messages) {
      if (m.data !== undefined) pending.push(JSON.parse(m.data) as WatchEvent);
      if (m.id !== undefined) {
        groups.push({ commit: m.id, events: pending });
        pending = [];
      }
    }
    return groups;
  }

  /** The id of the last commit received whole. */
  get lastId(): string | undefined {
    return this.messages.findLast((m) => m.id !== undefined)?.id;
  }

  close(): void {
    this.stopped = true;
    this.request.destroy();
  }
}

/** Every message is well formed: JSON data, the id (= its commit) on exactly the last event of each commit. */
function expectWellFormed(sse: Sse, expected: CommitEvents[]) {
  const got = sse.groups;
  expect(got).toEqual(expected);
  const ids = sse.messages.map((m) => m.id ?? null);
  const wanted = expected.flatMap((g) => g.events.map((_, i) => (i === g.events.length - 1 ? g.commit : null)));
  expect(ids).toEqual(wanted);
  expect(sse.messages.every((m) => m.event === undefined)).toBe(true);
}

const apps: FastifyInstance[] = [];
const agents: http.Agent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  for (const app of apps.splice(0)) await app.close();
});

async function listen(store: Store): Promise<{ app: FastifyInstance; base: string }> {
  const app = await buildApp({ store });
  apps.push(app);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, base };
}

function keepAliveAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  agents.push(agent);
  return agent;
}

const watchUrl = (base: string, query: Record<string, string> = {}, branch = 'main') => {
  const q = new URLSearchParams(query).toString();
  return `${base}/v1/branches/${encodeURIComponent(branch)}/watch${q ? `?${q}` : ''}`;
};

const keyUrl = (base: string, key: string) => `${base}/v1/branches/main/keys/${key}`;

async function httpSet(base: string, key: string, value: string): Promise<string> {
  const res = await fetch(keyUrl(base, key), {
    method: 'PUT',
    body: value,
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(res.status).toBeLessThan(300);
  return ((await res.json()) as { commit: string }).commit;
}

async function httpDelete(base: string, key: string): Promise<void> {
  const res = await fetch(keyUrl(base, key), { method: 'DELETE' });
  expect(res.status).toBeLessThan(300);
  await res.arrayBuffer();
}

async function httpBatch(base: string, ops: { op: 'set' | 'delete'; key: string; value?: string }[]) {
  const res = await fetch(`${base}/v1/branches/main/batch`, {
    method: 'POST',
    body: JSON.stringify({ ops }),
    headers: { 'content-type': 'application/json' },
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return ((await res.json()) as { commit: string }).commit;
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe('SSE watch over a real socket', () => {
  it('200 watchers on distinct prefixes each get exactly their own events, in commit order', async () => {
    const store = await openStore({ memory: true });
    await store.set('local/domain/setup', 'before the watchers');
    const start = (await store.log({ limit: 1 })).commits[0]!.id;
    const { base } = await listen(store);
    const agent = keepAliveAgent();
    const N = 200;
    const watchers = Array.from(
      { length: N },
      (_, i) => new Sse(watchUrl(base, { prefix: `local/domain/${i}` }), { agent }),
    );
    await Promise.all(watchers.map((w) => w.opened));
    expect(watchers.every((w) => w.status === 200 && w.watching)).toBe(true);
    expect(watchers[0]!.contentType).toMatch(/^text\/event-stream/);

    // Round 1: one library set per domain, all at once.
    await Promise.all(Array.from({ length: N }, (_, i) => store.set(`local/domain/${i}/a`, `a ${i}`)));
    // Round 2: HTTP batches, each touching ten domains (interleaved: i, i+20, i+40, …), plus a key outside them all.
    await pool(
      Array.from({ length: 20 }, (_, j) => j),
      5,
      (j) =>
        httpBatch(base, [
          ...Array.from({ length: 10 }, (_, k) => j + 20 * k).flatMap((i) => [
            { op: 'set' as const, key: `local/domain/${i}/b`, value: `b ${i}` },
            { op: 'set' as const, key: `local/domain/${i}/a`, value: `a2 ${i}` },
          ]),
          { op: 'set', key: 'local/elsewhere', value: `${j}` },
        ]),
    );
    // Round 3: single HTTP writes in reverse order, deletes and sets, interleaved with writes outside the prefixes.
    await pool(
      Array.from({ length: N }, (_, i) => N - 1 - i),
      16,
      async (i) => {
        if (i % 2 === 0) await httpDelete(base, `local/domain/${i}/a`);
        else await httpSet(base, `local/domain/${i}/a`, `a3 ${i}`);
        if (i % 25 === 0) await httpSet(base, `local/domainx/${i}`, 'not a domain');
      },
    );

    const all = await history(store, start);
    expect(all.length).toBe(N + 20 + N + 8);
    const expected = watchers.map((_, i) => under(all, `local/domain/${i}`));
    expect(expected.every((e) => e.length === 3)).toBe(true);
    await until(
      () => watchers.every((w, i) => w.groups.length >= expected[i]!.length),
      'every watcher to receive its three commits',
    );
    await settle(() => watchers.reduce((n, w) => n + w.messages.length, 0));
    watchers.forEach((w, i) => {
      expectWellFormed(w, expected[i]!);
    });
    // Spot-check the kinds: added, then modified (batch, two keys), then deleted or modified.
    expect(watchers[7]!.events.map((e) => [e.kind, e.key])).toEqual([
      ['added', 'local/domain/7/a'],
      ['modified', 'local/domain/7/a'],
      ['added', 'local/domain/7/b'],
      ['modified', 'local/domain/7/a'],
    ]);
    expect(watchers[8]!.events.at(-1)).toMatchObject({ kind: 'deleted', key: 'local/domain/8/a', oid: null });
    expect(watchers[7]!.events.at(-1)!.oid).toBe(blobOid('a3 7'));
    for (const w of watchers) w.close();
  });

  it('a watcher that drops mid-commit and resumes with Last-Event-ID gets every commit after that id, once', async () => {
    const store = await openStore({ memory: true });
    await store.set('r/seed', 'seed');
    const start = (await store.log({ limit: 1 })).commits[0]!.id;
    const { base } = await listen(store);

    // Every commit under r/ changes three keys, so the 10th event is in the middle of the 4th commit.
    let writing = true;
    const writer = (async () => {
      for (let j = 0; j < 40; j++) {
        await store.batch([
          { op: 'set', key: `r/${j}/one`, value: `${j}` },
          { op: 'set', key: `r/${j}/two`, value: `${j}` },
          { op: 'set', key: 'outside', value: `${j}` },
          { op: 'set', key: `r/${j}/three`, value: `${j}` },
        ]);
        if (j % 2 === 0) await store.set('outside', `between ${j}`);
        await sleep(5);
      }
      writing = false;
    })();
    const first = new Sse(watchUrl(base, { prefix: 'r', since: start }), { stopAfter: 10 });
    await first.finished;
    expect(first.events).toHaveLength(10);
    expect(first.groups).toHaveLength(3);
    const lastId = first.lastId!;
    expect(lastId).toBe(first.groups[2]!.commit);
    expect(first.events[9]!.commit).not.toBe(lastId); // it left in the middle of a commit
    expect(writing).toBe(true);
    await sleep(30); // commits land while it is away

    const second = new Sse(watchUrl(base, { prefix: 'r' }), { headers: { 'last-event-id': lastId } });
    await second.opened;
    expect(second.status).toBe(200);
    await writer;
    const all = under(await history(store, start), 'r');
    expect(all).toHaveLength(40);
    const after = all.slice(all.findIndex((g) => g.commit === lastId) + 1);
    await until(() => second.groups.length >= after.length, 'the resumed stream to catch up');
    await settle(() => second.messages.length);
    expectWellFormed(second, after);
    // The commit it was in the middle of comes again, whole; nothing at or before the id does.
    expect(second.groups[0]!.commit).toBe(first.events[9]!.commit);
    expect(second.groups[0]!.events).toHaveLength(3);
    // Together: every commit, no gap, no repeat of a commit received whole.
    expect([...first.groups, ...second.groups]).toEqual(all);

    // ?since wins over Last-Event-ID; an empty Last-Event-ID is no resume at all.
    const bySince = new Sse(watchUrl(base, { prefix: 'r', since: all[37]!.commit }), {
      headers: { 'last-event-id': all[1]!.commit },
    });
    const empty = new Sse(watchUrl(base, { prefix: 'r' }), { headers: { 'last-event-id': '' } });
    await Promise.all([bySince.opened, empty.opened]);
    await until(() => bySince.groups.length >= 2, 'the replay after all[37]');
    const live = await store.set('r/live', 'live');
    await until(() => bySince.groups.length >= 3 && empty.groups.length >= 1, 'a live commit');
    await settle(() => bySince.messages.length + empty.messages.length);
    expect(bySince.groups.map((g) => g.commit)).toEqual([all[38]!.commit, all[39]!.commit, live.commit]);
    expect(empty.groups.map((g) => g.commit)).toEqual([live.commit]);
    for (const s of [second, bySince, empty]) s.close();
  });

  it('a bad branch, prefix or revision is an ordinary JSON error, not a stream', async () => {
    const store = await openStore({ memory: true });
    await store.set('k', 'v');
    const { base } = await listen(store);
    const cases: [string, Record<string, string>, number, string][] = [
      [watchUrl(base, {}, 'missing'), {}, 404, 'NOT_FOUND'],
      [watchUrl(base, {}, 'bad..name'), {}, 400, 'INVALID_BRANCH'],
      [watchUrl(base, { prefix: 'a//b' }), {}, 400, 'INVALID_KEY'],
      [watchUrl(base, { prefix: '../etc' }), {}, 400, 'INVALID_KEY'],
      [watchUrl(base, { since: 'main~5' }), {}, 404, 'NOT_FOUND'],
      [watchUrl(base, { since: 'no-such-revision' }), {}, 404, 'NOT_FOUND'],
      [watchUrl(base), { 'last-event-id': 'f'.repeat(40) }, 404, 'NOT_FOUND'],
    ];
    for (const [url, headers, status, code] of cases) {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
      expect(res.status, url).toBe(status);
      expect(res.headers.get('content-type'), url).toMatch(/^application\/json/);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code, url).toBe(code);
      expect(body.error.message).toBeTruthy();
    }
  });

  it('shuts down promptly with watchers connected, ending their streams', async () => {
    const store = await openStore({ memory: true });
    await store.set('s/0', 'x');
    const { app, base } = await listen(store);
    apps.pop();
    // Keep-alive clients (like browsers' EventSource), one-shot ones, and fetch.
    const agent = keepAliveAgent();
    const watchers = [
      ...Array.from({ length: 30 }, (_, i) => new Sse(watchUrl(base, { prefix: `s/${i}` }), { agent })),
      ...Array.from({ length: 10 }, () => new Sse(watchUrl(base, { prefix: 's' }), { agent: false })),
    ];
    const fetched = await fetch(watchUrl(base, { prefix: 's' }));
    expect(fetched.status).toBe(200);
    const reading = fetched.text().catch(() => 'aborted');
    await Promise.all(watchers.map((w) => w.opened));
    await store.set('s/1', 'y');
    await until(() => watchers[1]!.groups.length === 1, 'an event before shutdown');

    const t0 = Date.now();
    await Promise.race([
      app.close(),
      sleep(5000).then(() => {
        throw new Error('app.close() did not resolve within 5 s with watchers connected');
      }),
    ]);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(3000);
    await until(() => watchers.every((w) => w.ended), 'every stream to end', 3000);
    expect(await Promise.race([reading, sleep(3000).then(() => 'still open')])).not.toBe('still open');
    await store.close();
  });

  // A watcher that stops reading never drains its socket: shutdown must not wait for it (the route ends the wait
  // when the stream is closed, and closes streams before the server closes).
  it('shuts down promptly even when a watcher has stopped reading (backpressure)', async () => {
    const store = await openStore({ memory: true });
    const { app, base } = await listen(store);
    apps.pop();
    let stalled!: http.ClientRequest;
    await new Promise<void>((resolve) => {
      stalled = http.get(watchUrl(base, { prefix: 'big' }), (res) => {
        res.pause();
        resolve();
      });
    });
    stalled.on('error', () => {});
    // Megabytes of events, more than the sockets' buffers hold: the server's writes back up.
    const long = Array.from({ length: 8 }, () => 'x'.repeat(250)).join('/');
    for (let b = 0; b < 3; b++) {
      await store.batch(
        Array.from({ length: 2000 }, (_, i) => ({ op: 'set' as const, key: `big/${long}/${b}/${i}`, value: 'v' })),
      );
    }
    await sleep(200);
    const closing = app.close();
    try {
      expect(await Promise.race([closing.then(() => 'closed'), sleep(3000).then(() => 'still open')])).toBe('closed');
    } finally {
      stalled.destroy();
      app.server.closeAllConnections();
      await Promise.race([closing, sleep(3000)]);
      await store.close();
    }
  });

  it('StoreClient.watch: replay, live events, close', async () => {
    const store = await openStore({ memory: true });
    const c1 = await store.set('cl/a', '1');
    const c2 = await store.batch([
      { op: 'set', key: 'cl/b', value: '2' },
      { op: 'delete', key: 'cl/a' },
      { op: 'set', key: 'clx', value: 'outside' },
    ]);
    const { base } = await listen(store);
    const client = new StoreClient(base);
    const w = await client.watch({ prefix: 'cl', since: c1.commit });
    const groups: CommitEvents[] = [];
    const iterating = (async () => {
      for await (const g of w.commits()) groups.push(g);
    })();
    await until(() => groups.length === 1, 'the replay');
    const c3 = await store.set('cl/c', '3');
    await until(() => groups.length === 2, 'a live commit');
    expect(groups).toEqual([
      {
        commit: c2.commit,
        events: [
          { commit: c2.commit, key: 'cl/a', kind: 'deleted', oid: null },
          { commit: c2.commit, key: 'cl/b', kind: 'added', oid: blobOid('2') },
        ],
      },
      { commit: c3.commit, events: [{ commit: c3.commit, key: 'cl/c', kind: 'added', oid: blobOid('3') }] },
    ]);
    w.close();
    await Promise.race([iterating, sleep(3000).then(() => Promise.reject(new Error('close() did not end it')))]);
    await expect(client.watch({ branch: 'missing' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

// ---- the CLI -----------------------------------------------------------------------------------------------------

const storeEnv = cliEnv;

/** A running `store` process whose output is collected as it comes. */
class Proc {
  stdout = '';
  stderr = '';
  code: number | null = null;
  signal: string | null = null;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;

  constructor(args: string[], cwd?: string) {
    this.child = spawn(process.execPath, [BIN, ...args], { env: storeEnv(), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.code = code;
        this.signal = signal;
        resolve();
      });
    });
  }

  get lines(): string[] {
    return this.stdout.split('\n').filter(Boolean);
  }

  /** Waits for the process to exit (killing it after `ms`). */
  async done(ms = 60_000): Promise<this> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
    return this;
  }
}

const procs: Proc[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.code === null && p.signal === null) p.child.kill('SIGKILL');
});

function run(args: string[], cwd?: string): Proc {
  const p = new Proc(args, cwd);
  procs.push(p);
  return p;
}

function runSync(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: storeEnv(), timeout: 120_000 });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** The line `store watch` prints for an event. */
const line = (commit: string, kind: string, key: string) => `${commit.slice(0, 10)}  ${kind.padEnd(8)}  ${key}`;

describe('store watch (CLI)', () => {
  beforeAll(() => {
    if (!fs.existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` before these tests`);
  });

  /** A repository with some history under a/ and next to it. */
  async function seeded() {
    const s = await diskStore();
    const c1 = await s.set('a/x', 'one');
    const c2 = await s.set('ab/x', 'not under a');
    const c3 = await s.set('a/x', 'two');
    const c4 = await s.batch([
      { op: 'set', key: 'b', value: 'outside' },
      { op: 'delete', key: 'a/x' },
      { op: 'set', key: 'a/y', value: 'y' },
    ]);
    return { s, repo: s.dir, c1: c1.commit, c2: c2.commit, c3: c3.commit, c4: c4.commit };
  }

  it('--since replays, then follows live writes; --count stops it; one line per event', async () => {
    const { s, repo, c1, c3, c4 } = await seeded();
    const p = run(['--repo', repo, 'watch', 'a', '--since', c1, '--count', '5']);
    // Whether these land before or after the watch opens, --since covers them.
    const c5 = await s.set('a/z', 'z');
    await s.set('ab/q', 'not under a');
    const c7 = await s.set('a/z', 'z2');
    await p.done();
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    expect(p.stdout).toBe(
      [
        line(c3, 'modified', 'a/x'),
        line(c4, 'deleted', 'a/x'),
        line(c4, 'added', 'a/y'),
        line(c5.commit, 'added', 'a/z'),
        line(c7.commit, 'modified', 'a/z'),
        '',
      ].join('\n'),
    );
  });

  it('--json prints one JSON event per line', async () => {
    const { s, repo, c1, c2, c3, c4 } = await seeded();
    const p = run(['--repo', repo, '--json', 'watch', '--since', c1, '--count', '6']);
    const c5 = await s.set('ab/q', 'q');
    await p.done();
    expect(p.code, p.stderr).toBe(0);
    const events = p.lines.map((l) => JSON.parse(l) as WatchEvent);
    expect(events).toEqual([
      { commit: c2, key: 'ab/x', kind: 'added', oid: blobOid('not under a') },
      { commit: c3, key: 'a/x', kind: 'modified', oid: blobOid('two') },
      { commit: c4, key: 'a/x', kind: 'deleted', oid: null },
      { commit: c4, key: 'a/y', kind: 'added', oid: blobOid('y') },
      { commit: c4, key: 'b', kind: 'added', oid: blobOid('outside') },
      { commit: c5.commit, key: 'ab/q', kind: 'added', oid: blobOid('q') },
    ]);
  });

  it('--exec runs the command per event with STORE_COMMIT, STORE_KEY, STORE_KIND, STORE_OID', async () => {
    const { s, repo, c1, c3, c4 } = await seeded();
    const dir = tempDir('gitstore-exec-');
    const out = path.join(dir, 'events.txt');
    const cmd = `printf '%s|%s|%s|%s\\n' "$STORE_COMMIT" "$STORE_KIND" "$STORE_KEY" "$STORE_OID" >> events.txt`;
    const p = run(['--repo', repo, 'watch', 'a', '--since', c1, '--count', '4', '--exec', cmd], dir);
    const c5 = await s.set('a/e', 'e');
    await p.done();
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toBe('');
    expect(fs.readFileSync(out, 'utf8')).toBe(
      [
        `${c3}|modified|a/x|${blobOid('two')}`,
        `${c4}|deleted|a/x|`,
        `${c4}|added|a/y|${blobOid('y')}`,
        `${c5.commit}|added|a/e|${blobOid('e')}`,
        '',
      ].join('\n'),
    );
  });

  it('without --since: follows live writes until SIGINT, then exits 0', async () => {
    const { s, repo } = await seeded();
    const p = run(['--repo', repo, 'watch', 'p']);
    // The watch opens some time after the process starts: write a marker until the first one shows up.
    for (let i = 0; p.lines.length === 0; i++) {
      if (i > 150) throw new Error(`store watch printed nothing: ${p.stderr}`);
      await s.set('p/ping', `${i}`);
      await sleep(100);
    }
    await sleep(150);
    const pings = p.lines.length;
    expect(p.lines.every((l) => / {2}(added|modified) {2,}p\/ping$/.test(l))).toBe(true);
    await s.set('q/outside', 'no');
    const x = await s.set('p/x', '1');
    const y = await s.batch([
      { op: 'delete', key: 'p/x' },
      { op: 'set', key: 'p/y', value: '2' },
      { op: 'set', key: 'pq', value: 'not under p' },
    ]);
    await until(() => p.lines.length >= pings + 3, 'the three events');
    await sleep(100);
    p.child.kill('SIGINT');
    await p.done();
    expect(p.signal).toBeNull();
    expect(p.code, p.stderr).toBe(0);
    expect(p.lines.slice(pings)).toEqual([
      line(x.commit, 'added', 'p/x'),
      line(y.commit, 'deleted', 'p/x'),
      line(y.commit, 'added', 'p/y'),
    ]);
  });

  it('reports bad arguments with the usual exit codes', async () => {
    const { repo } = await seeded();
    const usage = runSync(['--repo', repo, 'watch', '--count', '0']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error: --count/);
    const missing = runSync(['--repo', repo, 'watch', '--since', 'no-such-revision']);
    expect(missing.code, missing.stderr).toBe(3);
    expect(missing.stderr).toMatch(/^error: /);
    const branch = runSync(['--repo', repo, '--branch', 'nope', 'watch']);
    expect(branch.code, branch.stderr).toBe(3);
    const prefix = runSync(['--repo', repo, 'watch', 'a//b']);
    expect(prefix.code, prefix.stderr).toBe(2);
  });

  it('--url: store watch against store serve', async () => {
    const dir = tempDir('gitstore-serve-');
    const repo = path.join(dir, 'served.git');
    const server = new Proc(['serve', '--repo', repo, '--port', '0']);
    procs.push(server);
    await until(() => server.stdout.includes('\n') || server.code !== null, 'store serve to listen', 60_000);
    const url = server.stdout.trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    try {
      const commitOf = (args: string[]) => {
        const r = runSync(['--url', url, ...args]);
        expect(r.code, r.stderr).toBe(0);
        return r.stdout.trim();
      };
      const c1 = commitOf(['set', 'vm/web/memory', '2048']);
      const c2 = commitOf(['set', 'vm/db/memory', '4096']);
      commitOf(['set', 'vmx', 'outside']);
      const c3 = commitOf(['rm', 'vm/web/memory']);

      const plain = run(['--url', url, 'watch', 'vm', '--since', c1, '--count', '3']);
      const json = run(['--url', url, '--json', 'watch', 'vm/db', '--since', c1, '--count', '2']);
      const c4 = await httpSet(url, 'vm/db/memory', '8192');
      await Promise.all([plain.done(), json.done()]);
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.lines).toEqual([
        line(c2, 'added', 'vm/db/memory'),
        line(c3, 'deleted', 'vm/web/memory'),
        line(c4, 'modified', 'vm/db/memory'),
      ]);
      expect(json.code, json.stderr).toBe(0);
      expect(json.lines.map((l) => JSON.parse(l))).toEqual([
        { commit: c2, key: 'vm/db/memory', kind: 'added', oid: blobOid('4096') },
        { commit: c4, key: 'vm/db/memory', kind: 'modified', oid: blobOid('8192') },
      ]);

      // Live only, ended by SIGINT.
      const live = run(['--url', url, 'watch', 'live']);
      for (let i = 0; live.lines.length === 0; i++) {
        if (i > 150) throw new Error(`store watch --url printed nothing: ${live.stderr}`);
        await httpSet(url, 'live/ping', `${i}`);
        await sleep(100);
      }
      live.child.kill('SIGINT');
      await live.done(5000);
      expect(live.code, live.stderr).toBe(0);

      const missing = runSync(['--url', url, '--branch', 'nope', 'watch']);
      expect(missing.code, missing.stderr).toBe(3);

      // The server stops promptly with a watcher connected, and the watcher does not hang on.
      const connected = run(['--url', url, 'watch', 'live', '--since', 'main~1']);
      await until(() => connected.lines.length >= 1, 'the connected watcher to print');
      const t0 = Date.now();
      server.child.kill('SIGTERM');
      await server.done(10_000);
      expect(server.code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
      await connected.done(5000);
      expect(connected.signal).toBeNull();
      if (connected.code !== 0) expect(connected.stderr).toMatch(/^error: /);
    } finally {
      if (server.code === null && server.signal === null) server.child.kill('SIGTERM');
      await server.done(10_000);
    }
  });
});
