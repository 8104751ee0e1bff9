import { CommanderError } from 'commander';
import { type ErrorBody, errorBodyOf, isStoreError } from '../src/index.js';
import { EXIT, ExitWith, exitCodeFor } from './exit-codes.js';
import { type Io, styles } from './io.js';
import { buildProgram } from './program.js';

/** Runs one CLI invocation and returns its exit code. The one place errors become messages and exit codes. */
export async function run(argv: string[], io: Io): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof ExitWith) return e.exitCode;
    const json = program.opts().json === true || beforeDashes(argv).includes('--json');
    if (e instanceof CommanderError) {
      // Help and version "errors" are commander's way of stopping after printing them.
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT.ok;
      // commander printed its message to stderr already; --json gets the same body as every other usage error.
      if (json) printError(io, usage(e.message.replace(/^error: /, '')));
      return EXIT.usage;
    }
    const message = isStoreError(e) ? e.message : describeUnexpected(e);
    io.err(`${styles(io).red('error:')} ${message}\n`);
    if (io.env.STORE_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
    // With --json the error is also a document on stdout, in the shape the HTTP API answers.
    if (json) printError(io, errorBodyOf(e, message));
    return exitCodeFor(e);
  }
}

const beforeDashes = (argv: string[]) => (argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv);

const usage = (message: string): ErrorBody => ({ error: { code: 'INVALID_ARGUMENT', message, data: {} } });

function printError(io: Io, body: ErrorBody): void {
  io.out(`${JSON.stringify(body, null, io.tty ? 2 : undefined)}\n`);
}

/** Failures the store did not raise on purpose (I/O, bugs): say what happened without a stack trace. */
function describeUnexpected(e: unknown): string {
  const err = e as { code?: string; path?: string; message?: string };
  if (err?.code === 'ENOENT' && err.path) return `${err.path}: no such file or directory`;
  if (err?.code === 'EACCES' && err.path) return `${err.path}: permission denied`;
  return `${err?.message ?? String(e)} (set STORE_DEBUG=1 for details)`;
}
