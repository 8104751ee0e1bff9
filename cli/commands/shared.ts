import type { Command } from 'commander';
import { type Context, makeContext } from '../context.js';
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

/** Commit ids shortened for people, as git does. */
export const short = (oid: string | null | undefined): string => (oid ? oid.slice(0, 10) : '-');
