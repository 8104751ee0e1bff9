import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { Command } from 'commander';
import { type Identity, openStore, parseGitDate, parseIdentity, type StoreApi, StoreClient } from '../src/index.js';
import { UsageError } from './exit-codes.js';
import type { Io } from './io.js';

/** The global options every command takes. */
export interface GlobalOptions {
  repo?: string;
  branch?: string;
  json?: boolean;
  author?: string;
  message?: string;
  url?: string;
  token?: string;
}

/** What a command handler works with. */
export interface Context {
  io: Io;
  options: GlobalOptions;
  /** The store: the repository, or with --url / $STORE_URL the server in front of one. */
  store(): Promise<StoreApi>;
  /** The commit author, as git chooses it: --author, else GIT_AUTHOR_NAME/EMAIL, else git config; GIT_AUTHOR_DATE. */
  author(): Identity | undefined;
  /** The committer, as git chooses it: GIT_COMMITTER_NAME/EMAIL, else git config; GIT_COMMITTER_DATE. */
  committer(): Identity | undefined;
  /** The server's URL when commands go to one (--url, or $STORE_URL without --repo). */
  url: string | undefined;
  repo: string;
  /** Refuses, with exit 2, a command that works on the repository itself when the target is a server. */
  localOnly(why: string): void;
}

export function makeContext(io: Io, command: Command): Context {
  const options = command.optsWithGlobals() as GlobalOptions;
  if (options.url !== undefined && options.repo !== undefined) {
    throw new UsageError('give --repo (a repository here) or --url (a server), not both');
  }
  const repo = options.repo ?? io.env.STORE_REPO ?? 'store.git';
  // An explicit --repo means this repository, whatever $STORE_URL says.
  const url = options.url ?? (options.repo === undefined ? io.env.STORE_URL || undefined : undefined);
  const config = new Map<string, string | undefined>();
  const gitConfig = (key: string): string | undefined => {
    if (!config.has(key)) {
      const r = spawnSync('git', ['config', '--get', key], { encoding: 'utf8' });
      config.set(key, r.status === 0 ? r.stdout.trim() || undefined : undefined);
    }
    return config.get(key);
  };
  const dateOf = (variable: string) => {
    const text = io.env[variable];
    return text ? parseGitDate(text, variable) : {};
  };
  let opened: Promise<StoreApi> | undefined;
  const author = (): Identity | undefined => {
    const date = dateOf('GIT_AUTHOR_DATE');
    if (options.author) return { ...parseIdentity(options.author, '--author'), ...date };
    const name = io.env.GIT_AUTHOR_NAME || gitConfig('user.name');
    const email = io.env.GIT_AUTHOR_EMAIL ?? gitConfig('user.email');
    if (name) return { name, email: email ?? '', ...date };
    if (io.env.GIT_AUTHOR_EMAIL || io.env.GIT_AUTHOR_DATE) {
      throw new UsageError('GIT_AUTHOR_EMAIL or GIT_AUTHOR_DATE is set but no author name: set GIT_AUTHOR_NAME too');
    }
    return undefined;
  };
  return {
    io,
    options,
    repo,
    url,
    store: () => {
      const token = options.token ?? (io.env.STORE_TOKEN || undefined);
      // One write and exit: the journal's segments cost more than they save there (OpenOptions.durability).
      opened ??= url
        ? Promise.resolve(new StoreClient(url, { token }))
        : openStore({ fs, dir: repo, durability: 'sync' });
      return opened;
    },
    author,
    // As in git, the committer is its own person: GIT_COMMITTER_*, else git config — not the author's variables
    // and not --author. With none of them, the store makes the author the committer, dated now.
    committer: () => {
      const date = dateOf('GIT_COMMITTER_DATE');
      const name = io.env.GIT_COMMITTER_NAME || gitConfig('user.name');
      const email = io.env.GIT_COMMITTER_EMAIL ?? gitConfig('user.email');
      if (name) return { name, email: email ?? '', ...date };
      if (!io.env.GIT_COMMITTER_EMAIL && !io.env.GIT_COMMITTER_DATE) return undefined;
      // Only an email or a date for the committer: the author's name with them.
      const base = author();
      if (!base) {
        throw new UsageError(
          'GIT_COMMITTER_EMAIL or GIT_COMMITTER_DATE is set but no name: set GIT_COMMITTER_NAME or git config user.name',
        );
      }
      return { name: base.name, email: io.env.GIT_COMMITTER_EMAIL || base.email, ...date };
    },
    localOnly: (why) => {
      if (!url) return;
      const source = options.url !== undefined ? '--url' : '$STORE_URL';
      throw new UsageError(`${why}, so it does not go through ${source}: run it where the repository is (--repo DIR)`);
    },
  };
}
