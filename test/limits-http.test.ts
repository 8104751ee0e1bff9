import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreClient } from '../src/index.js';
import { cli } from './cli-process.js';
import { sleep, tempDir, until } from './helpers.js';
import { type Served, startServe, stopServe } from './serve.js';

/**
 * `store serve`'s limits and transport (issue 15, "Safe defaults"), against a real server: the per-caller rate limit,
 * the cap on open watches, time limits for slow clients, TLS, and security headers.
 */

const TLS = path.join(import.meta.dirname, 'fixtures/tls');

const running: Served[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => stopServe(s)));
});

async function serve(args: string[]): Promise<Served> {
  const s = await startServe(path.join(tempDir('gitstore-limits-'), 'store.git'), ['--port', '0', ...args]);
  running.push(s);
  return s;
}

describe('limits', () => {
  it('a caller over --rate-limit gets 429 QUOTA naming the limit, with Retry-After; health is never limited', async () => {
    const s = await serve(['--rate-limit', '5']);
    const statuses = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${s.url}/v1/branches`).then(async (r) => ({ r, body: await r.text() }))),
    );
    const limited = statuses.filter(({ r }) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    expect(statuses.filter(({ r }) => r.status === 200).length).toBeLessThanOrEqual(5);
    const { r, body } = limited[0]!;
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(JSON.parse(body).error).toMatchObject({
      code: 'QUOTA',
      message: expect.stringMatching(/over the rate limit of 5 requests per second \(--rate-limit\); retry in/),
      data: { limit: 'rate', max: 5 },
    });
    const health = await Promise.all(Array.from({ length: 20 }, () => fetch(`${s.url}/v1/health`)));
    expect(health.every((h) => h.status === 200)).toBe(true);
    // The window passes: served again.
    await sleep(1100);
    expect((await fetch(`${s.url}/v1/branches`)).status).toBe(200);
  });

  it('open watches are capped per caller (--max-watches); closing one makes room', async () => {
    const s = await serve(['--max-watches', '2']);
    const client = new StoreClient(s.url);
    const a = await client.watch({ prefix: 'a' });
    const b = await client.watch({ prefix: 'b' });
    await expect(client.watch({ prefix: 'c' })).rejects.toMatchObject({
      code: 'QUOTA',
      message: expect.stringMatching(/has 2 open watches, the limit \(--max-watches\)/),
    });
    await a.close();
    // The server sees the stream end when the connection goes: give it a moment.
    let c: Awaited<ReturnType<StoreClient['watch']>> | undefined;
    for (let i = 0; i < 100 && !c; i++) {
      c = await client.watch({ prefix: 'c' }).catch(() => undefined);
      if (!c) await sleep(50);
    }
    expect(c).toBeDefined();
    await b.close();
    await c!.close();
    await client.close();
  });

  it('open transactions are capped per caller (--max-transactions); ending one makes room', async () => {
    const s = await serve(['--max-transactions', '2']);
    const client = new StoreClient(s.url);
    const a = await client.begin();
    await client.begin();
    await expect(client.begin()).rejects.toMatchObject({ code: 'QUOTA', message: expect.stringMatching(/2/) });
    await a.abort();
    await (await client.begin()).abort();
    await client.close();
  });

  it('without a token, serves loopback only: another --host needs --insecure, which warns and prints that address', async () => {
    const repo = path.join(tempDir('gitstore-limits-'), 'store.git');
    const refused = await cli(['serve', '--repo', repo, '--host', '0.0.0.0', '--port', '0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--insecure|token/);
    const s = await startServe(repo, ['--host', '0.0.0.0', '--port', '0', '--insecure']);
    running.push(s);
    expect(s.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    // stderr is its own pipe: its data may come in after stdout's first line.
    await until(() => /warning/i.test(s.stderr()), 'the warning on stderr', 10_000);
    expect((await fetch(`${s.url.replace('0.0.0.0', '127.0.0.1')}/v1/health`)).status).toBe(200);
  });

  it('with auth on, the rate limit and the watch cap count per token, not per address', async () => {
    const repo = path.join(tempDir('gitstore-limits-'), 'store.git');
    expect((await cli(['--repo', repo, 'init'])).code).toBe(0);
    const token = async (name: string) =>
      (await cli(['--repo', repo, 'token', 'create', name, '--role', 'admin'])).stdout.trim();
    const [a, b] = [await token('a'), await token('b')];
    const s = await startServe(repo, ['--port', '0', '--rate-limit', '5', '--max-watches', '1']);
    running.push(s);
    const as = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    const statuses = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${s.url}/v1/branches`, as(a)).then((r) => r.status)),
    );
    expect(statuses.filter((x) => x === 429).length).toBeGreaterThanOrEqual(10);
    // The same address, another token: its own budget.
    expect((await fetch(`${s.url}/v1/branches`, as(b))).status).toBe(200);

    const [ca, cb] = [new StoreClient(s.url, { token: a }), new StoreClient(s.url, { token: b })];
    await sleep(1100); // a new second of the rate limit
    const wa = await ca.watch();
    await expect(ca.watch()).rejects.toMatchObject({ code: 'QUOTA' });
    const wb = await cb.watch();
    wa.close();
    wb.close();
    await ca.close();
    await cb.close();
  });

  it('cuts connections that never finish their headers or their body (--request-timeout)', async () => {
    const s = await serve(['--request-timeout', '2']);
    const { port } = new URL(s.url);
    const open = (request: string) =>
      new Promise<{ closedAfterMs: number }>((resolve, reject) => {
        const started = Date.now();
        // What the connection saw, for the message if it is still open: which kind, when it connected, what came.
        const seen: string[] = [request.includes('Content-Length') ? 'a short body' : 'unfinished headers'];
        const at = (what: string) => seen.push(`${what} at ${Date.now() - started} ms`);
        const socket = net.connect(Number(port), '127.0.0.1', () => {
          at('connected');
          socket.write(request);
        });
        socket.on('error', (e) => at(`error ${e.message}`));
        socket.on('end', () => at('end'));
        socket.setEncoding('utf8').on('data', (d: string) => at(`got ${JSON.stringify(d.slice(0, 60))}`));
        socket.on('close', () => resolve({ closedAfterMs: Date.now() - started }));
        setTimeout(() => reject(new Error(`still open after 20 s: ${seen.join(', ')}`)), 20_000).unref();
      });
    const headers = 'PUT /v1/branches/main/keys/k HTTP/1.1\r\nHost: x\r\n';
    const body = 'PUT /v1/branches/main/keys/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b';
    const closed = await Promise.all([
      ...Array.from({ length: 20 }, () => open(headers)),
      ...Array.from({ length: 20 }, () => open(body)),
    ]);
    for (const c of closed) expect(c.closedAfterMs).toBeLessThan(8000);
    // Nothing was written, and the server still serves.
    expect((await fetch(`${s.url}/v1/branches/main/keys/k`)).status).toBe(404);
    // A request that is slow but whole in time (its body in two parts, 500 ms apart) is served.
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(
          'PUT /v1/branches/main/keys/slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 8\r\n\r\nfour',
        );
        setTimeout(() => socket.write('more'), 500);
      });
      socket.setEncoding('utf8').on('data', (d: string) => {
        text += d;
      });
      socket.on('close', () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 201/);
    expect(await (await fetch(`${s.url}/v1/branches/main/keys/slow`)).text()).toBe('fourmore');
  });
});

