import type { Command } from 'commander';
import { type Context, makeContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import type { Io } from '../io.js';

/** Wraps a handler: builds its context from the command's options; errors go to the one top-level catch. */
// biome-ignore lint/suspicious/noExplicitAny: commander passes positional arguments of varying types
export type Act = <A extends any[]>(
  fn: (ctx: Context, ...args: A) => Promise<void>,
) => (...args: unknown[]) => Promise<void>;

export function makeAct(io: Io): Act {
  return (fn) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      // commander passes: positional arguments…, the options object, the command.
      await fn(makeContext(io, command), ...(args.slice(0, -1) as never));
    };
}

export function printJson(ctx: Context, value: unknown): void {
  ctx.io.out(`${JSON.stringify(value, null, ctx.io.tty ? 2 : undefined)}\n`);
}

/** What `--force` does, on every command that writes (WriteOptions.force). */
export const FORCE_HELP =
  "change the branch's schemas (.store/schema.json) even though stored values break them (admins, over --url)";

/** Commit ids shortened for people, as git does. */
export const short = (oid: string | null | undefined): string => (oid ? oid.slice(0, 10) : '-');

/** The help of `--nearest`, the same on every command that reads at a revision. */
export const NEAREST_HELP =
  'with --at a time inside a compacted interval: read the kept snapshot at or before it (named on stderr)';

/** `--nearest` as the store's option; it means something only with `--at`. */
export function nearestOf(opts: { at?: string; nearest?: boolean }): 'before' | undefined {
  if (!opts.nearest) return undefined;
  if (opts.at === undefined) throw new UsageError('--nearest needs --at: it picks the kept snapshot at or before it');
  return 'before';
}

/** The commit a read at a revision used, with its time: with --nearest it may be older than the time asked for. */
export async function commitRead(ctx: Context, commit: string): Promise<{ commit: string; time: string }> {
  const c = await (await ctx.store()).commit(commit);
  return { commit: c.id, time: c.committer.time };
}

/** Says on stderr which commit a --nearest read used (stdout carries only the answer). */
export async function tellCommitRead(ctx: Context, commit: string | null): Promise<void> {
  if (!commit) return;
  const read = await commitRead(ctx, commit);
  ctx.io.err(`read at commit ${read.commit} of ${read.time}\n`);
}
