/**
 * `store xenstored` end to end: the real daemon (bin/store.js, so `npm run build` first) on a Unix socket, driven by
 * Debian's own Xen tools (xenstore-utils, and Xen's test-xenstore, fetched by scripts/xen-tools.sh) and by a raw
 * protocol client (test/xen.ts), with plain git checking the repository underneath.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectFsckClean, gitValues } from './git-packs.js';
import { cliEnv, git, gitSubjects, type Run, runProcess, settle, sleep, startProcess, until } from './helpers.js';
import {
  type Daemon,
  frame,
  RawClient,
  startDaemon,
  stopDaemon,
  texts,
  toolEnv,
  type XenTools,
  XS,
  xenTools,
  xs,
  z,
} from './xen.js';

let tools: XenTools;
beforeAll(() => {
  tools = xenTools();
}, 180_000);

let dir = '';
let repo = '';
let sock = '';
let daemon: Daemon | null = null;
const clients: RawClient[] = [];

beforeEach(async () => {
  // Unix socket paths must stay under 108 bytes: a short directory straight under /tmp.
  dir = fs.mkdtempSync('/tmp/xs-');
  repo = path.join(dir, 'repo.git');
  sock = path.join(dir, 's');
  daemon = await startDaemon(repo, sock);
});

afterEach(async () => {
  try {
    for (const c of clients.splice(0)) c.close();
    if (daemon) {
      const d = daemon;
      daemon = null;
      const status = await stopDaemon(d);
      expect(status, `store xenstored stderr:\n${d.stderr()}`).toEqual({ code: 0, signal: null });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A raw client, closed after the test. */
async function raw(): Promise<RawClient> {
  const c = await RawClient.connect(sock);
  clients.push(c);
  return c;
}

const run = (tool: string, ...args: string[]): Promise<Run> => xs(tools, sock, tool, args);

/** Runs a tool that must succeed (exit 0, nothing on stderr) and returns its stdout. */
async function ok(tool: string, ...args: string[]): Promise<string> {
  const r = await run(tool, ...args);
  expect(r, `xenstore-${tool} ${args.join(' ')}`).toMatchObject({ code: 0, stderr: '' });
  return r.stdout;
}

/** A tool left running (xenstore-watch): what it printed so far, and its end. */
function startTool(tool: string, ...args: string[]): { out: () => string; done: Promise<Run> } {
  const { child, out, done } = startProcess(path.join(tools.bin, `xenstore-${tool}`), args, toolEnv(tools, sock));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  void done.finally(() => clearTimeout(timer));
  return { out, done };
}

/** `xenstore-ls -p` lines as [indent + name, value, perms]. */
function parseLs(out: string): string[][] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^( *\S+) = "(.*)"[ .]*\(([^()]*)\)$/.exec(line);
      if (!m) throw new Error(`unexpected xenstore-ls line ${JSON.stringify(line)}`);
      return [m[1]!, m[2]!, m[3]!];
    });
}

/** How many merges on main's first-parent line have a side branch forked before their first parent. */
function overlappingMerges(dir: string): number {
  const parents = new Map<string, string[]>();
  for (const line of git(['--git-dir', dir, 'log', '--format=%H %P', 'main']).toString().trim().split('\n')) {
    const [c, ...ps] = line.split(' ');
    parents.set(c!, ps);
  }
  const mainLine = new Set(git(['--git-dir', dir, 'rev-list', '--first-parent', 'main']).toString().trim().split('\n'));
  let overlapping = 0;
  for (const c of mainLine) {
    const ps = parents.get(c)!;
    if (ps.length !== 2) continue;
    let fork = ps[1]!;
    while (!mainLine.has(fork)) fork = parents.get(fork)![0]!;
    if (fork !== ps[0]) overlapping++;
  }
  return overlapping;
}

/** The first-parent history of main, oldest first. */
const history = () => gitSubjects(repo).reverse();

