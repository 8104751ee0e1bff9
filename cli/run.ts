import { CommanderError } from 'commander';
import { isStoreError } from '../src/index.js';
import { EXIT, exitCodeFor, UsageError } from './exit-codes.js';
import { type Io, styles } from './io.js';
import { buildProgram } from './program.js';

/** Runs one CLI invocation and returns its exit code. The one place errors become messages and exit codes. */
export async function run(argv: string[], io: Io): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version "errors" are commander's way of stopping after printing them.
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version'
        ? EXIT.ok
        : EXIT.usage;
    }
    const s = styles(io);
    if (e instanceof UsageError) {
      io.err(`${s.red('error:')} ${e.message}\n`);
      return EXIT.usage;
    }
    const message = isStoreError(e) ? e.message : describeUnexpected(e);
    io.err(`${s.red('error:')} ${message}\n`);
    if (io.env.STORE_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
    return exitCodeFor(e);
  }
}

/** Failures the store did not raise on purpose (I/O, bugs): say what happened without a stack trace. */
function describeUnexpected(e: unknown): string {
  const err = e as { code?: string; path?: string; message?: string };
  if (err?.code === 'ENOENT' && err.path) return `${err.path}: no such file or directory`;
  if (err?.code === 'EACCES' && err.path) return `${err.path}: permission denied`;
  return `${err?.message ?? String(e)} (set STORE_DEBUG=1 for details)`;
}
