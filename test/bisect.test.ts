/**
 * History tools (issue 7): bisect and blame through the library, the `store` binary (needs `npm run build` first),
 * the HTTP API of a real `store serve`, and plain git — `git bisect run` on a clone must name the same first bad
 * commit as `store bisect`, and blame must name the commit `git log -1 --first-parent -- KEY` names.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../server/app.js';
import { openStore, type Store } from '../src/index.js';
import { cliEnv, diskStore, git, gitEnv, tempDir } from './helpers.js';

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));
const OID = /^[0-9a-f]{40}$/;
const STATE = 'vm/web1/state';
const PROBE = 'vm/web1/probe';
/** The `--run` test of the README and the issue: good while the state is not `crashed`. */
const NOT_CRASHED = 'test "$(cat vm/web1/state)" != crashed';

/** A blame line as the library, the CLI's --json and the HTTP API give it (the fields compared here). */
interface BlameRow {
  key: string;
  commit: { id: string; author: { name: string; time: string } };
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/store.js ...args` and waits for it. */
function store(args: string[], env: Record<string, string> = {}): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: '',
    env: { ...cliEnv(), ...env },
    encoding: 'utf8',
    // Only to catch a hang: a bisection runs a shell per snapshot, and a loaded machine makes that slow.
    timeout: 300_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts a failure reported the CLI's way: a non-zero exit, one `error:` line on stderr, no stack trace. */
function fails(r: Result, message: RegExp, code?: number): void {
  if (code === undefined) expect(r.code, r.stderr).not.toBe(0);
  else expect(r.code, r.stderr).toBe(code);
  expect(r.code).not.toBeNull();
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  expect(lines[0]).toMatch(/^error: \S/);
  expect(lines[0]).toMatch(message);
  expect(lines.filter((l) => l.startsWith('error:'))).toHaveLength(1);
  for (const extra of lines.slice(1)) expect(extra).toBe('(run store help <command> for its options and examples)');
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

/** The branch's first-parent commits, oldest first, as plain git lists them. */
const chainOf = (dir: string, rev = 'main') =>
  git(['--git-dir', dir, 'rev-list', '--first-parent', '--reverse', rev]).toString().trim().split('\n');

/**
 * Writes `set cfg/<n % 500>/k = v<n>` for n = from..to (one commit each) from `callers` concurrent callers: the n in
 * flight at once are within `callers` of each other, so they touch distinct keys.
 */
async function fill(s: Store, from: number, to: number, callers = 50): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next <= to) {
        const n = next++;
        await s.set(`cfg/${n % 500}/k`, `v${n}`);
      }
    }),
  );
}

/**
 * A history of `total` commits on main: write 1 sets the state `running` and the probe `ok` (one batch), write
 * `deleteAt` deletes the probe, write `crashAt` sets the state `crashed` (it stays so); every other write changes a
 * cfg key. Returns the commit ids of those three writes.
 */
async function history(s: Store, total: number, deleteAt: number, crashAt: number, afterFirst = () => {}) {
  const first = (
    await s.batch([
      { op: 'set', key: STATE, value: 'running' },
      { op: 'set', key: PROBE, value: 'ok' },
    ])
  ).commit;
  afterFirst();
  await fill(s, 2, deleteAt - 1);
  const deleted = (await s.delete(PROBE)).commit;
  await fill(s, deleteAt + 1, crashAt - 1);
  const crashed = (await s.set(STATE, 'crashed')).commit;
  await fill(s, crashAt + 1, total);
  return { first, deleted, crashed };
}

describe('bisect in the library: a 10,000-commit history', () => {
  it('finds the commit where a key went bad, was matched, or went missing, in at most 16 snapshot reads (14 steps and the two ends)', async () => {
    const TOTAL = 10_000;
    const CRASH_AT = 6_173;
    const DELETE_AT = 2_719;
    const s = await diskStore({ durable: false });
    const { first, deleted, crashed } = await history(s, TOTAL, DELETE_AT, CRASH_AT);
    await s.close();

    // Plain git sees one first-parent chain of 10,000 commits with the writes where they were meant to be.
    const chain = chainOf(s.dir);
    expect(chain).toHaveLength(TOTAL);
    expect(git(['--git-dir', s.dir, 'rev-list', '--count', 'main']).toString().trim()).toBe(String(TOTAL));
    expect(chain[0]).toBe(first);
    expect(chain[DELETE_AT - 1]).toBe(deleted);
    expect(chain[CRASH_AT - 1]).toBe(crashed);
    const position = new Map(chain.map((id, i) => [id, i + 1]));

    // A key predicate reads the key's value once per tested snapshot, and nothing else.
    const blobReads = vi.spyOn(s.db, 'readBlob');
    const equals = await s.bisect({ good: first, predicate: { key: STATE, equals: 'crashed' } });
    expect(blobReads).toHaveBeenCalledTimes(equals.tested.length);
    blobReads.mockRestore();
    expect(equals.firstBad.id).toBe(crashed);
    expect(equals.firstBad.subject).toBe(`set ${STATE}`);
    expect(equals.changes).toEqual([expect.objectContaining({ key: STATE, kind: 'modified' })]);
    expect(equals.candidates).toEqual([]);
    expect(equals.tested.length).toBeGreaterThan(0);
    // log2(10,000) ≈ 14 steps, and the two ends.
    expect(equals.tested.length).toBeLessThanOrEqual(16);
    expect(equals.tested.slice(0, 2)).toEqual([
      { commit: chain.at(-1), verdict: 'bad' },
      { commit: first, verdict: 'good' },
    ]);
    // Every verdict is the truth about that snapshot.
    for (const { commit, verdict } of equals.tested) {
      expect(verdict, commit).toBe(position.get(commit)! >= CRASH_AT ? 'bad' : 'good');
    }
    // The first bad commit's parent was tested good or is the good end: the answer is proven, not guessed.
    const parent = chain[CRASH_AT - 2]!;
    expect(equals.tested.some((t) => t.commit === parent && t.verdict === 'good') || parent === first).toBe(true);

    const matches = await s.bisect({ good: first, predicate: { key: STATE, matches: '^cra' } });
    expect(matches.firstBad.id).toBe(crashed);
    expect(matches.tested.length).toBeLessThanOrEqual(16);
    expect(matches.changes.map((c) => c.key)).toContain(STATE);

    const missing = await s.bisect({ good: first, predicate: { key: PROBE, missing: true } });
    expect(missing.firstBad.id).toBe(deleted);
    expect(missing.tested.length).toBeLessThanOrEqual(16);
    expect(missing.changes).toEqual([expect.objectContaining({ key: PROBE, kind: 'deleted', after: null })]);
    for (const { commit, verdict } of missing.tested) {
      expect(verdict, commit).toBe(position.get(commit)! >= DELETE_AT ? 'bad' : 'good');
    }

    // An explicit bad end, and a good end given as `rev~N`, bound the search the same way.
    const bounded = await s.bisect({
      good: `main~${TOTAL - 2}`,
      bad: chain[CRASH_AT + 99]!,
      predicate: { key: STATE, equals: 'crashed' },
    });
    expect(bounded.firstBad.id).toBe(crashed);
    // A good end that is not on the bad end's first-parent history is an error, not a wrong answer.
    await expect(
      s.bisect({ good: chain[CRASH_AT]!, bad: crashed, predicate: { key: STATE, equals: 'x' } }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    // A bad end where the predicate does not hold is an error naming it, not "the first bad commit" (issue 13,
    // defect 4); so is a good end where it already holds. Both are decided by testing the ends first.
    const reads = vi.spyOn(s.db, 'readBlob');
    await expect(s.bisect({ good: 'main~3', predicate: { key: STATE, equals: 'bad' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/^--bad main \([0-9a-f]{12}\) is not bad: vm\/web1\/state equals "bad" does not/),
      data: { end: 'bad', revision: 'main', commit: chain.at(-1), verdict: 'good' },
    });
    expect(reads).toHaveBeenCalledTimes(1);
    reads.mockRestore();
    await expect(
      s.bisect({ good: crashed, bad: chain.at(-1), predicate: { key: STATE, equals: 'crashed' } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/^--good [0-9a-f]{12} is not good: vm\/web1\/state equals "crashed" already/),
      data: { end: 'good', commit: crashed, verdict: 'bad' },
    });
    const skipping = s.bisect({ good: first, test: async () => 'skip' });
    await expect(skipping).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', data: { end: 'bad', verdict: 'skip' } });
  });
});

describe('bisect and git bisect on a 300-commit store: the binary, the HTTP API, plain git', () => {
  const TOTAL = 300;
  const CRASH_AT = 173;
  const FIRST_TIME = '2026-01-01T00:00:00Z';
  const LATER_TIME = '2026-01-02T00:00:00Z';
  /** Between the first commit and the second: names the first. */
  const GOOD_TIME = '2026-01-01T12:00:00Z';
  let dir: string;
  let repo: string;
  let chain: string[];
  let first: string;
  let crashed: string;
  let server: ChildProcess;
  let url: string;

  beforeAll(async () => {
    // Not tempDir(): that is emptied after each test, and this store and its server live for the whole block.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-bisect-'));
    repo = path.join(dir, 'store.git');
    // The first commit is dated a day before all the others, so an ISO time between them names it.
    let now = new Date(FIRST_TIME);
    const s = await openStore({ fs, dir: repo, create: true, durable: false, clock: () => now });
    ({ first, crashed } = await history(s, TOTAL, 101, CRASH_AT, () => {
      now = new Date(LATER_TIME);
    }));
    await s.close();
    chain = chainOf(repo);
    expect(chain).toHaveLength(TOTAL);
    expect(chain[CRASH_AT - 1]).toBe(crashed);

    server = spawn(process.execPath, [BIN, 'serve', '--repo', repo, '--port', '0'], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      server.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
      server.once('exit', (code) => reject(new Error(`store serve exited with ${code}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('store bisect with a key predicate prints the first bad commit, or JSON', () => {
    const r = store(['--repo', repo, 'bisect', '--good', first, '--key', STATE, '--equals', 'crashed']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')[0]).toBe(`first bad commit: ${crashed}`);
    expect(r.stdout).toContain(`commit ${crashed}`);
    expect(r.stdout).toMatch(new RegExp(`^M\\s+${STATE}\\s`, 'm'));
    expect(r.stdout).not.toContain('skipped');

    const json = store(['--repo', repo, '--json', 'bisect', '--good', first, '--key', STATE, '--matches', '^cra']);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { firstBad: { id: string }; tested: unknown[]; candidates: string[] };
    expect(parsed.firstBad.id).toBe(crashed);
    // log2(300) ≈ 9 steps, and the two ends.
    expect(parsed.tested.length).toBeLessThanOrEqual(11);
    expect(parsed.candidates).toEqual([]);

    // An ISO time works as a revision: the last commit at or before it (here the first commit).
    expect(
      git(['--git-dir', repo, 'rev-list', '-1', '--first-parent', `--before=${GOOD_TIME}`, 'main']).toString(),
    ).toBe(`${first}\n`);
    const byTime = store([
      '--repo',
      repo,
      '--json',
      'bisect',
      '--good',
      GOOD_TIME,
      '--key',
      STATE,
      '--equals',
      'crashed',
    ]);
    expect(byTime.code, byTime.stderr).toBe(0);
    expect(JSON.parse(byTime.stdout).firstBad.id).toBe(crashed);

    // --bad bounds the search from above.
    const bounded = store(
      ['--repo', repo, '--json', 'bisect', '--good', first, '--bad', chain[CRASH_AT + 20]!].concat([
        '--key',
        STATE,
        '--equals',
        'crashed',
      ]),
    );
    expect(JSON.parse(bounded.stdout).firstBad.id).toBe(crashed);
  });

  it('store bisect --run runs a shell script in each snapshot and finds the same commit', () => {
    const log = path.join(dir, 'run.log');
    const r = store([
      '--repo',
      repo,
      '--json',
      'bisect',
      '--good',
      first,
      '--run',
      `echo "$STORE_COMMIT $(pwd) $STORE_SNAPSHOT" >> "${log}"; ${NOT_CRASHED}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const parsed = JSON.parse(r.stdout) as { firstBad: { id: string }; tested: { commit: string; verdict: string }[] };
    expect(parsed.firstBad.id).toBe(crashed);
    expect(parsed.tested.length).toBeLessThanOrEqual(11);
    // The script ran once per tested snapshot, in that snapshot's directory, told which commit it was.
    const runs = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    expect(runs.map((r) => r[0])).toEqual(parsed.tested.map((t) => t.commit));
    for (const [, cwd, snapshot] of runs) expect(cwd).toBe(snapshot);
    for (const { commit, verdict } of parsed.tested) {
      expect(verdict).toBe(chain.indexOf(commit) >= CRASH_AT - 1 ? 'bad' : 'good');
    }

    const text = store(['--repo', repo, 'bisect', '--good', first, '--run', NOT_CRASHED]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.split('\n')[0]).toBe(`first bad commit: ${crashed}`);
  }, 600_000);

  it('store bisect --run steps around skipped snapshots (exit 125), and names candidates when they hide the answer', () => {
    // The script skips the commits listed in $SKIP and reads the snapshot through $STORE_SNAPSHOT.
    const script =
      'case " $SKIP " in *" $STORE_COMMIT "*) exit 125;; esac; test "$(cat "$STORE_SNAPSHOT/vm/web1/state")" != crashed';
    const run = (skip: string[]) => {
      const r = store(['--repo', repo, '--json', 'bisect', '--good', first, '--run', script], { SKIP: skip.join(' ') });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as {
        firstBad: { id: string };
        tested: { commit: string; verdict: string }[];
        candidates: string[];
      };
    };

    // Skipped commits around the middle (the first midpoint among them), the crash not among them.
    const middle = chain.slice(140, 161);
    const around = run(middle);
    expect(around.firstBad.id).toBe(crashed);
    expect(around.candidates).toEqual([]);
    const skipped = around.tested.filter((t) => t.verdict === 'skip').map((t) => t.commit);
    expect(skipped.length).toBeGreaterThan(0);
    for (const c of skipped) expect(middle).toContain(c);
    for (const t of around.tested) if (t.verdict !== 'skip') expect(middle).not.toContain(t.commit);

    // The crash and its neighbours skipped: the first testable bad commit is named, with the skipped ones before it
    // as candidates (the crash among them). One run, read as text (a JSON run would repeat the same bisection).
    const hiding = chain.slice(CRASH_AT - 3, CRASH_AT + 2);
    expect(hiding).toContain(crashed);
    const text = store(['--repo', repo, 'bisect', '--good', first, '--run', script], { SKIP: hiding.join(' ') });
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toBe(`first bad commit: ${chain[CRASH_AT + 2]}`);
    expect(lines[1]).toBe(
      `(or one of these skipped commits before it: ${hiding.map((c) => c.slice(0, 10)).join(' ')})`,
    );
  }, 600_000);

  it('store bisect --run stops with a one-line error when the script exits outside 0-127; usage errors exit 2', () => {
    const stopped = store(['--repo', repo, 'bisect', '--good', first, '--run', 'exit 200']);
    fails(stopped, /200/);
    expect(stopped.stdout).toBe('');

    const usage = (args: string[], message: RegExp) => fails(store(['--repo', repo, 'bisect', ...args]), message, 2);
    usage(['--good', first, '--run', NOT_CRASHED, '--key', STATE], /--run/);
    usage(['--good', first, '--run', NOT_CRASHED, '--key', STATE, '--equals', 'crashed'], /--run/);
    usage(['--good', first], /--key|--run/);
    usage(['--good', first, '--key', STATE], /--equals|--matches|--missing/);
    usage(['--good', first, '--key', STATE, '--equals', 'crashed', '--matches', 'x'], /--equals|--matches/);
    usage(['--key', STATE, '--equals', 'crashed'], /--good/);
    usage(['--good', first, '--key', STATE, '--matches', '('], /--matches/);
  });

  it('an end that is not what it is said to be fails clearly: CLI exit 2, HTTP 400, never a "first bad commit"', async () => {
    // Issue 13, defect 4: `s` was never `bad`, so the head is not bad and there is nothing to find.
    const never = store(['--repo', repo, 'bisect', '--good', 'main~3', '--key', STATE, '--equals', 'bad']);
    fails(never, /^error: --bad main \([0-9a-f]{12}\) is not bad: vm\/web1\/state equals "bad" does not hold there/, 2);
    expect(never.stdout).toBe('');
    // The good end already bad.
    const already = store(['--repo', repo, 'bisect', '--good', 'main~3', '--key', STATE, '--equals', 'crashed']);
    fails(already, /^error: --good main~3 \([0-9a-f]{12}\) is not good: vm\/web1\/state equals "crashed" already/, 2);
    // A --run command that passes everywhere, or fails everywhere.
    fails(store(['--repo', repo, 'bisect', '--good', first, '--run', 'true']), /--bad main .* is not bad: the test/, 2);
    fails(store(['--repo', repo, 'bisect', '--good', first, '--run', 'false']), /--good [0-9a-f]{12} is not good/, 2);
    // Over HTTP, and through the CLI in front of it.
    const res = await fetch(`${url}/v1/branches/main/bisect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ good: 'main~3', key: STATE, equals: 'bad' }),
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string; data: { end: string } } };
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/^--bad main \([0-9a-f]{12}\) is not bad/);
    expect(error.data.end).toBe('bad');
    fails(store(['--url', url, 'bisect', '--good', 'main~3', '--key', STATE, '--equals', 'bad']), /is not bad/, 2);
  });

  it('POST /v1/branches/main/bisect answers the first bad commit; a body with two predicates or none is a 400', async () => {
    const post = (body: unknown) =>
      fetch(`${url}/v1/branches/main/bisect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const res = await post({ good: first, key: STATE, equals: 'crashed' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { firstBad: { id: string }; tested: unknown[]; changes: { key: string }[] };
    expect(body.firstBad.id).toBe(crashed);
    expect(body.tested.length).toBeLessThanOrEqual(11);
    expect(body.changes.map((c) => c.key)).toEqual([STATE]);

    const byTime = await post({ good: GOOD_TIME, bad: chain.at(-1), key: STATE, matches: '^crash' });
    expect(byTime.status).toBe(200);
    expect(((await byTime.json()) as { firstBad: { id: string } }).firstBad.id).toBe(crashed);

    const missing = await post({ good: first, key: PROBE, missing: true });
    expect(missing.status).toBe(200);
    expect(((await missing.json()) as { firstBad: { id: string } }).firstBad.id).toBe(chain[100]);

    for (const bad of [
      { good: first, key: STATE, equals: 'crashed', matches: '^cra' },
      { good: first, key: STATE, equals: 'crashed', missing: true },
      { good: first, key: STATE },
      { good: first, equals: 'crashed' },
      { key: STATE, equals: 'crashed' },
      { good: first, key: STATE, missing: false },
    ]) {
      const r = await post(bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code, JSON.stringify(bad)).toBe(
        'INVALID_ARGUMENT',
      );
    }
  });

  it('store --url … bisect takes a key predicate; --run over --url exits 2 saying why', () => {
    const r = store(['--url', url, 'bisect', '--good', first, '--key', STATE, '--equals', 'crashed']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`first bad commit: ${crashed}`);
    const json = store(['--url', url, '--json', 'bisect', '--good', first, '--key', STATE, '--matches', 'ash']);
    expect(JSON.parse(json.stdout).firstBad.id).toBe(crashed);

    fails(store(['--url', url, 'bisect', '--good', first, '--run', NOT_CRASHED]), /--run.*--url|--url.*--run/, 2);
  });

  it('the README recipe: plain git bisect run on a clone names the same first bad commit as store bisect', () => {
    const ours = store(['--repo', repo, '--json', 'bisect', '--good', first, '--run', NOT_CRASHED]);
    expect(ours.code, ours.stderr).toBe(0);
    const storeAnswer = (JSON.parse(ours.stdout) as { firstBad: { id: string } }).firstBad.id;

    // The recipe exactly as README.md gives it (its one shell block with `git bisect run`), its placeholders filled
    // in, run by sh with `set -e` beside the store: the bad end is the branch, the good end the first commit.
    const readme = fs.readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
    const blocks = [...readme.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```$/gm)]
      .map((m) => m[1]!)
      .filter((b) => b.includes('git bisect run'));
    expect(blocks, 'README.md: one shell block with the git bisect run recipe').toHaveLength(1);
    const recipe = blocks[0]!;
    expect(recipe).toContain('git clone store.git work');
    expect(recipe).toContain(NOT_CRASHED);
    const script = `set -e\n${recipe.replace(/<[^<>\s]*good[^<>\s]*>/g, first).replace(/<[^<>\s]*bad[^<>\s]*>/g, 'main')}`;
    expect(script).not.toMatch(/<[a-z-]+>/);
    const r = spawnSync('sh', ['-c', script], { cwd: dir, env: cliEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    const named = /^([0-9a-f]{40}) is the first bad commit$/m.exec(r.stdout)?.[1];
    expect(named, r.stdout).toMatch(OID);
    expect(named).toBe(storeAnswer);
    expect(named).toBe(crashed);
  });
});

