import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { flattenDocument, nestDocument } from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { type Act, FORCE_HELP, NEAREST_HELP, nearestOf, tellCommitRead } from './shared.js';

// yaml is imported when used: loading it costs ~90 ms, more than a whole `store get` may take.
const loadYaml = async () => (await import('yaml')).default;

async function parseDocument(text: string, file: string): Promise<unknown> {
  const yaml = /\.ya?ml$/i.test(file);
  try {
    return yaml ? (await loadYaml()).parse(text) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** A one-line progress bar redrawn in place on a terminal (stderr, so stdout stays clean). */
function progress(ctx: Context, label: string) {
  if (!ctx.io.tty) return undefined;
  return (done: number, total: number) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    ctx.io.err(
      `\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`,
    );
  };
}

export function registerTransfer(program: Command, act: Act): void {
  program
    .command('export')
    .description('write the keys below PREFIX as one nested JSON or YAML document')
    .argument('[prefix]', 'the directory to export (default: everything)', '')
    .option('--format <format>', 'json or yaml', 'json')
    .option('--at <rev>', 'export a past revision')
    .option('--nearest', NEAREST_HELP)
    .addHelpText('after', '\nExamples:\n  $ store export vm > vms.json\n  $ store export --format yaml --at main~10')
    .action(
      act(async (ctx: Context, prefix: string, opts: { format: string; at?: string; nearest?: boolean }) => {
        if (opts.format !== 'json' && opts.format !== 'yaml') throw new UsageError('--format is json or yaml');
        const store = await ctx.store();
        const nearest = nearestOf(opts);
        const { entries, commit } = await store.snapshot(prefix, { branch: ctx.options.branch, at: opts.at, nearest });
        if (nearest) await tellCommitRead(ctx, commit);
        const doc = nestDocument(entries, prefix);
        ctx.io.out(opts.format === 'yaml' ? (await loadYaml()).stringify(doc) : `${JSON.stringify(doc, null, 2)}\n`);
      }),
    );

  program
    .command('import')
    .description('write every value of a JSON or YAML document (FILE, or - for stdin) as keys, in ONE commit')
    .argument('<file>', 'a .json, .yaml or .yml file, or - for JSON on stdin')
    .option('--prefix <prefix>', 'put the keys below this directory')
    .option('--force', FORCE_HELP)
    .addHelpText(
      'after',
      '\nExamples:\n  $ store import vms.json --prefix vm\n  $ store import config.yaml -m "initial load"',
    )
    .action(
      act(async (ctx: Context, file: string, opts: { prefix?: string; force?: boolean }) => {
        const text = file === '-' ? (await ctx.io.readStdin()).toString('utf8') : await fs.readFile(file, 'utf8');
        const values = flattenDocument(await parseDocument(text, file), opts.prefix ?? '');
        if (values.length === 0) throw new UsageError(`${file} holds no values to import`);
        const store = await ctx.store();
        const r = await store.batch(
          values.map((v) => ({ op: 'set' as const, key: v.key, value: v.value })),
          {
            branch: ctx.options.branch,
            message: ctx.options.message,
            author: ctx.author(),
            committer: ctx.committer(),
            onProgress: progress(ctx, 'importing'),
            force: opts.force,
          },
        );
        if (ctx.options.json) ctx.io.out(`${JSON.stringify({ commit: r.commit, keys: values.length })}\n`);
        else ctx.io.out(`${r.commit}\n`);
      }),
    );
}
