import type { Command } from 'commander';
import { parseDuration, parseIdentity } from '../../src/index.js';
import { type Act, printJson } from './shared.js';

/**
 * `store token create|list|revoke`: the tokens of `store serve`'s API, kept in the repository directory outside
 * every branch (src/access/tokens.ts). Managed where the repository is, like git's own configuration (whoever can
 * open the repository's files is its administrator already), or with `--url` and an admin token through the server.
 */
export function registerTokens(program: Command, act: Act): void {
  const token = program
    .command('token')
    .description('manage the tokens of the HTTP API (once one exists, every request needs one)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ store token create ops --role admin\n' +
        '  $ store token create web --role web-reader --expires 30d\n  $ store token list\n  $ store token revoke web',
    );

  token
    .command('create')
    .description('make a token; its secret is printed once, on stdout, and stored only hashed')
    .argument('<name>', 'a name for it (letters, digits, ".", "_", "-"): who or what uses it')
    .option(
      '--role <role>',
      'a role of .store/access.json, or admin (repeatable)',
      (r: string, all: string[]) => [...all, r],
      [] as string[],
    )
    .option('--expires <duration>', 'stop working after this long: 90m, 12h, 30d, 2w, 1y (default: never)')
    .option('--identity <who>', 'author of its commits, "Name <email>" (default: the token name)')
    .action(
      act(async (ctx, name: string, opts: { role: string[]; expires?: string; identity?: string }) => {
        const expiresInMs = opts.expires === undefined ? undefined : parseDuration(opts.expires, '--expires') * 1000;
        const author = opts.identity === undefined ? undefined : parseIdentity(opts.identity, '--identity');
        const made = await (await ctx.store()).tokens.create(name, {
          roles: opts.role,
          expiresInMs,
          author: author && { name: author.name, email: author.email },
        });
        if (ctx.options.json) return printJson(ctx, made);
        ctx.io.out(`${made.token}\n`);
        ctx.io.err(`token ${name} created; keep the secret above: it is not stored and cannot be shown again\n`);
        if (opts.role.length === 0) ctx.io.err('it has no role: it may do nothing until one is given\n');
        if (made.unknownRoles.length > 0) {
          ctx.io.err(`no such role in .store/access.json yet: ${made.unknownRoles.join(', ')}\n`);
        }
      }),
    );

  token
    .command('list')
    .description('list the tokens: names, roles, expiry and last use (never secrets)')
    .action(
      act(async (ctx) => {
        const tokens = await (await ctx.store()).tokens.list();
        if (ctx.options.json) return printJson(ctx, tokens);
        for (const t of tokens) {
          const roles = t.roles.join(',') || '-';
          ctx.io.out(`${t.name}\t${roles}\texpires ${t.expires ?? 'never'}\tlast used ${t.lastUsed ?? 'never'}\n`);
        }
      }),
    );

  token
    .command('revoke')
    .description('remove a token: requests with it are refused from the next one on')
    .argument('<name>', 'the token')
    .action(
      act(async (ctx, name: string) => {
        await (await ctx.store()).tokens.revoke(name);
        if (ctx.options.json) printJson(ctx, { revoked: name });
        else ctx.io.err(`token ${name} revoked\n`);
      }),
    );
}
