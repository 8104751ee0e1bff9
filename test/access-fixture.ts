import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { openStore, type Store } from '../src/index.js';
import { cli } from './cli-process.js';

/**
 * A repository for the access tests (issue 15): main holds `.store/access.json` with `access` and the `keys` given,
 * `more` may add branches and commits, then each role gets a token made by the real `store token create` (named
 * after the role, with `identity(role)` as its commits' author when given). Not tempDir(): that is removed after
 * each test, and these repositories serve a whole file; the caller removes `path.dirname(repo)`.
 */
export async function accessRepo(options: {
  name: string;
  access: unknown;
  keys: Record<string, string>;
  roles: readonly string[];
  more?: (store: Store) => Promise<void>;
  identity?: (role: string) => string;
}): Promise<{ repo: string; tokens: Record<string, string> }> {
  const repo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), `gitstore-${options.name}-`)), 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch([
    { op: 'set', key: '.store/access.json', value: JSON.stringify(options.access) },
    ...Object.entries(options.keys).map(([key, value]) => ({ op: 'set' as const, key, value })),
  ]);
  await options.more?.(store);
  await store.close();
  const tokens: Record<string, string> = {};
  for (const role of options.roles) {
    const identity = options.identity ? ['--identity', options.identity(role)] : [];
    const made = await cli(['--repo', repo, 'token', 'create', role, '--role', role, ...identity]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toMatch(/cannot be shown again/);
    tokens[role] = made.stdout.trim();
  }
  return { repo, tokens };
}
