import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { Change, CommitInfo, KeyPredicate, Verdict } from '../../src/index.js';
import { verdictOfExit } from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { styles, table } from '../io.js';
import { printViolations } from './schemas.js';
import { type Act, FORCE_HELP, printJson, short } from './shared.js';

const MARK = { added: 'A', modified: 'M', deleted: 'D' } as const;

function printChanges(ctx: Context, changes: Change[]): void {
  const s = styles(ctx.io);
  const colour = { added: s.green, modified: s.yellow, deleted: s.red };
  ctx.io.out(
    table(changes.map((c) => [colour[c.kind](MARK[c.kind]), c.key, s.dim(`${short(c.before)} → ${short(c.after)}`)])),
  );
}

export function registerHistory(program: Command, act: Act): void {
  program
    .command('log')
    .description('the operations applied to a branch, newest first (optionally only those touching KEY)')
    .argument('[key]', 'only commits that changed this key or anything below this prefix')
    .option('-n, --max-count <n>', 'show at most n commits', '20')
    .option('--cursor <id>', 'continue from where a previous page stopped')
    .addHelpText('after', '\nExamples:\n  $ store log\n  $ store log vm/web1 -n 5\n  $ store --branch dev log --json')
    .action(
      act(async (ctx: Context, key: string | undefined, opts: { maxCount: string; cursor?: string }) => {
        const limit = Number(opts.maxCount);
        if (!Number.isInteger(limit) || limit < 1)
          throw new UsageError('-n takes a whole number of commits, at least 1');
        const store = await ctx.store();
        const page = await store.log({ branch: ctx.options.branch, path: key, limit, cursor: opts.cursor });
        if (ctx.options.json) return printJson(ctx, page);
        const s = styles(ctx.io);
        ctx.io.out(
          table(
            page.commits.map((c) => [
              s.yellow(short(c.id)),
              s.dim(c.committer.time.replace('.000Z', 'Z')),
              c.author.name,
              c.subject,
            ]),
          ),
        );
        if (page.next && ctx.io.tty) ctx.io.out(s.dim(`more: store log --cursor ${page.next}\n`));
      }),
    );

  program
    .command('show')
    .description('a commit: who, when, what, and the keys it changed')
    .argument('<rev>', 'commit id, branch, branch~N or ISO time')
    .addHelpText('after', '\nExamples:\n  $ store show main\n  $ store show main~2 --json')
    .action(
      act(async (ctx: Context, rev: string) => {
        const store = await ctx.store();
        const commit = await store.commit(rev, { branch: ctx.options.branch });
        const changes = await store.changesOf(commit.id);
        if (ctx.options.json) return printJson(ctx, { ...commit, changes });
        ctx.io.out(describe(ctx, commit));
        printChanges(ctx, changes);
      }),
    );

  program
    .command('diff')
    .description('per-key changes between two revisions (REV2 defaults to the branch head)')
    .argument('<rev1>', 'the older revision')
    .argument('[rev2]', 'the newer revision (default: the branch head)')
    .option('--prefix <prefix>', 'only keys below this prefix')
    .addHelpText('after', '\nExamples:\n  $ store diff main~5\n  $ store diff main dev --prefix vm/web1')
    .action(
      act(async (ctx: Context, rev1: string, rev2: string | undefined, opts: { prefix?: string }) => {
        const store = await ctx.store();
        const changes = await store.diff(rev1, rev2, { branch: ctx.options.branch, prefix: opts.prefix });
        if (ctx.options.json) return printJson(ctx, changes);
        printChanges(ctx, changes);
      }),
    );

  program
    .command('bisect')
    .description(
      'find the first commit where a key went bad, where a command fails, or where the tree broke the schemas, in ' +
        'O(log n) snapshots',
    )
    .option('--good <rev>', 'a revision known to be good (with --invalid: default the first commit)')
    .option('--bad <rev>', 'a revision known to be bad (default: the branch head)')
    .option('--key <key>', 'the key the predicate looks at')
    .option('--equals <value>', 'bad when the key has this value')
    .option('--matches <regex>', 'bad when the key matches this regular expression')
    .option('--missing', 'bad when the key is absent')
    .option('--invalid', 'bad when the tree breaks the schemas the branch declares today (.store/schema.json)')
    .option(
      '--run <cmd>',
      'run CMD in each snapshot, exported to a temporary directory ($STORE_SNAPSHOT): exit 0 good, 125 skip, 1-127 bad',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ store bisect --good main~500 --key vm/web1/memory --equals 0\n' +
        '  $ store bisect --good 2026-11-01 --run \'test "$(cat vm/web1/state)" != crashed\'\n' +
        '  $ store bisect --invalid',
    )
    .action(
      act(async (ctx: Context, opts: BisectOptions) => {
        const predicate = predicateOf(opts);
        if (!predicate && !opts.invalid)
          ctx.localOnly('bisect --run runs a command on snapshots of the repository itself');
        const store = await ctx.store();
        const command = opts.run!;
        const test =
          predicate || opts.invalid
            ? undefined
            : async (commit: string): Promise<Verdict> => {
                const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-bisect-'));
                try {
                  // Each directory made once: a snapshot of a few hundred keys is exported at every step.
                  const made = new Set<string>();
                  for (const { key, value } of (await store.snapshot('', { at: commit })).entries) {
                    const parent = path.dirname(path.join(dir, key));
                    if (!made.has(parent)) fs.mkdirSync(parent, { recursive: true });
                    made.add(parent);
                    fs.writeFileSync(path.join(dir, key), value);
                  }
                  const r = spawnSync(command, {
                    shell: true,
                    cwd: dir,
                    env: { ...ctx.io.env, STORE_SNAPSHOT: dir, STORE_COMMIT: commit },
                    encoding: 'utf8',
                    stdio: ['ignore', 'pipe', 'pipe'],
                  });
                  // The command's output goes to stderr: stdout carries the answer.
                  ctx.io.err(`${r.stdout ?? ''}${r.stderr ?? ''}`);
                  return verdictOfExit(r.status, command);
                } finally {
                  fs.rmSync(dir, { recursive: true, force: true });
                }
              };
        const result = await store.bisect({
          good: opts.good,
          bad: opts.bad,
          branch: ctx.options.branch,
          ...(opts.invalid ? { invalid: true } : predicate ? { predicate } : { test }),
          onProgress: (steps, inDoubt) => {
            if (ctx.io.tty)
              ctx.io.err(steps > 0 ? `\rbisect: ~${steps} steps left (${inDoubt} commits in doubt) ` : '\r\u001b[K');
          },
        });
        if (ctx.options.json) return printJson(ctx, result);
        ctx.io.out(`first bad commit: ${result.firstBad.id}\n`);
        if (result.candidates.length > 0) {
          ctx.io.out(`(or one of these skipped commits before it: ${result.candidates.map(short).join(' ')})\n`);
        }
        ctx.io.out(describe(ctx, result.firstBad));
        printChanges(ctx, result.changes);
        if (result.violations) printViolations(ctx, result.violations);
      }),
    );

  program
    .command('blame')
    .description('for each key at or below PREFIX, the last commit that changed it: who and when')
    .argument('[prefix]', 'a key or a prefix (default: every key)')
    .option('--at <rev>', 'as of this revision or ISO time (default: the branch head)')
    .addHelpText('after', '\nExamples:\n  $ store blame vm/web1\n  $ store blame --at 2026-11-01 --json')
    .action(
      act(async (ctx: Context, prefix: string | undefined, opts: { at?: string }) => {
        const store = await ctx.store();
        const lines = await store.blame(prefix ?? '', { branch: ctx.options.branch, at: opts.at });
        if (ctx.options.json) return printJson(ctx, lines);
        const s = styles(ctx.io);
        ctx.io.out(
          table(
            lines.map(({ key, commit: c }) => [
              key,
              s.yellow(short(c.id)),
              s.dim(c.author.time.replace('.000Z', 'Z')),
              c.author.name,
              c.subject,
            ]),
          ),
        );
      }),
    );

  program
    .command('revert')
    .description('undo a commit with a new commit (fails, writing nothing, if later commits changed the same keys)')
    .argument('<rev>', 'the commit to undo')
    .option('--force', FORCE_HELP)
    .addHelpText('after', '\nExamples:\n  $ store revert 3f2a9c1e\n  $ store revert main~1')
    .action(
      act(async (ctx: Context, rev: string, opts: { force?: boolean }) => {
        const store = await ctx.store();
        const r = await store.revert(rev, {
          branch: ctx.options.branch,
          force: opts.force,
          message: ctx.options.message,
          author: ctx.author(),
          committer: ctx.committer(),
        });
        if (ctx.options.json) printJson(ctx, r);
        else ctx.io.out(`${r.commit}\n`);
      }),
    );
}

