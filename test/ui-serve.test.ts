import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, StoreClient } from '../src/index.js';
import { type Served, startServe, stopServe } from './serve.js';

/**
 * How `store serve` serves the web UI (issue 17): from the package itself (dist/ui, nothing fetched elsewhere), with
 * a strict Content-Security-Policy that the page keeps (no inline script), and nothing outside dist/ui.
 */

const UI = path.join(import.meta.dirname, '..', 'dist', 'ui');
let server: Served;
let root: string;

beforeAll(async () => {
  // Not tempDir(): that is removed after each test, and this server serves the whole file.
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-ui-serve-'));
  const repo = path.join(root, 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch(Array.from({ length: 25 }, (_, i) => ({ op: 'set' as const, key: `d/k${i}`, value: `${i}` })));
  await store.close();
  server = await startServe(repo, ['--port', '0']);
});

afterAll(async () => {
  if (server) await stopServe(server);
  fs.rmSync(root, { recursive: true, force: true });
});

describe('serving the web UI', () => {
  it('answers / with the page, under a strict content security policy', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/style-src 'self'(;|$)/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    // Scripts only by src, from this server: nothing inline for the policy to refuse, no CDN.
    for (const tag of html.match(/<script[^>]*>[\s\S]*?<\/script>/g) ?? []) {
      expect(tag).toMatch(/^<script[^>]* src="\/ui\/[^"]+"[^>]*><\/script>$/);
    }
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('serves the built files, and nothing outside them', async () => {
    const js = await fetch(`${server.url}/ui/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const code = await js.text();
    // The store's HTTP client is bundled for the browser: no Node built-in may be imported there.
    expect(code).not.toMatch(/from\s*["']node:|import\(["']node:/);
    expect(code).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z]/i);
    for (const probe of [
      '/ui/../package.json',
      '/ui/%2e%2e/package.json',
      '/ui/..%2f..%2fpackage.json',
      '/ui/nope.js',
    ]) {
      const res = await fetch(`${server.url}${probe}`);
      expect(res.status, probe).toBeGreaterThanOrEqual(400);
      expect(res.status, probe).toBeLessThan(500);
      expect(await res.text(), probe).not.toMatch(/"name":\s*"gitstore"/);
    }
  });

  it('lists a directory in pages (limit, offset, total), read at one commit: what the tree loads first', async () => {
    const client = new StoreClient(server.url);
    const whole = await client.list('d');
    const first = await client.list('d', { limit: 10 });
    expect(first.total).toBe(25);
    expect(first.entries).toEqual(whole.entries.slice(0, 10));
    // Someone writes meanwhile: the next page, read at the first page's commit, still continues that listing.
    await client.set('d/a-new-key', 'x');
    const rest = await client.list('d', { at: first.commit!, offset: 10 });
    expect([...first.entries, ...rest.entries]).toEqual(whole.entries);
    expect(rest.total).toBe(25);
    expect(whole.total).toBeUndefined();
  });

  it('ships the UI in the package: the files it serves are dist/ui', () => {
    expect(fs.readdirSync(UI).sort()).toEqual(['app.js', 'index.html', 'style.css']);
    const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
      files: string[];
    };
    expect(pkg.files).toContain('dist/ui');
  });
});
