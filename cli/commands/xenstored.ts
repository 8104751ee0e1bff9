import type { Command } from 'commander';
import { DEFAULT_QUOTAS, type Quotas } from '../../src/xenstore/daemon.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import type { Act } from './shared.js';

export function registerXenstored(program: Command, act: Act): void {
  program
    .command('xenstored')
    .description("serve the Xenstore protocol on a Unix socket, so Xen's tools use the store as their Xenstore")
    .requiredOption('--socket <path>', 'the Unix socket to listen on (clients: XENSTORED_PATH=<path>)')
    .option(
      '--quota <name=value...>',
      `limits (defaults: ${Object.entries(DEFAULT_QUOTAS)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')})`,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ store xenstored --socket /var/run/xenstored/socket --repo /var/lib/gitstore/xenstore.git\n' +
        '  $ XENSTORED_PATH=/tmp/xs.sock xenstore-write /vm/1/name web1',
    )
    .action(
      act(async (ctx: Context, opts: { socket: string; quota?: string[] }) => {
        const quotas: Partial<Quotas> = {};
        for (const q of opts.quota ?? []) {
          const m = /^(\w+)=(\d+)$/.exec(q);
          if (!m || !(m[1]! in DEFAULT_QUOTAS)) {
            throw new UsageError(`--quota ${q}: use name=number with one of ${Object.keys(DEFAULT_QUOTAS).join(', ')}`);
          }
          quotas[m[1] as keyof Quotas] = Number(m[2]);
        }
        ctx.localOnly('xenstored serves a repository on this machine');
        if (opts.socket.length >= 108) throw new UsageError('--socket: a Unix socket path must be under 108 bytes');
        const { serveXenstore } = await import('../../server/xenstored.js');
        await serveXenstore({
          repo: ctx.repo,
          socket: opts.socket,
          branch: ctx.options.branch,
          quotas,
          log: (line) => ctx.io.err(`${line}\n`),
        });
        ctx.io.err(`gitstore xenstored on ${opts.socket} (repository ${ctx.repo})\n`);
      }),
    );
}
