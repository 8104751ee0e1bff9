import fs from 'node:fs';
import path from 'node:path';
import { type Command, Option } from 'commander';
import {
  type Conflict,
  cloneStore,
  type Progress,
  type RefUpdate,
  STRATEGY_NAMES,
  StoreError,
  type StrategyName,
} from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import type { Io } from '../io.js';
import { printConflicts } from './branches.js';
import { type Act, FORCE_HELP, printJson, short } from './shared.js';

/** `--timeout SECONDS` as milliseconds (default: the library's, 120 s). */
function timeoutOf(opts: { timeout?: string }): number | undefined {
  if (opts.timeout === undefined) return undefined;
  const seconds = Number(opts.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`--timeout is a number of seconds above 0, not ${JSON.stringify(opts.timeout)}`);
  }
  return seconds * 1000;
}

const timeoutOption = () =>
  new Option('--timeout <seconds>', 'stop git if the transfer takes longer than this (default 120)');

/**
 * git's progress as a bar redrawn in place on stderr, only when stderr is a terminal (stdout carries the answer).
 * `done()` clears the line.
 */
function progressBar(ctx: Context): { onProgress?: (p: Progress) => void; done: () => void } {
  if (!ctx.io.errTty) return { done: () => {} };
  let drawn = false;
  return {
    onProgress: (p) => {
      const width = 30;
      const bar =
        p.total === undefined || p.total === 0
          ? `${p.done}`
          : `[${'#'.repeat(Math.round((p.done / p.total) * width)).padEnd(width, '.')}] ${p.done}/${p.total}`;
      ctx.io.err(`\r\u001b[K${p.phase} ${bar}`);
      drawn = true;
    },
    done: () => {
      if (drawn) ctx.io.err('\r\u001b[K');
    },
  };
}

/** The refs that moved, one line each, as git prints them: `old..new  ref`. */
function printUpdates(io: Io, updated: RefUpdate[], none: string): void {
  if (updated.length === 0) return void io.out(`${none}\n`);
  for (const u of updated) {
    const range =
      u.old === null
        ? '[new]'
        : u.new === null
          ? '[deleted]'
          : `${short(u.old)}${u.forced ? '...' : '..'}${short(u.new)}`;
    io.out(`${range.padEnd(24)} ${u.ref}${u.forced ? ' (forced)' : ''}\n`);
  }
}

/** The directory `store clone URL` makes: the URL's last path segment, ending in `.git`. */
export function cloneDirOf(url: string): string {
  const base =
    url
      .replace(/[/\\]+$/, '')
      .split(/[/\\:]/)
      .pop() ?? '';
  const name = base.replace(/\.git$/, '');
  if (name === '' || name === '.' || name === '..') {
    throw new UsageError(`cannot tell a directory name from ${url}; give one: store clone URL DIR`);
  }
  return `${name}.git`;
}

