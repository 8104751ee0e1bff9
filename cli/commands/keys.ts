import type { Command } from 'commander';
import { valueToLeaf } from '../../src/index.js';
import type { Context } from '../context.js';
import { table } from '../io.js';
import { type Act, commitRead, FORCE_HELP, NEAREST_HELP, nearestOf, printJson, tellCommitRead } from './shared.js';

export function registerKeys(program: Command, act: Act): void {
  program
    .command('get')
    .description('print the value of a key (raw bytes; --json for metadata)')
    .argument('<key>', 'the key, e.g. vm/web1/memory')
    .option('--at <rev>', 'read at a revision: commit id, branch~N or ISO time')
    .option('--nearest', NEAREST_HELP)
    .addHelpText(
      'after',
      '\nExamples:\n  $ store get vm/web1/memory\n  $ store get vm/web1/memory --at main~3 --json\n' +
        '  $ store get vm/web1/memory --at 2026-01-01T01:25:00Z --nearest',
    )
    .action(
      act(async (ctx: Context, key: string, opts: { at?: string; nearest?: boolean }) => {
        const store = await ctx.store();
        const where = { branch: ctx.options.branch, at: opts.at, nearest: nearestOf(opts) };
        const { value, oid, commit } = await store.read(key, where);
        if (!ctx.options.json) {
          if (where.nearest) await tellCommitRead(ctx, commit);
          return ctx.io.out(value);
        }
        const leaf = valueToLeaf(value);
        printJson(ctx, {
          key: key.replace(/^\//, ''),
          ...(typeof leaf === 'string' ? { value: leaf } : { value: leaf.$base64, encoding: 'base64' }),
          oid,
          // Read at a revision: the commit's time too (with --nearest, the snapshot may be older than --at).
          ...(opts.at === undefined ? { commit } : await commitRead(ctx, commit)),
        });
      }),
    );

  program
    .command('set')
    .description('set a key; the value comes from the argument, or stdin when omitted or "-"')
    .argument('<key>', 'the key')
    .argument('[value]', 'the value (omit or "-" to read stdin, binary safe)')
    .option('--if-match <oid>', 'only if the key currently has this blob id (compare-and-set)')
    .option('--force', FORCE_HELP)
    .addHelpText(
      'after',
      '\nExamples:\n  $ store set vm/web1/memory 2048\n  $ store set certs/web1.pem < web1.pem\n  $ store set vm/web1/memory 4096 --if-match 1f2e3d4c...',
    )
    .action(
      act(async (ctx: Context, key: string, value: string | undefined, opts: { ifMatch?: string; force?: boolean }) => {
        const bytes = value === undefined || value === '-' ? await ctx.io.readStdin() : value;
        const store = await ctx.store();
        const r = await store.set(key, bytes, {
          branch: ctx.options.branch,
          message: ctx.options.message,
          author: ctx.author(),
          committer: ctx.committer(),
          ifMatch: opts.ifMatch,
          force: opts.force,
        });
        if (ctx.options.json) printJson(ctx, { commit: r.commit, key: r.key, oid: r.oid });
        else ctx.io.out(`${r.commit}\n`);
      }),
    );

  program
    .command('rm')
    .description('delete a key (-r: a whole directory)')
    .argument('<key>', 'the key or directory')
    .option('-r, --recursive', 'delete a directory and everything below it')
    .option('--force', FORCE_HELP)
    .addHelpText('after', '\nExamples:\n  $ store rm vm/web1/memory\n  $ store rm -r vm/web1')
    .action(
      act(async (ctx: Context, key: string, opts: { recursive?: boolean; force?: boolean }) => {
        const store = await ctx.store();
        const r = await store.delete(key, {
          branch: ctx.options.branch,
          recursive: opts.recursive,
          force: opts.force,
          message: ctx.options.message,
          author: ctx.author(),
          committer: ctx.committer(),
        });
        if (ctx.options.json) printJson(ctx, r);
        else ctx.io.out(`${r.commit}\n`);
      }),
    );

  program
    .command('ls')
    .description('list the keys below a prefix (directories end in "/")')
    .argument('[prefix]', 'the directory to list (default: the root)', '')
    .option('-r, --recursive', 'every value below the prefix')
    .option('--at <rev>', 'list at a revision')
    .option('--nearest', NEAREST_HELP)
    .addHelpText('after', '\nExamples:\n  $ store ls vm\n  $ store ls -r vm/web1 --json')
    .action(
      act(async (ctx: Context, prefix: string, opts: { recursive?: boolean; at?: string; nearest?: boolean }) => {
        const store = await ctx.store();
        const nearest = nearestOf(opts);
        const { entries, commit } = await store.list(prefix, {
          branch: ctx.options.branch,
          recursive: opts.recursive,
          at: opts.at,
          nearest,
        });
        if (nearest) await tellCommitRead(ctx, commit);
        if (ctx.options.json)
          return printJson(
            ctx,
            entries.map((e) => ({ key: e.key, type: e.type })),
          );
        ctx.io.out(table(entries.map((e) => [e.type === 'dir' ? `${e.key}/` : e.key])));
      }),
    );
}
