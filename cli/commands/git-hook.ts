import fs from 'node:fs';
import type { Command } from 'commander';
import { checkPush, Grants, parseRefUpdates, QuarantinedObjects, StoreError } from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import type { Act } from './shared.js';

/**
 * `store git-hook pre-receive`: not for people (hidden from help). git runs it for every push to `store serve`
 * (git-hooks/pre-receive, server/git/), in the repository, with the pushed objects still in its quarantine. What it
 * prints reaches the pusher's terminal on git's `remote:` lines; exiting non-zero makes git decline the whole push.
 */

/**
 * Sends details of an unexpected failure to the server's log: the server hands git a pipe for that and names its file
 * descriptor in GITSTORE_HOOK_LOG_FD. The pusher is told only that it failed — git's messages may hold the server's
 * paths.
 */
function logOnServer(ctx: Context, text: string): void {
  const fd = Number(ctx.io.env.GITSTORE_HOOK_LOG_FD);
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    fs.writeSync(fd, `${text}\n`);
  } catch {
    // No server listening (the hook run by hand): stderr has the short message.
  }
}

export function registerGitHook(program: Command, act: Act): void {
  program
    .command('git-hook', { hidden: true })
    .description("git's hooks for `store serve`'s git server (run by git, not by people)")
    .argument('<hook>', 'the hook git runs: pre-receive')
    .action(
      act(async (ctx: Context, hook: string) => {
        if (hook !== 'pre-receive') throw new UsageError(`unknown git hook ${JSON.stringify(hook)}; only pre-receive`);
        const updates = parseRefUpdates((await ctx.io.readStdin()).toString('utf8'));
        // A caller with a limited token: the server names what it may do (server/git/access.ts).
        const granted = ctx.io.env.GITSTORE_PUSH_GRANTS;
        const grants = granted === undefined ? undefined : Grants.fromJSON(granted);
        const author = pushAuthor(ctx.io.env.GITSTORE_PUSH_AUTHOR);
        let refusals: Awaited<ReturnType<typeof checkPush>>;
        try {
          refusals = await checkPush(updates, new QuarantinedObjects(), grants, author);
        } catch (e) {
          logOnServer(ctx, `pre-receive check of ${JSON.stringify(updates)} failed: ${(e as Error).stack ?? e}`);
          throw new StoreError('INTERNAL', 'the store could not check this push; the server log has the details');
        }
        if (refusals.length === 0) return;
        ctx.io.err(`The store refused this push; nothing was changed:\n`);
        for (const r of refusals) ctx.io.err(`  ${r.message}\n`);
        throw new StoreError(
          refusals[0]!.code,
          'fix the commits or refs named above and push again (README, "Serving git", lists the checks)',
        );
      }),
    );
}

/** The pushing token's identity, as the server set it (server/git/access.ts). */
function pushAuthor(text: string | undefined): { name: string; email: string } | undefined {
  if (text === undefined) return undefined;
  const value = JSON.parse(text) as { name?: unknown; email?: unknown };
  if (typeof value.name !== 'string' || typeof value.email !== 'string') {
    throw new StoreError('INTERNAL', 'GITSTORE_PUSH_AUTHOR is not an identity');
  }
  return { name: value.name, email: value.email };
}
