/**
 * `store compact` end to end: the real bin/store.js (it runs the compiled bundle, so `npm run build` first) on a
 * repository whose history was written here with a clock set days back, then checked through plain git. The CLI
 * cannot be given a clock or a prune grace, so the history is dated in the past (it runs on real time) and the pack
 * files are dated ten minutes back (older than the default 60 s grace, so pruning happens).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { CompactResult } from '../src/index.js';
import { openStore } from '../src/index.js';
import { expectFsckClean } from './git-packs.js';
import { cliEnv, git, type Run, runProcess, tempDir } from './helpers.js';
import { stopChildren } from './writers.js';

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));

/** Runs the real `store` binary without blocking the event loop. */
const storeCli = (args: string[]): Promise<Run> => runProcess(process.execPath, [BIN, ...args], cliEnv());

/** Asserts a failure with exit `code`, nothing on stdout and exactly one `error:` line (no stack) on stderr. */
function expectFailure(r: Run, code: number, message: RegExp) {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^error: [^\n]+\n$/);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\bat \S+ \(|\.ts:\d+|\.js:\d+/);
}

const children: ChildProcess[] = [];
afterEach(async () => {
  await stopChildren(children);
});

/** `store serve` on a free port over `repo`; resolves with its URL. */
function startServer(repo: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'serve', '--repo', repo, '--port', '0'], {
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`store serve exited (${code}) before printing its URL`)));
  });
}

const POLICY = [
  { within: '1h', keep: 'all' },
  { within: '30d', every: '1d' },
];
const MIN = 60_000;
const DAY = 86_400_000;

/**
 * A repository with 14 commits of `k` (value `v<i>`): twelve three days ago, 01:00 to 02:50 UTC of one day, ten
 * minutes apart, and two just now. With POLICY: the two recent ones stay, the 02:50 commit is that day's snapshot,
 * the other 11 are dropped.
 */
async function oldHistory(): Promise<{ dir: string; commits: string[]; day: number }> {
  const dir = path.join(tempDir(), 'store.git');
  const day = (Math.floor(Date.now() / DAY) - 3) * DAY;
  let t: number | null = null;
  const store = await openStore({ fs, dir, create: true, clock: () => new Date(t ?? Date.now()) });
  const commits: string[] = [];
  for (let i = 0; i < 14; i++) {
    t = i < 12 ? day + 60 * MIN + i * 10 * MIN : null;
    commits.push((await store.set('k', `v${i}`)).commit);
  }
  await store.close();
  // Packs written ten minutes ago, as far as the prune grace is concerned.
  const packDir = path.join(dir, 'objects/pack');
  const then = new Date(Date.now() - 10 * MIN);
  for (const f of fs.readdirSync(packDir)) fs.utimesSync(path.join(packDir, f), then, then);
  return { dir, commits, day };
}

/**
 * Issue 13, defect 11: two old days of 12 commits each (01:00 to 02:50, ten minutes apart; `k` = v0…v23) and two
 * commits now (v24, v25), the packs left as written (inside the prune grace). With POLICY: the two recent ones stay,
 * each day's 02:50 commit is its snapshot (v11 and v23), the other 22 are dropped.
 */
async function twoOldDays(): Promise<{ dir: string; day: number }> {
  const dir = path.join(tempDir(), 'store.git');
  const day = (Math.floor(Date.now() / DAY) - 3) * DAY;
  let t: number | null = null;
  const store = await openStore({ fs, dir, create: true, clock: () => new Date(t ?? Date.now()) });
  for (let i = 0; i < 26; i++) {
    t = i < 24 ? day + Math.floor(i / 12) * DAY + 60 * MIN + (i % 12) * 10 * MIN : null;
    await store.set('k', `v${i}`);
  }
  await store.close();
  return { dir, day };
}

const headOf = (dir: string, branch = 'main') => git(['--git-dir', dir, 'rev-parse', branch]).toString().trim();
const packsOf = (dir: string) => fs.readdirSync(path.join(dir, 'objects/pack')).sort();
const hasRef = (dir: string, ref: string) =>
  git(['--git-dir', dir, 'for-each-ref', '--format=%(refname)', ref]).toString().trim() !== '';
const chainLength = (dir: string, branch = 'main') =>
  Number(git(['--git-dir', dir, 'rev-list', '--first-parent', '--count', branch]).toString());
const iso = (ms: number) => new Date(ms).toISOString();

