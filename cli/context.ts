import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { Command } from 'commander';
import { type Identity, openStore, parseIdentity, type StoreApi, StoreClient } from '../src/index.js';
import type { Io } from './io.js';

/** The global options every command takes. */
export interface GlobalOptions {
  repo?: string;
  branch?: string;
  json?: boolean;
  author?: string;
  message?: string;
  url?: string;
}

/** What a command handler works with. */
export interface Context {
  io: Io;
  options: GlobalOptions;
  /** The store: the repository, or with --url / $STORE_URL the server in front of one. */
  store(): Promise<StoreApi>;
  author(): Identity | undefined;
  repo: string;
}

function gitConfig(key: string): string | undefined {
  const r = spawnSync('git', ['config', '--get', key], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

export function makeContext(io: Io, command: Command): Context {
  const options = command.optsWithGlobals() as GlobalOptions;
  const repo = options.repo ?? io.env.STORE_REPO ?? 'store.git';
  const url = options.url ?? io.env.STORE_URL;
  let opened: Promise<StoreApi> | undefined;
  return {
    io,
    options,
    repo,
    store: () => {
      opened ??= url ? Promise.resolve(new StoreClient(url)) : openStore({ fs, dir: repo });
      return opened;
    },
    // Author: --author, then git's own environment variables, then git config, then the store's default.
    author: () => {
      if (options.author) return parseIdentity(options.author, '--author');
      const name = io.env.GIT_AUTHOR_NAME ?? gitConfig('user.name');
      const email = io.env.GIT_AUTHOR_EMAIL ?? gitConfig('user.email');
      return name ? { name, email: email ?? '' } : undefined;
    },
  };
}
