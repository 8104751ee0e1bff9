import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/index.js';
import { cli } from './cli-process.js';
import { git, random } from './helpers.js';
import { type Served, startServe, stopServe } from './serve.js';

/**
 * 10,000 generated bad requests against a real `store serve` with auth on (issue 15): bad keys, branch names,
 * revisions, bodies, headers and tokens, most sent with an admin token so they reach the deepest checks. Each
 * request is bad by construction. Expected: no 5xx, no hang, nothing written (every ref unchanged), and the server
 * still serving. The generator is seeded: a failure names its seed and request, and repeats. To chase one:
 * FUZZ_N, FUZZ_PARALLEL=1, FUZZ_TIMEOUT (ms per request) and FUZZ_TRACE=1 (print each request).
 */

const N = Number(process.env.FUZZ_N ?? 10_000);
const SEED = 1515;
const PARALLEL = Number(process.env.FUZZ_PARALLEL ?? 16);

let server: Served;
let repo: string;
let admin = '';
let reader = '';

beforeAll(async () => {
  repo = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-fuzz-')), 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch([
    {
      op: 'set',
      key: '.store/access.json',
      value: JSON.stringify({ roles: { r: { rules: [{ prefix: 'a/', access: 'read' }] } } }),
    },
    { op: 'set', key: 'a/b', value: '1' },
    { op: 'set', key: 'a/c/d', value: '2' },
  ]);
  await store.createBranch('dev');
  await store.close();
  admin = (await cli(['--repo', repo, 'token', 'create', 'admin', '--role', 'admin'])).stdout.trim();
  reader = (await cli(['--repo', repo, 'token', 'create', 'reader', '--role', 'r'])).stdout.trim();
  server = await startServe(repo, ['--port', '0', '--rate-limit', '0', '--body-limit', '65536']);
});

afterAll(async () => {
  if (server) await stopServe(server);
  fs.rmSync(path.dirname(repo), { recursive: true, force: true });
});

/** Every ref of the repository with its value, as git sees them. */
const refs = () => git(['--git-dir', repo, 'for-each-ref', '--format=%(refname) %(objectname)']).toString();

interface Fuzzed {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

function generator(seed: number) {
  const rand = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  // A lone surrogate has no UTF-8 form: sent as the bytes a careless client would send (invalid UTF-8).
  const enc = (s: string) =>
    encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '')) + (/[\ud800-\udfff]/.test(s) ? '%ED%A0%80' : '');
  const hostile = ['\u0000', '\u0001', '\u007f', '\\', '\ud800', '\u202e', '%', '?', '#', '"', "'", '<', '>', ' '];
  /** Keys the store refuses, every one. */
  const badKey = () =>
    pick([
      () => '',
      () => 'a//b',
      () => 'a/b/',
      () => '.git/config',
      () => 'a/.git',
      () => '..',
      () => 'a/../b',
      () => '.',
      () => `a/${pick(hostile.slice(0, 5))}b`,
      () => 'x'.repeat(256),
      () => `${'y/'.repeat(1600)}z`,
      () => `a/b${pick(['\u0000', '\u001f', '\u009f'])}`,
    ])();
  const badBranch = () =>
    pick([
      '-x',
      'a..b',
      'a b',
      'a~1',
      'a^',
      'a:b',
      'a?',
      'a*',
      'a[',
      'a\\b',
      '@',
      'a.lock',
      '.a',
      'a/',
      'a//b',
      'x'.repeat(300),
      'a@{b',
      '\u0000',
    ]);
  const badRev = () =>
    pick([
      'main~99999999',
      'main^{tree}',
      'nosuch',
      'main@{yesterday',
      '0'.repeat(41),
      'HEAD..main',
      '',
      '\u0000',
      'g'.repeat(40),
      '2026-13-45T99:99:99Z',
    ]);
  const badJson = () =>
    pick([
      '{',
      '[]',
      'null',
      '"x"',
      '{"ops":[]}',
      '{"ops":"x"}',
      '{"ops":[{"op":"set"}]}',
      '{"ops":[{"op":"set","key":"a/x","value":"v","extra":1}]}',
      '{"ops":[{"op":"set","key":"a/x","value":"%%%","encoding":"base64"}]}',
      '{"ops":[{"op":"frob","key":"a/x"}]}',
      `{"ops":[${'{"op":"delete","key":"a//x"},'.repeat(50)}{"op":"set","key":"","value":"v"}]}`,
      '{"from":""}',
      '{"from":"nosuch"}',
      '{"name":"-bad"}',
      '{"name":"main"}',
      '{"isolation":"chaos"}',
      '{"commit":"zz"}',
      '{"good":"nosuch","key":"a/b","equals":"1"}',
      '{"policy":{"tiers":"x"}}',
      '{"url":"ftp://x"}',
      `{"message":"${'m'.repeat(70_000)}"}`,
      '{"message":"a\\u0000b","ops":[{"op":"set","key":"a/x","value":"v"}]}',
    ]);
  const token = () =>
    pick([
      () => ({ authorization: `Bearer ${admin}` }),
      () => ({ authorization: `Bearer ${admin}` }),
      () => ({ authorization: `Bearer ${admin}` }),
      () => ({ authorization: `Bearer ${reader}` }),
      () => ({}),
      () => ({ authorization: 'Bearer' }),
      () => ({ authorization: `Bearer ${admin.slice(0, -1)}` }),
      () => ({ authorization: `Bearer ${'x'.repeat(5000)}` }),
      () => ({ authorization: 'Basic YTpi' }),
      () => ({ authorization: `bearer  ${admin}  trailing` }),
    ])();
  return (): Fuzzed => {
    const headers: Record<string, string> = { ...token() };
    const kind = rand(12);
    switch (kind) {
      case 0:
        return { method: 'PUT', url: `/v1/branches/main/keys/${enc(badKey())}`, headers, body: 'v' };
      case 1:
        return { method: pick(['GET', 'DELETE']), url: `/v1/branches/main/keys/${enc(badKey())}`, headers };
      case 2:
        return { method: 'PUT', url: `/v1/branches/${enc(badBranch())}/keys/a/x`, headers, body: 'v' };
      case 3:
        return { method: 'GET', url: `/v1/branches/main/keys/a/b?at=${enc(badRev())}`, headers };
      case 4:
        return {
          method: 'POST',
          url: pick([
            '/v1/branches/main/batch',
            '/v1/branches/main/merge',
            '/v1/branches',
            '/v1/branches/main/revert',
            '/v1/branches/main/bisect',
            '/v1/branches/main/compact',
            '/v1/remotes/origin/push',
          ]),
          headers: { ...headers, 'content-type': 'application/json' },
          body: badJson(),
        };
      case 5:
        return {
          method: 'PUT',
          url: '/v1/branches/main/keys/a/x',
          headers: {
            ...headers,
            ...pick<Record<string, string>>([
              { 'if-match': pick(['"nope"', 'W/"x"', '*, "a"', '"', '"0000000000000000000000000000000000000000"']) },
              { 'x-store-author': pick(['nobody', '<a@b>', 'A <b', 'A <b> c', 'A\u0001 <a@b>']) },
              { 'x-store-message': pick(['%00', 'a%00b', 'x%1Fy', '%01']) },
              { 'if-none-match': pick(['"x"', 'W/"y"']) },
            ]),
          },
          body: 'v',
        };
      case 6:
        return { method: 'GET', url: `/v1/diff?from=${enc(badRev())}&to=${enc(badRev())}`, headers };
      case 7:
        return {
          method: 'GET',
          url: `/v1/branches/main/log?${pick(['limit=-1', 'limit=x', 'cursor=zzz', 'key=a//b', 'limit=99999999'])}`,
          headers,
        };
      case 8:
        return {
          method: pick(['GET', 'PUT', 'DELETE', 'POST']),
          url: `/v1/transactions/${enc(pick(['x', '..', '0'.repeat(16), '\u0000', 'a/b']))}/keys/a/x`,
          headers,
          body: 'v',
        };
      case 9:
        return { method: 'PUT', url: '/v1/branches/main/keys/a/big', headers, body: 'v'.repeat(70_000) };
      case 10:
        return { method: 'DELETE', url: `/v1/branches/${enc(pick(['main', badBranch(), 'nosuch']))}`, headers };
      default:
        return {
          method: pick(['GET', 'POST', 'PATCH', 'OPTIONS', 'TRACE']),
          url: pick([
            '/v1/../etc/passwd',
            '/v1/branches/main/keys',
            '/%',
            '/v1/branches/%ZZ/keys/a',
            `/v1/${'x/'.repeat(2000)}`,
            '/git/../config',
          ]),
          headers,
        };
    }
  };
}