export function registerRemotes(program: Command, act: Act): void {
  const list = async (ctx: Context) => {
    const remotes = await (await ctx.store()).remotes.list();
    if (ctx.options.json) return printJson(ctx, remotes);
    for (const r of remotes) ctx.io.out(`${r.name}\t${r.url}\n`);
  };
  const remote = program
    .command('remote')
    .description("manage the repository's remotes (kept in its git config, as `git remote` keeps them); alone: list")
    .argument('[command]', 'add, list or remove')
    .addHelpText(
      'after',
      '\nExamples:\n  $ store remote add origin https://git.example.com/config.git\n  $ store remote list\n' +
        '  $ store remote remove origin',
    )
    .action(
      act(async (ctx: Context, command: string | undefined) => {
        if (command !== undefined) {
          throw new UsageError(`unknown remote command ${JSON.stringify(command)}; use add, list or remove`);
        }
        await list(ctx);
      }),
    );
  remote.command('list').description('list the remotes: NAME<TAB>URL per line').action(act(list));
  remote
    .command('add')
    .description('add a remote (the same name and URL again changes nothing)')
    .argument('<name>', 'its name, e.g. origin')
    .argument('<url>', 'a URL (https://, ssh://, git://, file://), host:path, or a path')
    .action(
      act(async (ctx: Context, name: string, url: string) => {
        const added = await (await ctx.store()).remotes.add(name, url);
        if (ctx.options.json) printJson(ctx, added);
        else ctx.io.out(`remote ${added.name}\t${added.url}\n`);
      }),
    );
  remote
    .command('remove')
    .alias('rm')
    .description('remove a remote and its remote-tracking refs')
    .argument('<name>', 'the remote')
    .action(
      act(async (ctx: Context, name: string) => {
        await (await ctx.store()).remotes.remove(name);
        if (ctx.options.json) printJson(ctx, { removed: name });
        else ctx.io.out(`removed remote ${name}\n`);
      }),
    );

  program
    .command('clone')
    .description('clone a store (any git repository) into a new bare repository here')
    .argument('<url>', 'a URL (https://, ssh://, git://, file://, a store server’s …/git), host:path, or a path')
    .argument('[dir]', 'where (default: --repo, else the last part of the URL with .git)')
    .addOption(timeoutOption())
    .addHelpText(
      'after',
      '\nExamples:\n  $ store clone https://git.example.com/config.git\n  $ store clone http://hub:8080/git replica.git',
    )
    .action(
      act(async (ctx: Context, url: string, dir: string | undefined, opts: { timeout?: string }) => {
        if (ctx.options.url !== undefined) {
          ctx.localOnly('clone creates a repository on this machine');
        }
        const where = dir ?? ctx.options.repo ?? cloneDirOf(url);
        const bar = progressBar(ctx);
        const store = await cloneStore(url, where, {
          fs,
          onProgress: bar.onProgress,
          timeoutMs: timeoutOf(opts),
        }).finally(bar.done);
        const branch = store.defaultBranch;
        await store.close();
        if (ctx.options.json) printJson(ctx, { repository: where, url, branch });
        else ctx.io.out(`cloned ${url} into ${path.normalize(where)} (default branch ${branch})\n`);
      }),
    );

  program
    .command('fetch')
    .description("fetch a remote's branches into refs/remotes/REMOTE/* (the store's own branches do not move)")
    .argument('[remote]', 'a remote name, or a URL or path (default: origin)')
    .addOption(timeoutOption())
    .addHelpText('after', '\nExamples:\n  $ store fetch\n  $ store fetch backup --json')
    .action(
      act(async (ctx: Context, name: string | undefined, opts: { timeout?: string }) => {
        const store = await ctx.store();
        const bar = progressBar(ctx);
        const r = await store.fetch(name, { onProgress: bar.onProgress, timeoutMs: timeoutOf(opts) }).finally(bar.done);
        if (ctx.options.json) printJson(ctx, r);
        else printUpdates(ctx.io, r.updated, `${r.remote}: up to date`);
      }),
    );

  program
    .command('pull')
    .description("fetch a remote's branch and merge it into the same branch here, with its merge strategies")
    .argument('[remote]', 'a remote name, or a URL or path (default: origin)')
    .option('--strategy <name>', `resolve every conflicting key with: ${STRATEGY_NAMES.join(', ')}`)
    .option('--force', FORCE_HELP)
    .addOption(timeoutOption())
    .addHelpText(
      'after',
      '\nThe branch is --branch (default: the default branch). Conflicts are listed, exit 4, and nothing is merged.' +
        '\n\nExamples:\n  $ store pull\n  $ store pull origin --branch dev\n  $ store pull backup --strategy theirs',
    )
    .action(
      act(
        async (
          ctx: Context,
          name: string | undefined,
          opts: { strategy?: string; timeout?: string; force?: boolean },
        ) => {
          if (opts.strategy !== undefined && !(STRATEGY_NAMES as readonly string[]).includes(opts.strategy)) {
            throw new UsageError(`unknown strategy ${opts.strategy}; use one of ${STRATEGY_NAMES.join(', ')}`);
          }
          const store = await ctx.store();
          const bar = progressBar(ctx);
          try {
            const r = await store
              .pull(name, {
                branch: ctx.options.branch,
                strategy: opts.strategy as StrategyName | undefined,
                message: ctx.options.message,
                author: ctx.author(),
                committer: ctx.committer(),
                onProgress: bar.onProgress,
                timeoutMs: timeoutOf(opts),
                force: opts.force,
              })
              .finally(bar.done);
            if (ctx.options.json) return printJson(ctx, r);
            const m = r.merge;
            ctx.io.out(
              m.outcome === 'up-to-date'
                ? `${r.branch}: already up to date (${short(m.commit)})\n`
                : `${r.branch}: ${m.outcome === 'merged' ? 'merged' : 'fast-forwarded to'} ${m.commit}\n`,
            );
          } catch (e) {
            if (e instanceof StoreError && e.code === 'CONFLICT') {
              printConflicts(ctx, (e.data as { conflicts: Conflict[] }).conflicts);
            }
            throw e;
          }
        },
      ),
    );

  program
    .command('push')
    .description('push a branch to the same branch of a remote (refused when the remote has commits you lack)')
    .argument('[remote]', 'a remote name, or a URL or path (default: origin)')
    .option('--force', "replace the remote's branch even if it has commits this store does not")
    .addOption(timeoutOption())
    .addHelpText(
      'after',
      '\nThe branch is --branch (default: the default branch).\n\nExamples:\n  $ store push\n  $ store push backup --branch dev',
    )
    .action(
      act(async (ctx: Context, name: string | undefined, opts: { force?: boolean; timeout?: string }) => {
        const store = await ctx.store();
        const bar = progressBar(ctx);
        const r = await store
          .push(name, {
            branch: ctx.options.branch,
            force: opts.force,
            onProgress: bar.onProgress,
            timeoutMs: timeoutOf(opts),
          })
          .finally(bar.done);
        if (ctx.options.json) printJson(ctx, r);
        else printUpdates(ctx.io, r.updated, `${r.remote}: everything up to date`);
      }),
    );
}
