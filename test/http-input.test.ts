/**
 * Input that used to reach git unchecked or answer 500 (issue 13, defect 14), through a real `store serve`: each is
 * refused with a 4xx that says why, nothing is written, and the repository stays `git fsck --strict` clean.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectFsckClean } from './git-packs.js';
import { gitSubjects } from './helpers.js';
import { type Served, startServe, stopServe } from './serve.js';

let repo = '';
let server: Served;

beforeAll(async () => {
  // Not tempDir(): that one is removed after each test, and this server lives for the file.
  repo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-input-')), 'repo.git');
  server = await startServe(repo);
  const r = await fetch(`${server.url}/v1/branches/main/keys/a`, { method: 'PUT', body: '1' });
  expect(r.status).toBe(201);
}, 120_000);

afterAll(async () => {
  expect(await stopServe(server), server.stderr()).toEqual({ code: 0, signal: null });
  fs.rmSync(path.dirname(repo), { recursive: true, force: true });
});

const error = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;

describe('store serve refuses', () => {
  it('control characters in commit messages, from the header or a body', async () => {
    const before = gitSubjects(repo);
    const put = await fetch(`${server.url}/v1/branches/main/keys/a`, {
      method: 'PUT',
      body: '2',
      headers: { 'x-store-message': 'a%00b' },
    });
    expect(put.status).toBe(400);
    expect(await error(put)).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('U+0000') });
    const batch = await fetch(`${server.url}/v1/branches/main/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'x\u0007', ops: [{ op: 'set', key: 'a', value: '3' }] }),
    });
    expect(batch.status).toBe(400);
    expect(gitSubjects(repo)).toEqual(before);
    // Newlines and tabs are what multi-line messages are made of.
    const ok = await fetch(`${server.url}/v1/branches/main/keys/a`, {
      method: 'PUT',
      body: '4',
      headers: { 'x-store-message': encodeURIComponent('why:\n\tbecause') },
    });
    expect(ok.status).toBe(200);
    expectFsckClean(repo);
  });

  it('branch names git cannot store, with 400 or 409 and the reason', async () => {
    const create = (name: string) =>
      fetch(`${server.url}/v1/branches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
    for (const bytes of [251, 255]) {
      const r = await create('n'.repeat(bytes));
      expect(r.status).toBe(400);
      expect((await error(r)).message).toContain('.lock');
    }
    const dirx = await create('dir/x');
    expect(dirx.status, await dirx.clone().text()).toBe(201);
    for (const [name, existing] of [
      ['main/x', 'main'],
      ['dir', 'dir/x'],
    ]) {
      const r = await create(name!);
      expect(r.status).toBe(409);
      expect(await error(r)).toMatchObject({ code: 'BRANCH_EXISTS', message: expect.stringContaining(existing!) });
    }
    expect(server.stderr()).not.toMatch(/INTERNAL|stack|Error:/);
    expectFsckClean(repo);
  });
});