describe('fuzz over HTTP', () => {
  it(`${N.toLocaleString('en')} generated bad requests: no 5xx, no hang, nothing written, still serving`, async () => {
    const before = refs();
    const next = generator(SEED);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    const worker = async () => {
      while (sent < N) {
        const n = sent++;
        const r = next();
        if (process.env.FUZZ_TRACE)
          console.log(
            `#${n} ${r.method} ${r.url.slice(0, 100)} ${JSON.stringify(r.headers).slice(0, 150)} ${r.body?.slice(0, 60)}`,
          );
        // An unreasonable method or body combination is the client's to refuse: still a bad input, sent raw.
        const body = r.method === 'GET' || r.method === 'HEAD' || r.method === 'TRACE' ? undefined : r.body;
        try {
          const res = await fetch(`${server.url}${r.url}`, {
            method: r.method,
            headers: r.headers,
            body,
            signal: AbortSignal.timeout(Number(process.env.FUZZ_TIMEOUT ?? 30_000)),
          });
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500)
            failures.push(`#${n} ${r.method} ${r.url.slice(0, 80)}: ${res.status} ${text.slice(0, 300)}`);
          if (res.status < 300 && r.method !== 'GET' && r.method !== 'OPTIONS') {
            failures.push(`#${n} ${r.method} ${r.url.slice(0, 80)} was accepted: ${res.status} ${text.slice(0, 200)}`);
          }
          if (text.includes(repo))
            failures.push(`#${n} ${r.method} ${r.url.slice(0, 80)}: the answer names the server path`);
        } catch (e) {
          const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
          // A header value node's own client refuses to send (a control character) never reached the server.
          if (cause === 'UND_ERR_INVALID_ARG' || (e as Error).name === 'TypeError') continue;
          failures.push(`#${n} ${r.method} ${r.url.slice(0, 80)}: no answer (${cause})`);
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    expect(failures.slice(0, 30), `seed ${SEED}; server log: ${server.stderr().slice(-2000)}`).toEqual([]);
    expect(refs()).toBe(before);
    expect([...statuses.keys()].every((s) => s >= 200 && s < 500)).toBe(true);
    // Still serving, reads and writes.
    const ok = await fetch(`${server.url}/v1/branches/main/keys/a/after`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}` },
      body: 'fine',
    });
    expect(ok.status).toBe(201);
    git(['--git-dir', repo, 'fsck', '--strict', '--no-dangling']);
  });
});