describe('blame: the last commit that changed each key', () => {
  const ALICE = { name: 'Alice', email: 'alice@example.test' };
  const BOB = { name: 'Bob', email: 'bob@example.test' };
  const CAROL = { name: 'Carol', email: 'carol@example.test' };
  const DAVE = { name: 'Dave', email: 'dave@example.test' };
  const apps: FastifyInstance[] = [];

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  /** A store whose clock moves one hour per write, starting 2026-03-01 (so ISO times name commits exactly). */
  async function clockedStore() {
    let t = Date.parse('2026-03-01T00:00:00Z');
    const s = await diskStore({ durable: false, clock: () => new Date(t) });
    const tick = () => {
      t += 3_600_000;
      return new Date(t).toISOString();
    };
    return { s, tick };
  }

  /** A real server over the store, listening on a free port; returns a GET that expects 200 and gives the keys. */
  async function serve(s: Store) {
    const app = await buildApp({ store: s });
    apps.push(app);
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    return async (p: string) => {
      const res = await fetch(`${base}${p}`);
      expect(res.status, p).toBe(200);
      return ((await res.json()) as { keys: BlameRow[] }).keys;
    };
  }

  it('names the commit plain git log --first-parent names, for every key, through the library, CLI and HTTP', async () => {
    const { s, tick } = await clockedStore();
    const repo = s.dir;
    tick();
    await s.set('app/db/host', 'db1', { author: ALICE });
    tick();
    await s.set('app/db/port', '5432', { author: BOB });
    tick();
    await s.set('app/cache/ttl', '60', { author: ALICE });
    tick();
    await s.set('other/flag', 'on', { author: CAROL });
    tick();
    await s.set('app/tmp', 'scratch', { author: CAROL });
    tick();
    await s.delete('app/tmp', { author: CAROL });

    // A commit made with plain git, pushed back into the store.
    const work = path.join(tempDir(), 'work');
    git(['clone', '--quiet', repo, work]);
    fs.writeFileSync(path.join(work, 'app/db/port'), '6432');
    fs.mkdirSync(path.join(work, 'app/queue'));
    fs.writeFileSync(path.join(work, 'app/queue/size'), '10');
    git(['-C', work, 'add', '-A']);
    const when = tick();
    git(['-C', work, 'commit', '--quiet', '-m', 'port and queue by hand'], {
      env: { ...gitEnv, GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when },
    });
    git(['-C', work, 'push', '--quiet', 'origin', 'HEAD:main']);
    const pushed = git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim();

    // Writing a value a key already has is not a change to it.
    tick();
    await s.set('app/db/host', 'db1', { author: BOB });
    // A key changed on a branch and merged: on main's first-parent history the merge commit changed it.
    await s.createBranch('dev');
    tick();
    await s.set('app/cache/ttl', '120', { branch: 'dev', author: DAVE });
    tick();
    await s.set('other/flag', 'off', { author: CAROL });
    tick();
    const merge = await s.merge('dev', { author: DAVE });
    expect(merge.outcome).toBe('merged');
    const before = await s.resolve('main');
    const beforeTime = tick();
    tick();
    const last = await s.set('app/db/host', 'db2', { author: ALICE });
    // Half an hour after the merge, before the last write: an ISO time for `before`.
    const at = new Date(Date.parse(beforeTime) + 1_800_000).toISOString();
    expect(await s.resolve(at)).toBe(before);

    const gitBlame = (key: string, rev = 'main') =>
      git(['--git-dir', repo, 'log', '-1', '--first-parent', '--format=%H %an', rev, '--', key]).toString().trim();
    const gitKeys = (rev = 'main', prefix?: string) =>
      git(['--git-dir', repo, 'ls-tree', '-r', '--name-only', rev, ...(prefix ? ['--', prefix] : [])])
        .toString()
        .trim()
        .split('\n')
        .sort();
    const expectAsGit = (lines: BlameRow[], rev: string) => {
      expect(lines.map((l) => l.key).sort()).toEqual(gitKeys(rev));
      for (const l of lines) expect(`${l.commit.id} ${l.commit.author.name}`, l.key).toBe(gitBlame(l.key, rev));
    };

    const all = await s.blame('');
    expectAsGit(all, 'main');
    const by = Object.fromEntries(all.map((l) => [l.key, l.commit.id]));
    expect(by['app/db/host']).toBe(last.commit);
    expect(by['app/db/port']).toBe(pushed);
    expect(by['app/queue/size']).toBe(pushed);
    expect(by['app/cache/ttl']).toBe(merge.commit);
    expect(by['app/tmp']).toBeUndefined();
    expect(all.find((l) => l.key === 'app/db/port')!.commit.author.name).toBe('Plain Git');
    // Blame tells when: the last write's time, as the store's clock gave it.
    const lastTime = new Date(Date.parse(beforeTime) + 3_600_000).toISOString();
    expect(all.find((l) => l.key === 'app/db/host')!.commit.author.time).toBe(lastTime);

    // `at`: the older answer, by commit id or by ISO time.
    const older = await s.blame('', { at: before });
    expectAsGit(older, before);
    expect(await s.blame('', { at })).toEqual(older);
    const olderBy = Object.fromEntries(older.map((l) => [l.key, l.commit.id]));
    expect(olderBy['app/db/host']).not.toBe(last.commit);
    expect(olderBy['app/db/host']).toBe(gitBlame('app/db/host', before).split(' ')[0]);
    expect((await s.blame('app/db', { at: before })).map((l) => l.key)).toEqual(['app/db/host', 'app/db/port']);

    // The CLI: one line per key under the prefix, starting with the key and naming the commit and its author.
    const cli = store(['--repo', repo, 'blame', 'app']);
    expect(cli.code, cli.stderr).toBe(0);
    const rows = cli.stdout.trim().split('\n');
    expect(rows.map((r) => r.split(/\s+/)[0])).toEqual(gitKeys('main', 'app'));
    for (const row of rows) {
      const key = row.split(/\s+/)[0]!;
      const [id, ...author] = gitBlame(key).split(' ');
      expect(row).toContain(id!.slice(0, 10));
      expect(row).toContain(author.join(' '));
    }
    for (const rev of [before, at]) {
      const json = store(['--repo', repo, '--json', 'blame', '--at', rev]);
      expect(json.code, json.stderr).toBe(0);
      expectAsGit(JSON.parse(json.stdout), before);
    }

    // HTTP, on a listening server.
    const get = await serve(s);
    const httpApp = await get('/v1/branches/main/blame/app');
    expect(httpApp.map((l) => [l.key, l.commit.id])).toEqual(
      all.filter((l) => l.key.startsWith('app/')).map((l) => [l.key, l.commit.id]),
    );
    expectAsGit(await get('/v1/branches/main/blame'), 'main');
    expectAsGit(await get(`/v1/branches/main/blame?at=${before}`), before);
    expectAsGit(await get(`/v1/branches/main/blame?at=${encodeURIComponent(at)}`), before);
    const httpOlder = await get(`/v1/branches/main/blame/app/db?at=${before}`);
    expect(httpOlder.map((l) => [l.key, l.commit.id])).toEqual([
      ['app/db/host', olderBy['app/db/host']],
      ['app/db/port', pushed],
    ]);
    await s.close();
  });

  it('a prefix that names one key blames that key (library, CLI, HTTP)', async () => {
    const { s, tick } = await clockedStore();
    tick();
    const port = await s.set('app/db/port', '5432', { author: BOB });
    tick();
    await s.set('app/db/host', 'db1', { author: ALICE });
    const expected = [['app/db/port', port.commit]];

    expect((await s.blame('app/db/port')).map((l) => [l.key, l.commit.id])).toEqual(expected);
    const cli = store(['--repo', s.dir, '--json', 'blame', 'app/db/port']);
    expect(cli.code, cli.stderr).toBe(0);
    expect((JSON.parse(cli.stdout) as BlameRow[]).map((l) => [l.key, l.commit.id])).toEqual(expected);
    const get = await serve(s);
    expect((await get('/v1/branches/main/blame/app/db/port')).map((l) => [l.key, l.commit.id])).toEqual(expected);
    await s.close();
  });
});
