import { Command, Option } from 'commander';
import { registerAdmin } from './commands/admin.js';
import { registerBranches } from './commands/branches.js';
import { registerGitHook } from './commands/git-hook.js';
import { registerHistory } from './commands/history.js';
import { registerKeys } from './commands/keys.js';
import { registerLive } from './commands/live.js';
import { registerRemotes } from './commands/remotes.js';
import { registerSchemas } from './commands/schemas.js';
import { makeAct } from './commands/shared.js';
import { registerTokens } from './commands/tokens.js';
import { registerTransfer } from './commands/transfer.js';
import { registerXenstored } from './commands/xenstored.js';
import { UsageError } from './exit-codes.js';
import type { Io } from './io.js';

/** Declares every command; handlers live in commands/, the error → exit code mapping in run.ts. */
export function buildProgram(io: Io): Command {
  const program = new Command('store')
    .description('gitstore: a configuration store where every write is a git commit')
    .version('0.1.0', '-V, --version')
    .option('--repo <dir>', 'the store (a bare git repository); default $STORE_REPO, else ./store.git')
    .option('--url <url>', 'talk to a `store serve` server instead of a repository (default $STORE_URL)')
    .option('--token <token>', 'with --url: the token to send (default $STORE_TOKEN); see `store token create`')
    .option('-b, --branch <branch>', 'the branch to read and write (default: the default branch, main)')
    .option('--json', 'machine-readable output: one JSON document on stdout')
    .option('--author <who>', 'commit author as "Name <email>" (default: GIT_AUTHOR_*, then git config)')
    .addOption(new Option('-m, --message <text>', "a message added below the commit's first line"))
    .showHelpAfterError('(run store help <command> for its options and examples)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ store init
  $ store set vm/web1/memory 2048 -m "resize web1"
  $ store get vm/web1/memory
  $ store branch dev && store --branch dev set vm/web1/memory 4096
  $ store merge dev
  $ store log vm/web1`,
    );
  const act = makeAct(io);
  registerAdmin(program, act);
  registerKeys(program, act);
  registerBranches(program, act);
  registerHistory(program, act);
  registerSchemas(program, act);
  registerTransfer(program, act);
  registerLive(program, act);
  registerRemotes(program, act);
  registerTokens(program, act);
  registerXenstored(program, act);
  registerGitHook(program, act);
  // Our own `help`: commander's prints to stderr and exits 2 for `help help` and unknown names.
  program.helpCommand(false);
  program
    .command('help')
    .description('show help for a command')
    .argument('[command]', 'the command')
    .addHelpText('after', '\nExamples:\n  $ store help\n  $ store help merge')
    .action(async (name: string | undefined) => {
      if (!name) return program.outputHelp();
      const command = program.commands.find((c) => c.name() === name || c.aliases().includes(name));
      if (!command) throw new UsageError(`unknown command '${name}'; \`store --help\` lists them`);
      command.outputHelp();
    });
  for (const command of program.commands) {
    command.configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) }).exitOverride();
  }
  return program;
}
