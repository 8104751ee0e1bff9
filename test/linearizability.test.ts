/**
 * Reads across processes are linearizable (issue 13, defect 13): two `store serve` processes on one repository,
 * clients reading and compare-and-setting one key through either, every operation timed in this process, and the
 * recorded history checked for a linearization (test/linearizability.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { random, tempDir } from './helpers.js';
import { checkLinearizable, type Op } from './linearizability.js';
import { startServe, stopServe } from './serve.js';

const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** A `store serve` process on `repo`, stopped (and checked to exit cleanly) after the test; its URL. */
async function serve(repo: string): Promise<string> {
  const server = await startServe(repo);
  stops.push(async () => {
    expect(await stopServe(server), server.stderr()).toEqual({ code: 0, signal: null });
  });
  return server.url;
}

describe('the checker', () => {
  it('accepts overlapping operations in some order, and refuses a read of a value older than a finished write', () => {
    const ok: Op[] = [
      { kind: 'cas', start: 0, end: 10, expected: 'a', next: 'b', ok: true },
      { kind: 'read', start: 1, end: 2, value: 'a' }, // overlaps the write: may come before it
      { kind: 'read', start: 3, end: 12, value: 'b' },
      { kind: 'cas', start: 11, end: 13, expected: 'a', next: 'c', ok: false },
    ];
    expect(checkLinearizable(ok, 'a').ok).toBe(true);
    const stale: Op[] = [
      { kind: 'cas', start: 0, end: 10, expected: 'a', next: 'b', ok: true },
      { kind: 'read', start: 11, end: 12, value: 'a' }, // began after the write was acknowledged
    ];
    expect(checkLinearizable(stale, 'a').ok).toBe(false);
    const twoWinners: Op[] = [
      { kind: 'cas', start: 0, end: 5, expected: 'a', next: 'b', ok: true },
      { kind: 'cas', start: 1, end: 6, expected: 'a', next: 'c', ok: true },
    ];
    expect(checkLinearizable(twoWinners, 'a').ok).toBe(false);
  });
});

describe('two store serve processes on one repository', () => {
  it('give a linearizable history of reads and If-Match writes on one key', async () => {
    const repo = path.join(tempDir(), 'repo.git');
    const urls = [await serve(repo), await serve(repo)];
    const url = (server: number) => `${urls[server]}/v1/branches/main/keys/reg`;
    const first = await fetch(url(0), { method: 'PUT', body: 'v0' });
    expect(first.status).toBe(201);
    const now = () => performance.now();
    const history: Op[] = [];
    let crossReads = 0;

    const client = async (c: number) => {
      const pick = random(1000 + c);
      let seen = { value: 'v0', etag: first.headers.get('etag')! };
      let readFrom: number | null = null;
      for (let i = 0; i < 40; i++) {
        // After a write won, the next read goes to the other server: where a stale cache would show.
        const server: number = readFrom ?? pick(2);
        if (readFrom !== null || pick(2) === 0) {
          readFrom = null;
          const start = now();
          const r = await fetch(url(server));
          const value = r.status === 200 ? await r.text() : null;
          history.push({ kind: 'read', start, end: now(), value });
          expect(r.status).toBe(200);
          seen = { value: value!, etag: r.headers.get('etag')! };
        } else {
          const next = `c${c}-${i}`;
          const start = now();
          const r = await fetch(url(server), { method: 'PUT', body: next, headers: { 'if-match': seen.etag } });
          await r.arrayBuffer();
          history.push({ kind: 'cas', start, end: now(), expected: seen.value, next, ok: r.ok });
          expect([200, 412]).toContain(r.status);
          if (r.ok) {
            readFrom = 1 - server;
            crossReads++;
          }
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));
    expect(crossReads).toBeGreaterThan(5);
    const verdict = checkLinearizable(history, 'v0');
    expect(verdict.ok, `no linearization of ${history.length} operations`).toBe(true);
    fs.rmSync(path.dirname(repo), { recursive: true, force: true });
  });
});