interface BisectOptions {
  good?: string;
  invalid?: boolean;
  bad?: string;
  key?: string;
  equals?: string;
  matches?: string;
  missing?: boolean;
  run?: string;
}

/** The key predicate the options give, or null for --run; a UsageError for a combination that means nothing. */
function predicateOf(opts: BisectOptions): KeyPredicate | null {
  const given = [opts.equals !== undefined, opts.matches !== undefined, opts.missing === true].filter(Boolean).length;
  if (opts.invalid) {
    if (opts.run !== undefined || opts.key !== undefined || given > 0) {
      throw new UsageError('--invalid is a test of its own: give no --run, --key or predicate with it');
    }
    return null;
  }
  if (opts.good === undefined) throw new UsageError('give --good REV: a revision known to be good');
  if (opts.run !== undefined) {
    if (opts.key !== undefined || given > 0)
      throw new UsageError('give either --run or --key with a predicate, not both');
    return null;
  }
  if (opts.key === undefined || given !== 1) {
    throw new UsageError('give --key K with one of --equals V, --matches REGEX, --missing; or --run CMD');
  }
  if (opts.equals !== undefined) return { key: opts.key, equals: opts.equals };
  if (opts.matches !== undefined) return { key: opts.key, matches: opts.matches };
  return { key: opts.key, missing: true };
}

function describe(ctx: Context, c: CommitInfo): string {
  const s = styles(ctx.io);
  const body = c.message.split('\n').slice(1).join('\n').trim();
  return [
    `${s.yellow(`commit ${c.id}`)}`,
    ...(c.parents.length > 1 ? [`merge:  ${c.parents.map(short).join(' ')}`] : []),
    `author: ${c.author.name} <${c.author.email}>`,
    `date:   ${c.author.time}`,
    '',
    `    ${c.subject}`,
    ...(body ? ['', ...body.split('\n').map((l) => `    ${l}`)] : []),
    '',
    '',
  ].join('\n');
}
