import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { StoreError, type WatchEvent } from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { styles } from '../io.js';
import { type Act, printJson, short } from './shared.js';

/** One line of a `store tx` script. */
type Step =
  | { op: 'set'; key: string; value: string }
  | { op: 'rm'; key: string }
  | { op: 'get'; key: string }
  | { op: 'check'; key: string; value: string };

/** Parses a script: `set KEY VALUE`, `rm KEY`, `get KEY`, `check KEY VALUE`; blank lines and `#` comments skipped. */
export function parseScript(text: string): Step[] {
  const steps: Step[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const m = /^\s*(\S+)\s+(\S+)(?:\s(.*))?$/.exec(line);
    const [op, key, value] = m ? [m[1]!, m[2]!, m[3]] : [line.trim(), '', undefined];
    if ((op === 'set' || op === 'check') && value !== undefined) steps.push({ op, key, value });
    else if ((op === 'rm' || op === 'get') && key && value === undefined) steps.push({ op, key });
    else
      throw new UsageError(
        `line ${i + 1}: expected "set KEY VALUE", "rm KEY", "get KEY" or "check KEY VALUE", not ${JSON.stringify(line)}`,
      );
  });
  return steps;
}

async function runEach(cmd: string, event: WatchEvent, env: NodeJS.ProcessEnv): Promise<void> {
  await new Promise<void>((resolve) => {
    const child = spawn(cmd, {
      shell: true,
      stdio: 'inherit',
      env: {
        ...env,
        STORE_COMMIT: event.commit,
        STORE_KEY: event.key,
        STORE_KIND: event.kind,
        STORE_OID: event.oid ?? '',
      },
    });
    child.on('exit', () => resolve());
    child.on('error', () => resolve());
  });
}

export function registerLive(program: Command, act: Act): void {
  program
    .command('tx')
    .description('run a script of set/rm/get/check lines atomically, as one transaction (exit 4 on conflict)')
    .argument('[file]', 'the script (default: stdin, also with -)')
    .option('--isolation <level>', 'snapshot (only write-write conflicts abort) or serializable', 'snapshot')
    .addHelpText(
      'after',
      '\nScript lines:\n  set KEY VALUE    write (VALUE is the rest of the line)\n  rm KEY           delete\n  get KEY          print the value\n  check KEY VALUE  abort unless KEY equals VALUE\n\nExamples:\n  $ store tx start-vm.txt --isolation serializable\n  $ printf "check vm/1/state halted\\nset vm/1/state running\\n" | store tx',
    )
    .action(
      act(async (ctx: Context, file: string | undefined, opts: { isolation: string }) => {
        if (opts.isolation !== 'snapshot' && opts.isolation !== 'serializable') {
          throw new UsageError('--isolation is snapshot or serializable');
        }
        const text =
          !file || file === '-' ? (await ctx.io.readStdin()).toString('utf8') : await fs.readFile(file, 'utf8');
        const steps = parseScript(text);
        const store = await ctx.store();
        const tx = await store.begin({ branch: ctx.options.branch, isolation: opts.isolation });
        const read: Record<string, string> = {};
        try {
          for (const step of steps) {
            if (step.op === 'set') await tx.set(step.key, step.value);
            else if (step.op === 'rm') await tx.delete(step.key);
            else {
              const value = await tx
                .read(step.key)
                .then((r) => Buffer.from(r.value).toString('utf8'))
                .catch((e: StoreError) => (e.code === 'NOT_FOUND' && step.op === 'check' ? null : Promise.reject(e)));
              if (step.op === 'get') {
                read[step.key] = value!;
                if (!ctx.options.json) ctx.io.out(`${value}\n`);
              } else if (value !== step.value) {
                throw new StoreError(
                  'PRECONDITION_FAILED',
                  `check failed: ${step.key} is ${value === null ? 'absent' : JSON.stringify(value)}, not ${JSON.stringify(step.value)}; nothing was written`,
                  { key: step.key },
                );
              }
            }
          }
        } catch (e) {
          await tx.abort().catch(() => {});
          throw e;
        }
        const result = await tx.commit();
        if (ctx.options.json) printJson(ctx, { ...result, transaction: tx.id, read });
        else ctx.io.out(`${result.commit ?? '(nothing written)'}\n`);
      }),
    );

  program
    .command('watch')
    .description('print every change under PREFIX as it happens (or run a command for each)')
    .argument('[prefix]', 'only keys below this prefix (default: everything)', '')
    .option('--since <rev>', 'first replay the changes made after this revision')
    .option(
      '--exec <cmd>',
      'run CMD (through the shell) per event, with STORE_COMMIT, STORE_KEY, STORE_KIND, STORE_OID set',
    )
    .option('--count <n>', 'stop after n events')
    .addHelpText(
      'after',
      '\nExamples:\n  $ store watch vm/web1\n  $ store watch --since main~10 --json\n  $ store watch vm --exec \'echo "$STORE_KIND $STORE_KEY"\'',
    )
    .action(
      act(async (ctx: Context, prefix: string, opts: { since?: string; exec?: string; count?: string }) => {
        const limit = opts.count === undefined ? Number.POSITIVE_INFINITY : Number(opts.count);
        if (!(limit >= 1) || (opts.count !== undefined && !Number.isInteger(limit)))
          throw new UsageError('--count takes a whole number, at least 1');
        const store = await ctx.store();
        const watch = await store.watch({ branch: ctx.options.branch, prefix, since: opts.since });
        const stop = () => watch.close();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        const s = styles(ctx.io);
        let seen = 0;
        try {
          for await (const event of watch) {
            if (opts.exec) await runEach(opts.exec, event, ctx.io.env);
            else if (ctx.options.json) ctx.io.out(`${JSON.stringify(event)}\n`);
            else ctx.io.out(`${s.yellow(short(event.commit))}  ${event.kind.padEnd(8)}  ${event.key}\n`);
            if (++seen >= limit) break;
          }
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          watch.close();
        }
      }),
    );
}
