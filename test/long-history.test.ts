/**
 * `rev~N` on a long history (issue 13, defect 14): `?at=main~99999999` walked the whole history on every request,
 * parsing and caching each commit, to answer a bare "not found". Now the answer says how long the history is, the
 * walk reads only first parents, callers asking at once share one walk, and the length is remembered. Asserted on
 * the work done (objects read), never on time. The 3,000-commit branch is written by `git fast-import`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../server/app.js';
import { openStore, type Store } from '../src/index.js';
import { git, gitEnv } from './helpers.js';

const COMMITS = 3000;

/** A bare repository whose `main` has `n` commits in one first-parent chain, each setting `k` to `v<i>`. */
function longRepository(dir: string, n: number): void {
  git(['init', '--quiet', '--bare', '--initial-branch', 'main', dir]);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const value = `v${i}`;
    lines.push(`blob\nmark :${2 * i + 1}\ndata ${value.length}\n${value}`);
    lines.push(
      `commit refs/heads/main\nmark :${2 * i + 2}\ncommitter T <t@t> ${1_700_000_000 + i} +0000\ndata 5\nset k`,
    );
    if (i > 0) lines.push(`from :${2 * i}`);
    lines.push(`M 100644 :${2 * i + 1} k\n`);
  }
  execFileSync('git', ['--git-dir', dir, 'fast-import', '--quiet'], {
    input: `${lines.join('\n')}\n`,
    env: gitEnv,
    maxBuffer: 1 << 26,
  });
}

describe(`rev~N on a ${COMMITS}-commit branch`, () => {
  let dir: string;
  let chain: string[];

  beforeAll(() => {
    // Made once for the file (tempDir() is emptied after each test).
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-long-')), 'store.git');
    longRepository(dir, COMMITS);
    chain = git(['--git-dir', dir, 'rev-list', '--first-parent', 'main']).toString().trim().split('\n');
    expect(chain).toHaveLength(COMMITS);
  });
  afterAll(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

  const open = () => openStore({ fs, dir });

  it('resolves every depth git does, and past the root says how long the history is', async () => {
    const s = await open();
    for (const n of [0, 1, 255, 256, 257, 1000, 2998, COMMITS - 1]) expect(await s.resolve(`main~${n}`)).toBe(chain[n]);
    const tooFar = `revision main~${COMMITS} not found — history has only ${COMMITS} commits from main, so main~${COMMITS - 1} is the first`;
    for (const n of [COMMITS, COMMITS + 1, 99_999_999]) {
      await expect(s.resolve(`main~${n}`)).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: tooFar.replace(`main~${COMMITS} not`, `main~${n} not`),
        data: { kind: 'revision', name: `main~${n}`, commits: COMMITS },
      });
    }
    // Counted from where the step starts.
    await expect(s.resolve('main~10~99999999')).rejects.toMatchObject({
      message: `revision main~10~99999999 not found — history has only ${COMMITS - 10} commits from main~10, so main~10~${COMMITS - 11} is the first`,
    });
    await expect(s.resolve(`${chain.at(-2)}~5`)).rejects.toMatchObject({
      message: expect.stringContaining('history has only 2 commits from'),
    });
    // A step too large to be a number of commits is refused, not walked.
    await expect(s.resolve(`main~${'9'.repeat(30)}`)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await s.close();
  });

  it('twenty callers at once share one walk; the length is remembered; new commits walk only themselves', async () => {
    const s = await open();
    const reads = vi.spyOn(s.db, 'read');
    const commits = vi.spyOn(s.db, 'readCommit');
    const answers = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => s.resolve(`main~${99_999_999 - i}`)));
    for (const a of answers) {
      expect(a.status).toBe('rejected');
      expect((a as PromiseRejectedResult).reason.message).toContain(`history has only ${COMMITS} commits from main`);
    }
    // One walk of the chain, not twenty; and no commit was parsed into the commit cache for it.
    expect(reads.mock.calls.length).toBeGreaterThanOrEqual(COMMITS);
    expect(reads.mock.calls.length).toBeLessThan(COMMITS + 100);
    expect(commits.mock.calls.length).toBeLessThan(50);

    // Asked again: answered from what was remembered.
    reads.mockClear();
    await expect(s.resolve('main~99999999')).rejects.toMatchObject({ data: { commits: COMMITS } });
    expect(reads.mock.calls.length).toBeLessThan(10);
    // A deep valid step from the same start walks fewer than 256 steps from what the shared walk remembered.
    reads.mockClear();
    expect(await s.resolve('main~2900')).toBe(chain[2900]);
    expect(reads.mock.calls.length).toBeLessThan(260);

    // Two more commits (on a branch: main stays as the other tests expect it): the next walk stops where the
    // remembered chain begins.
    await s.createBranch('side');
    await s.set('k', 'later', { branch: 'side' });
    await s.set('k', 'latest', { branch: 'side' });
    reads.mockClear();
    await expect(s.resolve('side~99999999')).rejects.toMatchObject({ data: { commits: COMMITS + 2 } });
    expect(reads.mock.calls.length).toBeLessThan(20);
    expect(await s.resolve(`side~${COMMITS + 1}`)).toBe(chain.at(-1));
    reads.mockRestore();
    commits.mockRestore();
    await s.close();
  });

  describe('over HTTP', () => {
    let app: FastifyInstance;
    let store: Store;
    let base: string;
    beforeAll(async () => {
      store = await open();
      app = await buildApp({ store });
      base = await app.listen({ port: 0, host: '127.0.0.1' });
    });
    afterAll(async () => {
      await app.close();
      await store.close();
    });

    it('?at=main~99999999 is a 404 saying how long the history is, for twenty requests at once', async () => {
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => fetch(`${base}/v1/branches/main/keys/k?at=main~99999999`)),
      );
      for (const res of responses) {
        expect(res.status).toBe(404);
        const { error } = (await res.json()) as { error: { code: string; message: string } };
        expect(error.code).toBe('NOT_FOUND');
        expect(error.message).toContain(`history has only ${COMMITS} commits from main`);
      }
      const ok = await fetch(`${base}/v1/branches/main/keys/k?at=main~${COMMITS - 1}`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('v0');
    });
  });
});