describe('store xenstored with the real Xen tools', () => {
  it('round trips through xenstore-utils, one commit per operation, and plain git reads the nodes', async () => {
    await ok('write', '/local/domain/5/name', 'web1');
    await ok('write', '/local/domain/5/memory', '1024');
    await ok('write', '/x', 'a\\x00b'); // xenstore-write unescapes: 3 bytes with a NUL
    await ok('write', '/t/a', 'one', '/t/b/c', 'two'); // two pairs: one transaction

    expect(await ok('read', '/local/domain/5/name')).toBe('web1\n');
    expect(await ok('read', '-R', '/x')).toBe('a\0b');
    expect(await ok('read', '/x')).toBe('a\\000b\n');
    expect(await ok('read', '-p', '/t/a', '/t/b/c')).toBe('/t/a: one\n/t/b/c: two\n'); // a read-only transaction
    const missing = await run('read', '/nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("couldn't read path /nope");

    // xenstore-ls -f -p: full paths, values, permissions (everything owned by dom0 so far).
    const flat = (await ok('ls', '-f', '-p', '/t')).split('\n').filter(Boolean);
    expect(flat[0]).toBe('/t/a = "one"   (n0)');
    expect(parseLs(flat.join('\n')).sort()).toEqual([
      ['/t/a', 'one', 'n0'],
      ['/t/b', '', 'n0'],
      ['/t/b/c', 'two', 'n0'],
    ]);
    expect(parseLs(await ok('ls', '-f', '-p', '/local/domain/5')).sort()).toEqual([
      ['/local/domain/5/memory', '1024', 'n0'],
      ['/local/domain/5/name', 'web1', 'n0'],
    ]);

    // chmod: the node gets (b5,r0); its children keep what they had; a child created later inherits the new ones.
    await ok('chmod', '/local/domain/5', 'b5', 'r0');
    await ok('write', '/local/domain/5/vcpus', '2');
    const tree = parseLs(await ok('ls', '-p', '/local/domain'));
    expect(tree[0]).toEqual(['5', '', 'b5,r0']);
    expect(tree.slice(1).sort()).toEqual([
      [' memory', '1024', 'n0'],
      [' name', 'web1', 'n0'],
      [' vcpus', '2', 'b5,r0'],
    ]);

    // rm: recursive; a missing node whose parent exists is fine; a missing parent is not.
    await ok('rm', '/t');
    for (const p of ['/t', '/t/a', '/t/b/c']) expect((await run('exists', p)).code, p).toBe(1);
    expect((await run('rm', '/nope')).code).toBe(0);
    const deeper = await run('rm', '/nope/deeper');
    expect(deeper.code).toBe(1);
    expect(deeper.stderr).toContain('could not remove path /nope/deeper');

    // exists: exit codes only.
    expect(await run('exists', '/x')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await run('exists', '/local/domain/5/name')).code).toBe(0);
    expect(await run('exists', '/nope')).toMatchObject({ code: 1, stdout: '' });
    expect((await run('exists', '/x', '/nope')).code).toBe(1);

    // list: the children, one a line (-p: with the parent's path).
    expect((await ok('list', '/local/domain/5')).split('\n').filter(Boolean).sort()).toEqual([
      'memory',
      'name',
      'vcpus',
    ]);
    expect((await ok('list', '-p', '/local/domain/5')).split('\n').filter(Boolean).sort()).toEqual([
      '/local/domain/5/memory',
      '/local/domain/5/name',
      '/local/domain/5/vcpus',
    ]);
    expect((await run('list', '/nope')).code).toBe(1);

    // One first-parent commit per change; transactions are merges; reads, exists, list and no-op rm commit nothing.
    expect(history()).toEqual([
      'xenstore: initial nodes',
      'xenstore: write /local/domain/5/name',
      'xenstore: write /local/domain/5/memory',
      'xenstore: write /x',
      expect.stringMatching(/^xenstore: transaction \d+ \(2 changes\)$/),
      expect.stringMatching(/^xenstore: transaction \d+ \(1 change\)$/), // chmod
      'xenstore: write /local/domain/5/vcpus',
      expect.stringMatching(/^xenstore: transaction \d+ \(1 change\)$/), // rm /t
    ]);
    const merges = git([
      '--git-dir',
      repo,
      'log',
      '--first-parent',
      '--merges',
      '--reverse',
      '--format=%P%x01%B%x02',
      'main',
    ])
      .toString()
      .split('\x02')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => s.split('\x01'));
    expect(merges.map(([parents]) => parents!.split(' ').length)).toEqual([2, 2, 2]);
    expect(merges.map(([, body]) => body!.split('\n').slice(2))).toEqual([
      ['  write /t/a', '  write /t/b/c'],
      ['  set perms /local/domain/5'],
      ['  rm /t'],
    ]);
    // The transactions' own operations are commits on their side of each merge.
    const all = git(['--git-dir', repo, 'log', '--format=%s', 'main']).toString().split('\n');
    for (const s of [
      'xenstore: write /t/a',
      'xenstore: write /t/b/c',
      'xenstore: set perms /local/domain/5',
      'xenstore: rm /t',
    ])
      expect(all).toContain(s);

    expectFsckClean(repo);
    // Plain git reads the data: files at the nodes' paths, .value/.perms where a node has children or own perms.
    const values = gitValues(repo, [
      'x',
      'local/domain/5/.perms',
      'local/domain/5/name/.value',
      'local/domain/5/name/.perms',
      'local/domain/5/memory/.value',
      'local/domain/5/vcpus',
      't',
    ]);
    expect(Object.fromEntries([...values].map(([k, v]) => [k, v.toString('latin1')]))).toEqual({
      x: 'a\0b',
      'local/domain/5/.perms': 'b5\nr0\n',
      'local/domain/5/name/.value': 'web1',
      'local/domain/5/name/.perms': 'n0\n',
      'local/domain/5/memory/.value': '1024',
      'local/domain/5/vcpus': '2',
    });
    expect(git(['--git-dir', repo, 'show', 'main:local/domain/5/name/.value']).toString()).toBe('web1');
  });

  it('a write of the value a node already has fires its watches (as Xen does) but makes no commit', async () => {
    const watcher = await raw();
    const writer = await raw();
    expect(await writer.write1('/same/x', 'v')).toBe('OK');
    expect(await watcher.ask(XS.WATCH, z('/same', 'tok'))).toBe('OK');
    await until(() => watcher.events.length === 1, 'the registration event');
    const commits = gitSubjects(repo).length;
    expect(await writer.write1('/same/x', 'v')).toBe('OK');
    await until(() => watcher.events.length === 2, 'the event of the unchanged write');
    expect(watcher.eventTexts()[1]).toEqual(['/same/x', 'tok']);
    // The same inside a transaction that changes nothing: it fires at commit.
    const t = await writer.start();
    expect(await writer.write1('/same/x', 'v', t)).toBe('OK');
    expect(await writer.end(t)).toBe('OK');
    await until(() => watcher.events.length === 3, 'the event of the unchanged transactional write');
    expect(watcher.eventTexts()[2]).toEqual(['/same/x', 'tok']);
    expect(gitSubjects(repo)).toHaveLength(commits);
  });

  it('xenstore-watch sees its registration, later writes, relative paths, and transactions only once committed', async () => {
    const w = startTool('watch', '-n', '3', '/w');
    await until(() => w.out() === '/w\n', 'the registration event');
    await ok('write', '/w/a', '1');
    await ok('write', '/w/b', '2');
    expect(await w.done).toEqual({ code: 0, stdout: '/w\n/w/a\n/w/b\n', stderr: '' });

    // A relative watch is on /local/domain/0/…, and its events come relative.
    const rel = startTool('watch', '-n', '2', 'rel');
    await until(() => rel.out() === 'rel\n', 'the relative registration event');
    await ok('write', '/local/domain/0/rel/x', 'v');
    expect(await rel.done).toEqual({ code: 0, stdout: 'rel\nrel/x\n', stderr: '' });

    // xenstore-write with two pairs runs a transaction: both events arrive.
    const tw = startTool('watch', '-n', '3', '/tw');
    await until(() => tw.out() === '/tw\n', 'the registration event');
    await ok('write', '/tw/a', '1', '/tw/b', '2');
    const r = await tw.done;
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['/tw', '/tw/a', '/tw/b']);

    // Raw clients time it: nothing while the transaction is open, the event at commit, nothing for an abort.
    const watcher = await raw();
    const writer = await raw();
    expect(await watcher.ask(XS.WATCH, z('/tx2', 'tok'))).toBe('OK');
    await until(() => watcher.events.length === 1, 'the registration event');
    expect(watcher.eventTexts()).toEqual([['/tx2', 'tok']]);
    const t = await writer.start();
    expect(await writer.write1('/tx2/x', 'in tx', t)).toBe('OK');
    await settle(() => watcher.events.length, 300);
    expect(watcher.events).toHaveLength(1);
    expect(await writer.end(t)).toBe('OK');
    await until(() => watcher.events.length === 2, 'the event of the committed transaction');
    expect(watcher.eventTexts()[1]).toEqual(['/tx2/x', 'tok']);
    const aborted = await writer.start();
    expect(await writer.write1('/tx2/y', 'never', aborted)).toBe('OK');
    expect(await writer.end(aborted, false)).toBe('OK');
    await settle(() => watcher.events.length, 300);
    expect(watcher.events).toHaveLength(2);
    expect(await writer.read1('/tx2/y')).toBe('ERROR ENOENT');

    // SET_PERMS fires the node's watch (what else fires is reported, not asserted).
    expect(await watcher.ask(XS.WATCH, z('/local/domain/7', 'perm'))).toBe('OK');
    await ok('write', '/local/domain/7/child', 'c');
    await until(() => watcher.eventTexts().some(([p]) => p === '/local/domain/7/child'), 'the write event');
    await settle(() => watcher.events.length, 200);
    const before = watcher.events.length;
    await ok('chmod', '/local/domain/7', 'b7');
    await until(
      () =>
        watcher
          .eventTexts()
          .slice(before)
          .some(([p, tok]) => p === '/local/domain/7' && tok === 'perm'),
      'the SET_PERMS event',
    );
    await settle(() => watcher.events.length, 200);
    console.log(
      `events for chmod /local/domain/7: ${JSON.stringify(
        watcher
          .eventTexts()
          .slice(before)
          .map(([p]) => p),
      )}`,
    );
  });

  it("Xen's test-xenstore passes all 12 tests, once and with -i 5", async () => {
    const names = [
      'read 1',
      'read 2000',
      'write 1',
      'write 2000',
      'dir',
      'rm node',
      'rm dir',
      'ta empty',
      'ta empty x',
      'ta rmw',
      'ta rmw x',
      'ta err',
    ];
    const env = toolEnv(tools, sock);
    const single = await runProcess(tools.testXenstore, [], env);
    console.log(`test-xenstore (exit ${single.code}):\n${single.stdout}${single.stderr}`);
    expect(single.code, single.stdout + single.stderr).toBe(0);
    const lines = single.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(12);
    expect(lines.map((l) => /^(.{1,10}?) *: (\d+) ns$/.exec(l)?.[1])).toEqual(names);

    const five = await runProcess(tools.testXenstore, ['-i', '5'], env);
    console.log(`test-xenstore -i 5 (exit ${five.code}):\n${five.stdout}${five.stderr}`);
    expect(five.code, five.stdout + five.stderr).toBe(0);
    const avg = five.stdout.split('\n').filter(Boolean);
    expect(avg).toHaveLength(12);
    expect(avg.map((l) => /^(.{1,10}?) *: avg: \d+ ns \(\d+ ns \.\. \d+ ns\)$/.exec(l)?.[1])).toEqual(names);
    // It cleans up after itself (in a transaction) and leaves nothing under xenstore-test.
    expect((await run('exists', '/local/domain/0/xenstore-test')).code).toBe(1);
    expectFsckClean(repo);
  });

  it('500 concurrent two-pair xenstore-writes on disjoint paths all commit, with no EAGAIN', {
    tags: ['slow'],
  }, async () => {
    const N = 500;
    let alive = 0;
    let peak = 0;
    let finished = 0;
    let startedBeforeFirstFinish = 0;
    const writer = async (i: number) => {
      const args = [`/c/${i}/a`, String(i), `/c/${i}/b`, String(i)];
      const { done } = startProcess(path.join(tools.bin, 'xenstore-write'), args, toolEnv(tools, sock));
      alive++;
      peak = Math.max(peak, alive);
      if (finished === 0) startedBeforeFirstFinish++;
      const { code, stderr } = await done;
      alive--;
      finished++;
      return { i, code, stderr };
    };
    const t0 = performance.now();
    // Every process is started before any is awaited.
    const runs = await Promise.all(Array.from({ length: N }, (_, i) => writer(i)));
    const ms = performance.now() - t0;
    console.log(
      `500 concurrent xenstore-write (2 pairs, a transaction each): ${ms.toFixed(0)} ms; ` +
        `peak ${peak} running at once, ${startedBeforeFirstFinish} started before the first finished`,
    );
    expect(runs.filter((r) => r.code !== 0)).toEqual([]);
    expect(peak).toBeGreaterThan(50);

    const control = await raw();
    const status = await control.status();
    console.log(`CONTROL status: ${status.line}`);
    expect(status.eagain).toBe(0);
    expect(status.committed).toBe(N);

    // All 1000 values, through the tools (one walk) and through plain git.
    const listed = new Map<string, string>();
    for (const line of (await ok('ls', '-f', '/c')).split('\n').filter(Boolean)) {
      const m = /^(\S+) = "(.*)"$/.exec(line);
      expect(m, line).not.toBeNull();
      listed.set(m![1]!, m![2]!);
    }
    const keys = Array.from({ length: N }, (_, i) => [`c/${i}/a`, `c/${i}/b`]).flat();
    for (const k of keys) expect(listed.get(`/${k}`), k).toBe(k.split('/')[1]);
    const values = gitValues(repo, keys);
    expect(values.size).toBe(2 * N);
    for (const [k, v] of values) expect(v.toString(), k).toBe(k.split('/')[1]);
    // One merge per transaction on main's first-parent history.
    const merges = history().filter((s) => /^xenstore: transaction \d+ \(2 changes\)$/.test(s));
    expect(merges).toHaveLength(N);
    // They really overlapped in the daemon: transactions that began before another one committed (their side branch
    // forks from an older commit of main than the merge's first parent).
    const overlapping = overlappingMerges(repo);
    console.log(`transactions that overlapped another commit: ${overlapping} of ${N}`);
    expect(overlapping).toBeGreaterThan(N / 10);
    expectFsckClean(repo);
  });

  it('a transaction open when the daemon is killed leaves nothing; a restart on the same socket serves what was committed', async () => {
    await ok('write', '/keep', 'before');
    await ok('write', '/k2/a', '1', '/k2/b', '2');
    const c = await raw();
    const t = await c.start();
    expect(await c.write1('/lost', 'uncommitted', t)).toBe('OK');
    expect(await c.write1('/keep', 'uncommitted too', t)).toBe('OK');
    expect(await c.read1('/keep', t)).toBe('uncommitted too');
    await sleep(150); // long enough for the store to give the transaction a ref on disk
    const killed = daemon!;
    daemon = null;
    killed.child.kill('SIGKILL');
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await c.closedPromise;
    const leftover = git(['--git-dir', repo, 'for-each-ref', '--format=%(refname)']).toString().trim();
    console.log(`refs after SIGKILL: ${leftover.split('\n').join(', ')}`);

    daemon = await startDaemon(repo, sock); // the socket file is stale now
    expect(await ok('read', '/keep')).toBe('before\n');
    expect(await ok('read', '-p', '/k2/a', '/k2/b')).toBe('/k2/a: 1\n/k2/b: 2\n');
    expect((await run('exists', '/lost')).code).toBe(1);
    await ok('write', '/after', 'restart');
    await ok('write', '/after2/a', 'x', '/after2/b', 'y');
    const c2 = await raw();
    const t2 = await c2.start();
    expect(await c2.read1('/keep', t2)).toBe('before');
    expect(await c2.write1('/after3', 'z', t2)).toBe('OK');
    expect(await c2.end(t2)).toBe('OK');
    expect(await ok('read', '/after3')).toBe('z\n');
    expect(history().filter((s) => s.includes('/lost'))).toEqual([]);
    const refs = git(['--git-dir', repo, 'for-each-ref', '--format=%(refname)']).toString().trim();
    console.log(`refs after the restart and new work: ${refs.split('\n').join(', ')}`);
    expect([...gitValues(repo, ['lost', 'keep', 'after', 'after3']).keys()].sort()).toEqual([
      'after',
      'after3',
      'keep',
    ]);
    expectFsckClean(repo);
  });

  it('raw protocol: framing, errors, DIRECTORY_PART, the value limit, and an oversized header', async () => {
    const c = await raw();
    expect(await c.write1('/e/v', 'hello')).toBe('OK');
    const subjects = history().length;

    // A request split across two writes, then two requests in one write: answered, in order.
    const split = frame(XS.READ, 100, 0, z('/e/v'));
    c.write(split.subarray(0, 10));
    await sleep(50);
    c.write(split.subarray(10));
    const r100 = await c.reply();
    expect([r100.type, r100.reqId, r100.payload.toString()]).toEqual([XS.READ, 100, 'hello']);
    c.write(Buffer.concat([frame(XS.READ, 101, 0, z('/e/v')), frame(XS.DIRECTORY, 102, 0, z('/e'))]));
    const [r101, r102] = [await c.reply(), await c.reply()];
    expect([r101.type, r101.reqId, r101.payload.toString()]).toEqual([XS.READ, 101, 'hello']);
    expect([r102.type, r102.reqId, texts(r102.payload)]).toEqual([XS.DIRECTORY, 102, ['v']]);

    expect(await c.ask(99, z('/e'))).toBe('ERROR ENOSYS');
    expect(await c.read1('/nope')).toBe('ERROR ENOENT');
    expect(await c.ask(XS.WRITE, 'no-nul')).toBe('ERROR EINVAL');
    for (const bad of ['/a/../b', '/a/..', '/a//b', '//', '/a/', '/a b'])
      for (const op of [XS.READ, XS.WRITE, XS.RM, XS.MKDIR])
        expect(await c.ask(op, op === XS.WRITE ? `${bad}\0v` : z(bad)), `${op} ${bad}`).toBe('ERROR EINVAL');
    expect(await c.ask(XS.WATCH, z('/e', 'tok'))).toBe('OK');
    expect(await c.ask(XS.WATCH, z('/e', 'tok'))).toBe('ERROR EEXIST');
    expect(await c.ask(XS.WATCH, z('/e', 'other'))).toBe('OK');
    expect(await c.ask(XS.TRANSACTION_END, z('T'), 4242)).toBe('ERROR ENOENT');
    expect(await c.read1('/e/v', 4242)).toBe('ERROR ENOENT');

    // Values: 2,048 bytes fit; 2,049 are E2BIG and nothing is written.
    expect(await c.write1('/e/max', 'm'.repeat(2048))).toBe('OK');
    expect((await c.read1('/e/max')).length).toBe(2048);
    expect(await c.write1('/e/big', 'x'.repeat(2049))).toBe('ERROR E2BIG');
    expect(await c.read1('/e/big')).toBe('ERROR ENOENT');
    // None of the refused requests committed anything (the WRITE of /e/max did).
    expect(history().length).toBe(subjects + 1);

    // ~400 children of 20-character names (8,400 bytes of names: over one message) made in one transaction.
    const names = Array.from({ length: 400 }, (_, i) => `child-${String(i).padStart(14, '0')}`);
    expect(names.every((n) => n.length === 20)).toBe(true);
    const t = await c.start();
    for (const n of names) expect(await c.write1(`/big/${n}`, '', t)).toBe('OK');
    expect(await c.end(t)).toBe('OK');
    expect(await c.ask(XS.DIRECTORY, z('/big'))).toBe('ERROR E2BIG');
    let offset = 0;
    let gen: string | null = null;
    let all = Buffer.alloc(0);
    let chunks = 0;
    for (;;) {
      const r = await c.request(XS.DIRECTORY_PART, z('/big', String(offset)));
      expect(r.type).toBe(XS.DIRECTORY_PART);
      expect(r.payload.length).toBeLessThanOrEqual(4096);
      chunks++;
      const nul = r.payload.indexOf(0);
      const g = r.payload.toString('utf8', 0, nul);
      gen ??= g;
      expect(g).toBe(gen);
      const data = r.payload.subarray(nul + 1);
      const last =
        data.length === 1 || (data.length >= 2 && data[data.length - 2] === 0 && data[data.length - 1] === 0);
      if (last) {
        all = Buffer.concat([all, data.subarray(0, -1)]);
        break;
      }
      expect(data[data.length - 1]).toBe(0); // chunks end on a name
      all = Buffer.concat([all, data]);
      offset += data.length;
      expect(chunks).toBeLessThan(20);
    }
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(texts(all).sort()).toEqual(names);
    // libxenstore falls back to DIRECTORY_PART on E2BIG: the real tool lists them all.
    expect((await ok('list', '/big')).split('\n').filter(Boolean).sort()).toEqual(names);

    // A header announcing 5,000 bytes: that connection is dropped, the others carry on.
    const bad = await raw();
    const other = await raw();
    bad.write(frame(XS.WRITE, 1, 0, Buffer.alloc(0), 5000));
    await Promise.race([bad.closedPromise, sleep(5000)]);
    expect(bad.closed).toBe(true);
    expect(await other.read1('/e/v')).toBe('hello');
    expect(await c.read1('/e/v')).toBe('hello');
    expect(await (await raw()).read1('/e/v')).toBe('hello');
    expectFsckClean(repo);
  });

  it('transactions: disjoint ones both commit; EAGAIN only when something read changed; blind writes reported', async () => {
    const a = await raw();
    const b = await raw();
    const o = await raw();
    expect(await o.write1('/d', '')).toBe('OK');

    // Disjoint transactions, each reading (as missing) and writing its own node: both commit.
    const ta = await a.start();
    const tb = await b.start();
    expect(await a.read1('/d/1', ta)).toBe('ERROR ENOENT');
    expect(await b.read1('/d/2', tb)).toBe('ERROR ENOENT');
    expect(await a.write1('/d/1', 'A', ta)).toBe('OK');
    expect(await b.write1('/d/2', 'B', tb)).toBe('OK');
    expect(await a.end(ta)).toBe('OK');
    expect(await b.end(tb)).toBe('OK');
    expect([await o.read1('/d/1'), await o.read1('/d/2')]).toEqual(['A', 'B']);
    expect((await o.status()).eagain).toBe(0);

    // A read value changed by another client: EAGAIN at the end, the transaction's write not applied.
    expect(await o.write1('/e', '0')).toBe('OK');
    const t1 = await a.start();
    expect(await a.read1('/e', t1)).toBe('0');
    expect(await o.write1('/e', '1')).toBe('OK');
    expect(await a.read1('/e', t1)).toBe('0'); // isolation
    expect(await a.write1('/f', 'from a', t1)).toBe('OK');
    expect(await a.end(t1)).toBe('ERROR EAGAIN');
    expect(await o.read1('/f')).toBe('ERROR ENOENT');
    expect(await o.read1('/e')).toBe('1');
    expect(await a.end(t1)).toBe('ERROR ENOENT'); // gone after its end

    // A listed children list changed: EAGAIN.
    const t2 = await a.start();
    expect((await a.ask(XS.DIRECTORY, z('/d'), t2)).split('\0')).toEqual(['1', '2']);
    expect(await o.write1('/d/3', 'C')).toBe('OK');
    expect(await a.write1('/g1', 'x', t2)).toBe('OK');
    expect(await a.end(t2)).toBe('ERROR EAGAIN');
    // Read permissions changed: EAGAIN.
    const t3 = await a.start();
    expect(await a.ask(XS.GET_PERMS, z('/d'), t3)).toBe('n0');
    expect(await o.ask(XS.SET_PERMS, z('/d', 'n0', 'r3'))).toBe('OK');
    expect(await a.write1('/g2', 'x', t3)).toBe('OK');
    expect(await a.end(t3)).toBe('ERROR EAGAIN');
    // Something NOT read changed (a sibling of what was read): no EAGAIN.
    const t4 = await a.start();
    expect(await a.read1('/d/1', t4)).toBe('A');
    expect(await o.write1('/d/2', 'B2')).toBe('OK');
    expect(await a.write1('/g3', 'x', t4)).toBe('OK');
    expect(await a.end(t4)).toBe('OK');
    for (const p of ['/g1', '/g2']) expect(await o.read1(p), p).toBe('ERROR ENOENT');
    expect(await o.read1('/g3')).toBe('x');
    const status = await o.status();
    expect(status.eagain).toBe(3);

    // A blind write (never read in the transaction) to a node another client writes meanwhile.
    expect(await o.write1('/h', '0')).toBe('OK');
    const t5 = await a.start();
    expect(await a.write1('/h', 'tx', t5)).toBe('OK');
    expect(await o.write1('/h', 'outside')).toBe('OK');
    const blind = await a.end(t5);
    const after = await o.read1('/h');
    console.log(`blind write in a transaction vs an outside write of the same node: END → ${blind}, /h = ${after}`);
    expect(['OK', 'ERROR EAGAIN']).toContain(blind);
    expect(after).toBe(blind === 'OK' ? 'tx' : 'outside');

    // SIGTERM while a client holds an open transaction: exit 0, the transaction is not committed.
    const t6 = await b.start();
    expect(await b.write1('/open', 'never', t6)).toBe('OK');
    const d = daemon!;
    daemon = null;
    expect(await stopDaemon(d), d.stderr()).toEqual({ code: 0, signal: null });
    expect(gitValues(repo, ['open']).size).toBe(0);
    expectFsckClean(repo);
  });

  // The two tests below found bugs (fixed): a transaction's observations included its own writes below the node, and
  // an RM fired only for the removed leaf keys.

  it('a transaction that lists (or reads) a node after writing below it commits when only unrelated nodes changed', async () => {
    const a = await raw();
    const o = await raw();
    expect(await o.write1('/p/a', '1')).toBe('OK');
    // Writes a child, then lists the parent: nobody else touches /p.
    const t = await a.start();
    expect(await a.write1('/p/c', 'x', t)).toBe('OK');
    expect((await a.ask(XS.DIRECTORY, z('/p'), t)).split('\0')).toEqual(['a', 'c']);
    expect(await o.write1('/unrelated', '1')).toBe('OK');
    const listed = await a.end(t);
    // Writes a child of a new node, then reads the new node.
    const t2 = await a.start();
    expect(await a.write1('/newp/c', 'x', t2)).toBe('OK');
    expect(await a.read1('/newp', t2)).toBe('');
    expect(await o.write1('/unrelated', '2')).toBe('OK');
    const read = await a.end(t2);
    // `xenstore-rm -t` does exactly this (RM a child, then READ and DIRECTORY its parent).
    expect([listed, read]).toEqual(['OK', 'OK']);
  });

  it('removing a node with children but no value fires an event with its own path', async () => {
    await ok('write', '/r/x/y', '1');
    const w = startTool('watch', '-n', '2', '/r');
    const wx = startTool('watch', '-n', '2', '/r/x');
    await until(() => w.out() === '/r\n' && wx.out() === '/r/x\n', 'the registration events');
    await ok('rm', '/r');
    // Xenstore fires the removed node's path (and each removed descendant's, exactly).
    const [r, rx] = [await w.done, await wx.done];
    expect([r.stdout, rx.stdout]).toEqual(['/r\n/r\n', '/r/x\n/r/x\n']);
  });

  it('--quota sets the limits; a bad one is a usage error (exit 2)', async () => {
    expect(await stopDaemon(daemon!)).toMatchObject({ code: 0 });
    daemon = await startDaemon(repo, sock, [], ['--quota', 'maxValueBytes=10', '--quota', 'maxWatches=1']);
    expect((await run('write', '/q', 'x'.repeat(10))).code).toBe(0);
    const big = await run('write', '/q', 'x'.repeat(11));
    expect(big.code).toBe(1);
    expect(await ok('read', '/q')).toBe(`${'x'.repeat(10)}\n`);
    const c = await raw();
    expect(await c.ask(XS.WATCH, z('/q', 'one'))).toBe('OK');
    expect(await c.ask(XS.WATCH, z('/q', 'two'))).toBe('ERROR E2BIG');
    const bad = await runProcess(
      process.execPath,
      [
        path.join(import.meta.dirname, '../bin/store.js'),
        '--repo',
        repo,
        'xenstored',
        '--socket',
        `${sock}2`,
        '--quota',
        'bogus=1',
      ],
      cliEnv(),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: --quota bogus=1: use name=number/);
  });
});