describe('transport', () => {
  it('serves HTTPS with --tls-cert and --tls-key, and says so in the address it prints', async () => {
    const s = await serve(['--tls-cert', path.join(TLS, 'cert.pem'), '--tls-key', path.join(TLS, 'key.pem')]);
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = fs.readFileSync(path.join(TLS, 'cert.pem'));
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(`${s.url}/v1/health`, { ca }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => {
            text += d;
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toEqual({ status: 'ok' });
  });

  it('refuses half a TLS configuration or an unreadable file, saying which', async () => {
    const repo = path.join(tempDir('gitstore-limits-'), 'store.git');
    await expect(startServe(repo, ['--port', '0', '--tls-cert', path.join(TLS, 'cert.pem')])).rejects.toThrow(
      /exited \(2\).*TLS needs both --tls-cert and --tls-key/s,
    );
    await expect(
      startServe(repo, ['--port', '0', '--tls-cert', '/nonexistent.pem', '--tls-key', path.join(TLS, 'key.pem')]),
    ).rejects.toThrow(/--tls-cert \/nonexistent.pem: cannot read it \(ENOENT\)/);
  });

  it('sends security headers: a content security policy on the HTML page, no sniffing, no framing', async () => {
    const s = await serve([]);
    const page = await fetch(`${s.url}/docs`);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });
});