describe('store compact', () => {
  it('--dry-run lists the snapshots and the space it would free and changes nothing; then --json --policy @file compacts', async () => {
    const { dir, commits, day } = await oldHistory();
    const head = headOf(dir);
    const packs = packsOf(dir);
    const policy = JSON.stringify(POLICY);

    const dry = await storeCli(['--repo', dir, 'compact', '--dry-run', '--policy', policy]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toBe('');
    const lines = dry.stdout.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('main: would keep 3 of 14 commits (2 recent as they are, 1 snapshots), would drop 11');
    expect(lines[1]).toBe(`  snapshot ${iso(day + 170 * MIN)}  ${commits[11]!.slice(0, 12)}`);
    const free = /^would free about (\d+\.\d\d) MB \((\d+) objects\); nothing was changed$/.exec(lines[2]!);
    expect(free, lines[2]).not.toBeNull();
    const wouldFree = Number(free![2]);
    expect(wouldFree).toBeGreaterThan(0);
    expect(lines[3]).toBe('');
    // Nothing changed: the head, the packs, no compaction map.
    expect(headOf(dir)).toBe(head);
    expect(packsOf(dir)).toEqual(packs);
    expect(hasRef(dir, 'refs/store/compacted/main')).toBe(false);

    // The same as JSON.
    const dryJson = await storeCli(['--repo', dir, '--json', 'compact', '--dry-run', '--policy', policy]);
    expect(dryJson.code, dryJson.stderr).toBe(0);
    const planned = JSON.parse(dryJson.stdout) as CompactResult;
    expect(planned).toMatchObject({ dryRun: true, before: head, head, commits: 14, kept: 3, recent: 2, dropped: 11 });
    expect(planned.pruned.objects).toBe(wouldFree);
    expect(headOf(dir)).toBe(head);

    // For real, the policy read from a file.
    const file = path.join(tempDir(), 'policy.json');
    fs.writeFileSync(file, `${JSON.stringify(POLICY, null, 2)}\n`);
    const real = await storeCli(['--repo', dir, 'compact', '--json', '--policy', `@${file}`]);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stderr).toBe('');
    expect(real.stdout.trim().split('\n')).toHaveLength(1);
    const done = JSON.parse(real.stdout) as CompactResult;
    expect(done).toMatchObject({ branch: 'main', dryRun: false, before: head, commits: 14, kept: 3, dropped: 11 });
    expect(done.snapshots).toEqual([{ commit: commits[11], time: iso(day + 170 * MIN) }]);
    expect(done.head).not.toBe(head);
    expect(headOf(dir)).toBe(done.head);
    expect(done.pruned.objects).toBe(wouldFree);
    expect(done.bytesAfter).toBeLessThan(done.bytesBefore);
    expect(chainLength(dir)).toBe(3);
    expect(git(['--git-dir', dir, 'show', 'main:k']).toString()).toBe('v13');
    expect(git(['--git-dir', dir, 'show', 'main~2:k']).toString()).toBe('v11');
    expect(git(['--git-dir', dir, 'show', 'refs/store/compacted/main:map']).toString()).toContain(
      `${commits[3]!.slice(0, 16)} `,
    );
    expectFsckClean(dir);

    // Reading at a dropped commit (full, abbreviated) or inside the compacted gap: exit 3, one line naming compaction.
    const gone = [commits[3]!, commits[3]!.slice(0, 8), iso(day + 85 * MIN)];
    const answers = await Promise.all(gone.map((at) => storeCli(['--repo', dir, 'get', 'k', '--at', at])));
    for (const r of answers) expectFailure(r, 3, /compact/);
    expect(answers[0]!.stderr).toMatch(/dropped by compaction of main; its changes are in the snapshot [0-9a-f]{12}/);
    expect(answers[0]!.stderr).toContain(headOf(dir, 'main~2').slice(0, 12));
    // At a kept one (recent or the snapshot): its value, at its new id.
    for (const [i, at] of [
      [12, commits[12]!],
      [11, commits[11]!.slice(0, 10)],
    ] as const) {
      const r = await storeCli(['--repo', dir, 'get', 'k', '--at', at]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`v${i}`);
    }
  });

  it('prints what it kept and pruned; --branch compacts that branch only; a bad --policy exits 2, changing nothing', async () => {
    const { dir, commits } = await oldHistory();
    const head = headOf(dir);
    const policy = JSON.stringify(POLICY);

    // (Side by side: none of them may change anything.)
    const refused: [string[], number, RegExp][] = [
      [
        ['compact', '--policy', '[{"within":"1x","keep":"all"}]'],
        2,
        /^error: retention tier 1 "within": "1x" is not a duration/,
      ],
      [['compact', '--policy', 'not json'], 2, /^error: the retention policy is not valid JSON/],
      [['compact', '--policy', '[]'], 2, /non-empty array/],
      [
        ['compact', '--policy', `@${path.join(dir, 'no-such-file.json')}`],
        2,
        /^error: cannot read the policy file .*no-such-file/,
      ],
      [['compact'], 2, /no retention policy: add \.store\/retention\.json/],
      [['compact', '--dry-run'], 2, /no retention policy: add \.store\/retention\.json/],
      [['--branch', 'nope', 'compact', '--policy', policy], 3, /nope/],
    ];
    const outcomes = await Promise.all(refused.map(([args]) => storeCli(['--repo', dir, ...args])));
    for (const [n, [, code, message]] of refused.entries()) expectFailure(outcomes[n]!, code, message);
    expect(headOf(dir)).toBe(head);
    expect(hasRef(dir, 'refs/store/compacted/main')).toBe(false);

    // Another branch at the same history: compacting it leaves main (and what main reaches) alone.
    git(['--git-dir', dir, 'branch', 'dev', 'main']);
    const r = await storeCli(['--repo', dir, '--branch', 'dev', 'compact', '--policy', policy]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^dev: kept 3 of 14 commits \(2 recent as they are, 1 snapshots\), dropped 11\npruned \d+ objects; packs \d+\.\d\d MB → \d+\.\d\d MB \(\d+ ms\)\n$/,
    );
    expect(chainLength(dir, 'dev')).toBe(3);
    expect(headOf(dir)).toBe(head);
    expect(chainLength(dir)).toBe(14);
    expect(hasRef(dir, 'refs/store/compacted/dev')).toBe(true);
    expect(hasRef(dir, 'refs/store/compacted/main')).toBe(false);
    expectFsckClean(dir);
    // Compacting main too, in text: the same counts; the objects only main reached are pruned now.
    const main = await storeCli(['--repo', dir, 'compact', '--policy', policy]);
    expect(main.code, main.stderr).toBe(0);
    const m =
      /^main: kept 3 of 14 commits \(2 recent as they are, 1 snapshots\), dropped 11\npruned (\d+) objects; /.exec(
        main.stdout,
      );
    expect(m, main.stdout).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expectFsckClean(dir);
    expectFailure(await storeCli(['--repo', dir, 'get', 'k', '--at', commits[3]!]), 3, /compaction/);
  });

  it('says what the prune grace kept and when it can go; --nearest reads the kept snapshot before a compacted time', async () => {
    const { dir, day } = await twoOldDays();
    const policy = JSON.stringify(POLICY);

    // Right after the writes: nothing is old enough to prune, and the output says why and until when.
    const first = await storeCli(['--repo', dir, 'compact', '--policy', policy]);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.split('\n');
    expect(lines[0]).toBe('main: kept 4 of 26 commits (2 recent as they are, 2 snapshots), dropped 22');
    expect(lines[1]).toMatch(/^pruned 0 objects; /);
    const grace =
      /^kept (\d+) unreachable objects \(\d+\.\d\d MB\) for the prune grace period: their (pack is|\d+ packs are) younger than 60 s \(another process may be about to use them\); compact again after (\S+) to free them$/.exec(
        lines[2]!,
      );
    expect(grace, first.stdout).not.toBeNull();
    const deferred = Number(grace![1]);
    expect(deferred).toBeGreaterThan(22);
    const until = Date.parse(grace![3]!);
    expect(until).toBeGreaterThan(Date.now() - 60_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(lines.slice(3)).toEqual(['']);
    // The same in --json (a dry run now: nothing left to rewrite, the same garbage waiting).
    const dry = await storeCli(['--repo', dir, '--json', 'compact', '--dry-run', '--policy', policy]);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as CompactResult;
    expect(planned.pruned.objects).toBe(0);
    expect(planned.pruned.deferred).toMatchObject({ graceMs: 60_000 });
    expect(planned.pruned.deferred.objects).toBeGreaterThanOrEqual(deferred);
    // Past the grace (the packs dated back rather than waiting): the next compaction frees them, and says nothing more.
    const packDir = path.join(dir, 'objects/pack');
    const then = new Date(Date.now() - 10 * MIN);
    for (const f of fs.readdirSync(packDir)) fs.utimesSync(path.join(packDir, f), then, then);
    const later = await storeCli(['--repo', dir, 'compact', '--policy', policy]);
    expect(later.code, later.stderr).toBe(0);
    const freed = /^pruned (\d+) objects; [^\n]*\n$/m.exec(later.stdout);
    expect(freed, later.stdout).not.toBeNull();
    expect(Number(freed![1])).toBeGreaterThanOrEqual(deferred);
    expect(later.stdout).not.toContain('grace');

    // 01:30 of the second day lies among the commits its 02:50 snapshot absorbed: COMPACTED (exit 3) as before…
    const gap = iso(day + DAY + 90 * MIN);
    expectFailure(await storeCli(['--repo', dir, 'get', 'k', '--at', gap]), 3, /compacted away/);
    // …and with --nearest the first day's snapshot, named on stderr with its time.
    const snapshot = headOf(dir, 'main~3');
    const named = `read at commit ${snapshot} of ${iso(day + 170 * MIN)}\n`;
    const [get, json, ls, exported, overUrl, alone] = await Promise.all([
      storeCli(['--repo', dir, 'get', 'k', '--at', gap, '--nearest']),
      storeCli(['--repo', dir, '--json', 'get', 'k', '--at', gap, '--nearest']),
      storeCli(['--repo', dir, 'ls', '--at', gap, '--nearest']),
      storeCli(['--repo', dir, 'export', '--at', gap, '--nearest']),
      startServer(dir).then((url) => storeCli(['--url', url, 'get', 'k', '--at', gap, '--nearest'])),
      storeCli(['--repo', dir, 'get', 'k', '--nearest']),
    ]);
    for (const r of [get, ls, exported, overUrl]) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe(named);
    }
    expect(get.stdout).toBe('v11');
    expect(overUrl.stdout).toBe('v11');
    expect(ls.stdout).toBe('k\n');
    expect(JSON.parse(exported.stdout)).toEqual({ k: 'v11' });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      key: 'k',
      value: 'v11',
      commit: snapshot,
      time: iso(day + 170 * MIN),
    });
    expectFailure(alone, 2, /--nearest needs --at/);
  });

  // A commit dropped from one branch's history but still on another branch reads as it is, not as COMPACTED (found by
  // this test: the maps were consulted before checking whether another branch still has the commit).
  it('a commit compacted away on one branch still reads by its id where another branch keeps it', async () => {
    const { dir, commits } = await oldHistory();
    git(['--git-dir', dir, 'branch', 'dev', 'main']);
    const r = await storeCli(['--repo', dir, '--branch', 'dev', 'compact', '--policy', JSON.stringify(POLICY)]);
    expect(r.code, r.stderr).toBe(0);
    git(['--git-dir', dir, 'merge-base', '--is-ancestor', commits[3]!, 'main']);
    expect(git(['--git-dir', dir, 'show', `${commits[3]}:k`]).toString()).toBe('v3');
    const onMain = await storeCli(['--repo', dir, 'get', 'k', '--at', commits[3]!]);
    expect(onMain.code, onMain.stderr).toBe(0);
    expect(onMain.stdout).toBe('v3');
  });

  it('--url: compacts through `store serve`, and reading at a dropped commit exits 3 as locally', async () => {
    const { dir, commits } = await oldHistory();
    const head = headOf(dir);
    const url = await startServer(dir);
    const policy = JSON.stringify(POLICY);

    const dry = await storeCli(['--url', url, 'compact', '--dry-run', '--policy', policy]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(
      /^main: would keep 3 of 14 commits \(2 recent as they are, 1 snapshots\), would drop 11\n/,
    );
    expect(headOf(dir)).toBe(head);

    const real = await storeCli(['--url', url, '--json', 'compact', '--policy', policy]);
    expect(real.code, real.stderr).toBe(0);
    const done = JSON.parse(real.stdout) as CompactResult;
    expect(done).toMatchObject({ branch: 'main', before: head, kept: 3, dropped: 11 });
    expect(done.pruned.objects).toBeGreaterThan(0);
    expect(headOf(dir)).toBe(done.head);

    const [dropped, kept, badPolicy, noBranch] = await Promise.all([
      storeCli(['--url', url, 'get', 'k', '--at', commits[0]!]),
      storeCli(['--url', url, 'get', 'k', '--at', commits[13]!]),
      storeCli(['--url', url, 'compact', '--policy', 'not json']),
      storeCli(['--url', url, '--branch', 'nope', 'compact', '--policy', policy]),
    ]);
    expectFailure(dropped, 3, /compaction/);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toBe('v13');
    expectFailure(badPolicy, 2, /not valid JSON/);
    expectFailure(noBranch, 3, /nope/);
    expect(headOf(dir)).toBe(done.head);
    expectFsckClean(dir);
  });
});
