import type { Command } from 'commander';
import { type Conflict, STRATEGY_NAMES, StoreError, type StrategyName } from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { styles, table } from '../io.js';
import { type Act, FORCE_HELP, printJson, short } from './shared.js';

export function registerBranches(program: Command, act: Act): void {
  program
    .command('branch')
    .description('list branches; with NAME create one; with -d NAME delete one')
    .argument('[name]', 'the branch to create or delete')
    .option('--from <rev>', 'create the branch at this revision (default: the default branch)')
    .option('-d, --delete', 'delete the branch')
    .addHelpText('after', '\nExamples:\n  $ store branch\n  $ store branch dev --from main~2\n  $ store branch -d dev')
    .action(
      act(async (ctx: Context, name: string | undefined, opts: { from?: string; delete?: boolean }) => {
        // The global -b/--branch means nothing here, and commander reads `store branch -bad` as `-b ad`: refuse it
        // rather than list branches. A name that really begins with "-" is not a valid branch name for git either.
        if (ctx.options.branch !== undefined) {
          const b = ctx.options.branch;
          throw new UsageError(
            `store branch does not take -b/--branch (given -b ${b}, as "-b${b}" also reads); give the branch as ` +
              'the argument: store branch NAME [--from REV], store branch -d NAME. A branch name may not begin with "-"',
          );
        }
        const store = await ctx.store();
        if (opts.delete) {
          if (!name) throw new UsageError('branch -d needs the name of the branch to delete');
          await store.deleteBranch(name);
          if (ctx.options.json) printJson(ctx, { deleted: name });
          else ctx.io.out(`deleted branch ${name}\n`);
          return;
        }
        if (name) {
          const b = await store.createBranch(name, { from: opts.from });
          if (ctx.options.json) printJson(ctx, b);
          else ctx.io.out(`created branch ${b.name} at ${short(b.head)}\n`);
          return;
        }
        const branches = await store.branches();
        if (ctx.options.json) return printJson(ctx, branches);
        const s = styles(ctx.io);
        ctx.io.out(
          table(branches.map((b) => [b.default ? s.green(`* ${b.name}`) : `  ${b.name}`, s.dim(short(b.head))])),
        );
      }),
    );

  program
    .command('merge')
    .description('merge a branch or revision into a branch (three-way, per key)')
    .argument('<from>', 'the branch or revision to merge')
    .option('--into <branch>', 'the branch to merge into (default: --branch, else the default branch)')
    .option('--strategy <name>', `resolve every conflicting key with: ${STRATEGY_NAMES.join(', ')}`)
    .option('--ff', 'fast-forward only: move the branch without a merge commit, fail if they diverged')
    .option('--force', FORCE_HELP)
    .addHelpText('after', '\nExamples:\n  $ store merge dev\n  $ store merge dev --into staging --strategy theirs')
    .action(
      act(
        async (
          ctx: Context,
          from: string,
          opts: { into?: string; strategy?: string; ff?: boolean; force?: boolean },
        ) => {
          const store = await ctx.store();
          if (opts.strategy !== undefined && !(STRATEGY_NAMES as readonly string[]).includes(opts.strategy)) {
            throw new UsageError(`unknown strategy ${opts.strategy}; use one of ${STRATEGY_NAMES.join(', ')}`);
          }
          try {
            const r = await store.merge(from, {
              into: opts.into ?? ctx.options.branch,
              strategy: opts.strategy as StrategyName | undefined,
              ff: opts.ff,
              force: opts.force,
              message: ctx.options.message,
              author: ctx.author(),
              committer: ctx.committer(),
            });
            if (ctx.options.json) printJson(ctx, r);
            else ctx.io.out(r.outcome === 'up-to-date' ? `already up to date (${r.commit})\n` : `${r.commit}\n`);
          } catch (e) {
            if (e instanceof StoreError && e.code === 'CONFLICT')
              printConflicts(ctx, (e.data as { conflicts: Conflict[] }).conflicts);
            throw e;
          }
        },
      ),
    );
}

/**
 * On conflict, for people: one row per key on stdout, then the error line from the top-level catch. With --json the
 * top-level catch prints the error document, conflicts under `error.data.conflicts`, as HTTP answers them.
 */
export function printConflicts(ctx: Context, conflicts: Conflict[]): void {
  if (ctx.options.json) return;
  const s = styles(ctx.io);
  const rows = [['KIND', 'KEY', 'BASE', 'OURS', 'THEIRS'].map(s.bold)];
  for (const c of conflicts) rows.push([s.red(c.kind), c.key, short(c.base), short(c.ours), short(c.theirs)]);
  ctx.io.out(table(rows));
}
