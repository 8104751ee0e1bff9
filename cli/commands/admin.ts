import fs from 'node:fs';
import type { Command } from 'commander';
import { openStore, StoreError } from '../../src/index.js';
import type { Context } from '../context.js';
import { UsageError } from '../exit-codes.js';
import type { Act } from './shared.js';

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

/** A policy given as `@file`. */
function readPolicy(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the policy file ${file}: ${(e as Error).message}`);
  }
}

export function registerAdmin(program: Command, act: Act): void {
  program
    .command('init')
    .description('create a store: a bare git repository (like git init, an existing store is left as it is)')
    .argument('[dir]', 'where (default: --repo, $STORE_REPO, else ./store.git)')
    .option('--default-branch <name>', 'the default branch of a new store (default: main)')
    .addHelpText('after', '\nExamples:\n  $ store init\n  $ store init /var/lib/gitstore/config.git')
    .action(
      act(async (ctx: Context, dir: string | undefined, opts: { defaultBranch?: string }) => {
        // A directory named here is local, as --repo is, whatever $STORE_URL says; --url with init is a contradiction.
        if (dir === undefined || ctx.options.url !== undefined) {
          ctx.localOnly('init creates a repository on this machine (a server creates its own when it starts)');
        }
        const where = dir ?? ctx.repo;
        const asked = opts.defaultBranch ?? 'main';
        let created = true;
        let branch = asked;
        // Like `git init`, init on an existing store succeeds and changes nothing, so provisioning can run it every
        // time. Unlike git (which warns and ignores it), a different --default-branch is refused: the caller asked
        // for a store this is not.
        const store = await openStore({ fs, dir: where, create: 'new', defaultBranch: asked }).catch(async (e) => {
          if (!(e instanceof StoreError) || e.code !== 'REPOSITORY_EXISTS') throw e;
          created = false;
          return openStore({ fs, dir: where });
        });
        if (!created) {
          branch = store.defaultBranch;
          if (opts.defaultBranch !== undefined && opts.defaultBranch !== branch) {
            throw new StoreError(
              'REPOSITORY_EXISTS',
              `a store already exists at ${where} with default branch ${branch}, not ${opts.defaultBranch}`,
              { repository: where, branch },
            );
          }
        }
        if (ctx.options.json) ctx.io.out(`${JSON.stringify({ repository: where, branch, created })}\n`);
        else if (created) ctx.io.out(`created store at ${where} (default branch ${branch})\n`);
        else ctx.io.out(`store at ${where} exists already (default branch ${branch}); nothing changed\n`);
      }),
    );

  program
    .command('gc')
    .description('repack the repository: every pack into one, deflated, wide trees as deltas (safe while writing)')
    .addHelpText('after', '\nExamples:\n  $ store gc\n  $ store gc --json')
    .action(
      act(async (ctx: Context) => {
        const r = await (await ctx.store()).gc();
        if (ctx.options.json) ctx.io.out(`${JSON.stringify(r)}\n`);
        else {
          ctx.io.out(
            `packed ${r.objects} objects: ${r.packsBefore} packs, ${mb(r.bytesBefore)} → ${r.packsAfter} pack${
              r.packsAfter === 1 ? '' : 's'
            }, ${mb(r.bytesAfter)} (${r.ms} ms)\n`,
          );
        }
      }),
    );

  program
    .command('fsck')
    .description(
      'check the repository: refs, the objects they reach, packs and journals (opening it already replays the ' +
        'journals of processes that are gone); exit 1 (CORRUPT) if a problem is left',
    )
    .option('--repair', 'also remove packs a power cut left torn')
    .addHelpText('after', '\nExamples:\n  $ store fsck\n  $ store fsck --repair --json')
    .action(
      act(async (ctx: Context, opts: { repair?: boolean }) => {
        ctx.localOnly('fsck checks a repository on this machine');
        const store = await openStore({ fs, dir: ctx.repo });
        try {
          const r = await store.fsck({ repair: opts.repair });
          if (ctx.options.json) ctx.io.out(`${JSON.stringify(r)}\n`);
          else {
            const { recovered } = r;
            if (recovered.journals > 0) {
              ctx.io.out(
                `recovered ${recovered.records} journaled write batches of ${recovered.journals} process(es) that ` +
                  `had stopped: ${recovered.packs} packs restored, ${recovered.refs.length} refs moved, ` +
                  `${recovered.torn} torn packs removed\n`,
              );
            }
            for (const p of r.repaired) ctx.io.out(`repaired: ${p.message}\n`);
            for (const p of r.problems) ctx.io.out(`problem: ${p.message}\n`);
            for (const j of r.journals) {
              ctx.io.out(`journal ${j.name}: ${j.live ? 'open in this process' : 'kept'}, ${j.records} records\n`);
            }
            ctx.io.out(
              `${r.refs} refs, ${r.objects} objects reached: ${r.ok ? 'ok' : `${r.problems.length} problems`}\n`,
            );
          }
          if (!r.ok) {
            throw new StoreError('CORRUPT', `the repository has ${r.problems.length} problems (listed above)`, {
              problems: r.problems,
            });
          }
        } finally {
          await store.close();
        }
      }),
    );

  program
    .command('compact')
    .description("rewrite the branch's old history to its retention policy (.store/retention.json), then prune")
    .option('--dry-run', 'only show what would be kept and the space it would free')
    .option('--policy <json>', "tiers to use instead of the branch's .store/retention.json (JSON, or @file)")
    .addHelpText(
      'after',
      '\nExamples:\n  $ store compact --dry-run\n  $ store compact --branch main\n' +
        '  $ store compact --policy \'[{"within":"1h","keep":"all"},{"within":"30d","every":"1d"}]\'',
    )
    .action(
      act(async (ctx: Context, opts: { dryRun?: boolean; policy?: string }) => {
        const policy = opts.policy?.startsWith('@') ? readPolicy(opts.policy.slice(1)) : opts.policy;
        const r = await (await ctx.store()).compact({
          branch: ctx.options.branch,
          dryRun: opts.dryRun,
          policy,
          onProgress: (step) => {
            if (ctx.io.tty) ctx.io.err(`\r\u001b[Kcompact: ${step}`);
          },
        });
        if (ctx.io.tty) ctx.io.err('\r\u001b[K');
        if (ctx.options.json) return void ctx.io.out(`${JSON.stringify(r)}\n`);
        const would = r.dryRun ? 'would keep' : 'kept';
        ctx.io.out(
          `${r.branch}: ${would} ${r.kept} of ${r.commits} commits (${r.recent} recent as they are, ` +
            `${r.snapshots.length} snapshots), ${r.dryRun ? 'would drop' : 'dropped'} ${r.dropped}\n`,
        );
        if (r.dryRun) {
          for (const snap of r.snapshots) ctx.io.out(`  snapshot ${snap.time}  ${snap.commit.slice(0, 12)}\n`);
          ctx.io.out(`would free about ${mb(r.pruned.bytes)} (${r.pruned.objects} objects); nothing was changed\n`);
        } else {
          ctx.io.out(
            `pruned ${r.pruned.objects} objects; packs ${mb(r.bytesBefore)} → ${mb(r.bytesAfter)} (${r.ms} ms)\n`,
          );
        }
        const d = r.pruned.deferred;
        if (d.objects > 0) {
          // Without this line a first compaction right after the writes reads "pruned 0 objects" with no reason.
          ctx.io.out(
            `${r.dryRun ? 'would keep' : 'kept'} ${d.objects} unreachable objects (${mb(d.bytes)}) for the prune ` +
              `grace period: their ${d.packs === 1 ? 'pack is' : `${d.packs} packs are`} younger than ` +
              `${d.graceMs / 1000} s (another process may be about to use them); compact again after ${d.until} to ` +
              'free them\n',
          );
        }
      }),
    );

  program
    .command('serve')
    .description('run the HTTP API on a store (created if missing); SIGTERM/SIGINT stop it cleanly')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '7070')
    .option('--memory', 'serve a throw-away in-memory store instead of --repo')
    .option('--insecure', 'allow a --host other than loopback while the store has no token (a warning is printed)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--rate-limit <n>', 'requests per second per token (or address without auth); 0: no limit', '1000')
    .option('--max-watches <n>', 'open watches per token (or address)', '1000')
    .option('--max-transactions <n>', 'open transactions per token (or address)', '1000')
    .option('--request-timeout <seconds>', 'a request must arrive whole within this (slow clients are cut)', '60')
    .option('--body-limit <bytes>', 'largest request body accepted', String(1 << 20))
    .option('--git-body-limit <bytes>', 'largest git request (a push) accepted under /git', String(1 << 30))
    .option(
      '--consistency <mode>',
      'reads: linearizable (see every acknowledged write of any process) or cached (may lag other processes by ~10 ms)',
      'linearizable',
    )
    .option(
      '--peer <url>',
      'replicate with another store server (repeatable); adds to .store/replication.json. Peers with auth on get ' +
        'the token in $STORE_PEER_TOKEN',
      (url: string, all: string[]) => [...all, url],
      [] as string[],
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ store serve\n  $ store serve --repo /var/lib/gitstore/config.git --host 0.0.0.0 --port 8080\n' +
        '  $ store serve --port 7071 --peer http://10.0.0.2:7070 --peer http://10.0.0.3:7070\n' +
        '  $ git clone http://127.0.0.1:7070/git config   # plain git: clone, fetch and push under /git',
    )
    .action(
      act(
        async (
          ctx: Context,
          opts: {
            host: string;
            port: string;
            memory?: boolean;
            insecure?: boolean;
            tlsCert?: string;
            tlsKey?: string;
            rateLimit: string;
            maxWatches: string;
            maxTransactions: string;
            requestTimeout: string;
            bodyLimit: string;
            gitBodyLimit: string;
            consistency: string;
            peer: string[];
          },
        ) => {
          ctx.localOnly('serve serves a repository on this machine');
          const port = Number(opts.port);
          const bodyLimit = Number(opts.bodyLimit);
          if (!Number.isInteger(port) || port < 0 || port > 65535)
            throw new UsageError('--port takes a number from 0 to 65535');
          if (!Number.isInteger(bodyLimit) || bodyLimit < 1)
            throw new UsageError('--body-limit takes a number of bytes');
          const gitBodyLimit = Number(opts.gitBodyLimit);
          if (!Number.isInteger(gitBodyLimit) || gitBodyLimit < 1)
            throw new UsageError('--git-body-limit takes a number of bytes');
          const count = (text: string, option: string, min: number) => {
            const n = Number(text);
            if (!Number.isInteger(n) || n < min) throw new UsageError(`${option} takes a whole number from ${min}`);
            return n;
          };
          const limits = {
            requestsPerSecond: count(opts.rateLimit, '--rate-limit', 0),
            watches: count(opts.maxWatches, '--max-watches', 1),
          };
          const requestTimeoutMs = count(opts.requestTimeout, '--request-timeout', 1) * 1000;
          if (opts.consistency !== 'linearizable' && opts.consistency !== 'cached')
            throw new UsageError('--consistency is linearizable or cached');
          // The server (and fastify) is loaded only for this command: other commands start faster without it.
          const { serve } = await import('../../server/main.js');
          const { url } = await serve({
            repo: ctx.repo,
            host: opts.host,
            port,
            memory: opts.memory,
            insecure: opts.insecure,
            tlsCert: opts.tlsCert,
            tlsKey: opts.tlsKey,
            limits,
            maxTransactions: count(opts.maxTransactions, '--max-transactions', 1),
            requestTimeoutMs,
            bodyLimit,
            gitBodyLimit,
            consistency: opts.consistency,
            peers: opts.peer,
            // From the environment, never an option: a command line is visible to every user in `ps`.
            peerToken: ctx.io.env.STORE_PEER_TOKEN || undefined,
            log: (line) => ctx.io.err(`${line}\n`),
          });
          ctx.io.err(`gitstore serving ${opts.memory ? 'an in-memory store' : ctx.repo} at ${url}\n`);
          ctx.io.out(`${url}\n`);
        },
      ),
    );
}
