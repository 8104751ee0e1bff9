import fs from 'node:fs';
import type { Command } from 'commander';
import { openStore } from '../../src/index.js';
import type { Context } from '../context.js';
import type { Act } from './shared.js';

export function registerAdmin(program: Command, act: Act): void {
  program
    .command('init')
    .description('create a store: a bare git repository (refuses if one exists)')
    .argument('[dir]', 'where (default: --repo, $STORE_REPO, else ./store.git)')
    .option('--default-branch <name>', 'the default branch', 'main')
    .addHelpText('after', '\nExamples:\n  $ store init\n  $ store init /var/lib/gitstore/config.git')
    .action(
      act(async (ctx: Context, dir: string | undefined, opts: { defaultBranch: string }) => {
        const where = dir ?? ctx.repo;
        await openStore({ fs, dir: where, create: 'new', defaultBranch: opts.defaultBranch });
        if (ctx.options.json) ctx.io.out(`${JSON.stringify({ repository: where, branch: opts.defaultBranch })}\n`);
        else ctx.io.out(`created store at ${where} (default branch ${opts.defaultBranch})\n`);
      }),
    );
}
