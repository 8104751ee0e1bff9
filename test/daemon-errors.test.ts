/**
 * Issue 13, defect 1 (second half): an error the store did not raise on purpose answers INTERNAL (HTTP 500, EIO)
 * without details, and the daemon's log — its stderr — has the error with its stack. The fault is a real one: the
 * pack directory replaced by a file under a running daemon, so writing a pack fails with ENOTDIR.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { git } from './helpers.js';
import { put, type Served, startServe, stopServe } from './serve.js';
import { type Daemon, RawClient, startDaemon, stopDaemon } from './xen.js';

const DIST = new URL('../dist/cli/main.js', import.meta.url);

let dir = '';
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** Replaces `repo`'s pack directory with a file: the next pack written fails with ENOTDIR. */
function breakPackDir(repo: string): () => void {
  const packDir = path.join(repo, 'objects/pack');
  fs.renameSync(packDir, `${packDir}.aside`);
  fs.writeFileSync(packDir, 'not a directory');
  return () => {
    fs.rmSync(packDir);
    fs.renameSync(`${packDir}.aside`, packDir);
  };
}

/** The log shows the error and where it came from: its message and stack frames, not just a line. */
function expectStack(log: string) {
  expect(log).toMatch(/ENOTDIR/);
  expect(log).toMatch(/at [^\n]*(writeNew|writePack|pack\.js|fs\.js)/);
}

describe('INTERNAL errors are logged with their stack', () => {
  beforeAll(() => {
    if (!fs.existsSync(DIST)) throw new Error('dist/ is missing: run `npm run build` first');
  });

  it('store serve: answers 500 INTERNAL with no detail, and stderr has the error and its stack', async () => {
    dir = fs.mkdtempSync('/tmp/gitstore-errors-');
    const repo = path.join(dir, 'repo.git');
    const server: Served = await startServe(repo);
    try {
      expect((await put(server.url, 'a', '1')).status).toBe(201);
      const restore = breakPackDir(repo);
      const failed = await put(server.url, 'b', '2');
      expect(failed.status).toBe(500);
      const body = JSON.parse(failed.body) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('INTERNAL');
      // The answer names neither the cause nor a path of the server's.
      expect(failed.body).not.toContain('ENOTDIR');
      expect(failed.body).not.toContain(dir);
      expectStack(server.stderr());
      restore();
      expect((await put(server.url, 'b', '2')).status).toBe(201);
    } finally {
      expect(await stopServe(server)).toEqual({ code: 0, signal: null });
    }
    git(['--git-dir', repo, 'fsck', '--strict']);
  });

  it('store xenstored: answers EIO, and stderr has the error and its stack', async () => {
    // Unix socket paths must stay under 108 bytes: a short directory straight under /tmp.
    dir = fs.mkdtempSync('/tmp/xs-');
    const repo = path.join(dir, 'repo.git');
    const daemon: Daemon = await startDaemon(repo, path.join(dir, 's'));
    const client = await RawClient.connect(path.join(dir, 's'));
    try {
      expect(await client.write1('/a', '1')).toBe('OK');
      const restore = breakPackDir(repo);
      expect(await client.write1('/b', '2')).toBe('ERROR EIO');
      expectStack(daemon.stderr());
      restore();
      expect(await client.write1('/b', '2')).toBe('OK');
    } finally {
      client.close();
      expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    }
    git(['--git-dir', repo, 'fsck', '--strict']);
  });
});
