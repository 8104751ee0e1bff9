import type { Command } from 'commander';
import type { Change, CommitInfo } from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { styles, table } from '../io.js';
import { type Act, printJson, short } from './shared.js';

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
    .command('revert')
    .description('undo a commit with a new commit (fails, writing nothing, if later commits changed the same keys)')
    .argument('<rev>', 'the commit to undo')
    .addHelpText('after', '\nExamples:\n  $ store revert 3f2a9c1e\n  $ store revert main~1')
    .action(
      act(async (ctx: Context, rev: string) => {
        const store = await ctx.store();
        const r = await store.revert(rev, {
          branch: ctx.options.branch,
          message: ctx.options.message,
          author: ctx.author(),
        });
        if (ctx.options.json) printJson(ctx, r);
        else ctx.io.out(`${r.commit}\n`);
      }),
    );
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
