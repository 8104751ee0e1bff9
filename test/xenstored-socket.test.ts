import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './cli-process.js';
import { cliEnv, sleep, tempDir } from './helpers.js';

const BIN = path.join(import.meta.dirname, '../bin/store.js');
const NO_CHMOD = path.join(import.meta.dirname, 'fixtures/no-chmod.cjs');

/** `store xenstored`'s socket is dom0's (issue 15): 0600 from its first moment, and it never deletes a stranger's file. */
describe('store xenstored socket', () => {
  it('is 0600 from the moment it exists, even under umask 000', async () => {
    const dir = tempDir('gitstore-xs-sock-');
    const socket = path.join(dir, 'xs.sock');
    // chmod does nothing in the daemon (fixtures/no-chmod.cjs): the socket's mode is the one it was created with, so
    // a daemon that widened it for a moment (created under the umask, then chmod 0600) shows 0777 here.
    const child = spawn(
      'sh',
      [
        '-c',
        `umask 000; exec "${process.execPath}" --require "${NO_CHMOD}" "${BIN}" --repo "${dir}/r.git" xenstored --socket "${socket}"`,
      ],
      { env: cliEnv(), stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      for (let up = false; !up; ) {
        up = await new Promise<boolean>((resolve) => {
          const probe = net.connect(socket);
          probe.once('connect', () => {
            probe.destroy();
            resolve(true);
          });
          probe.once('error', () => resolve(false));
        });
        if (!up) await sleep(50);
      }
      expect((fs.statSync(socket).mode & 0o777).toString(8)).toBe('600');
      // Another file of the process (the repository) still gets the umask it was given: only the socket is narrowed.
      expect(fs.statSync(path.join(dir, 'r.git/HEAD')).mode & 0o777).toBe(0o666);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('refuses a --socket path that is an ordinary file, and leaves it as it was', async () => {
    const dir = tempDir('gitstore-xs-sock-');
    const file = path.join(dir, 'precious.txt');
    fs.writeFileSync(file, 'do not delete me');
    const r = await cli(['--repo', path.join(dir, 'r.git'), 'xenstored', '--socket', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is a file that is not a socket: it is left alone/);
    expect(fs.readFileSync(file, 'utf8')).toBe('do not delete me');
  });
});
