import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, StoreClient } from '../src/index.js';
import { click, fill, launchBrowser, openPage, screenshot, seeText } from './browser.js';
import { cli } from './cli-process.js';
import { git } from './helpers.js';
import { type Served, startServe, stopServe } from './serve.js';

/**
 * Code given to page.evaluate and waitForFunction runs in the browser. The tests are compiled as Node code, without
 * the DOM library (it would change the types of Node's own fetch for every test), so these are the DOM names used.
 */
declare const document: {
  body: { textContent: string | null };
  activeElement: { textContent: string | null } | null;
  querySelector(selector: string): unknown;
};
declare function getComputedStyle(element: unknown): { outlineStyle: string; backgroundColor: string };

/**
 * The web UI (issue 17) in a real headless Chromium against a real `store serve`, driven as a person would: browse
 * to a key and edit it, meet a stale edit and choose, branch and resolve a merge conflict, see another client's write
 * arrive, and sign in with a read-only token. Every page is also checked for script errors and CSP violations.
 * Screenshots go to $SCREENSHOTS (docs/screenshots for the README).
 */

let browser: Browser;
let root: string;
const servers: Served[] = [];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-ui-'));
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => stopServe(s)));
  fs.rmSync(root, { recursive: true, force: true });
});

/** A served repository with a few keys. */
async function served(name: string, args: string[] = []): Promise<{ url: string; repo: string }> {
  const repo = path.join(root, `${name}.git`);
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch([
    { op: 'set', key: 'app/web/port', value: '8080' },
    { op: 'set', key: 'app/web/config.json', value: '{"replicas":2,"image":"web:1.4"}' },
    { op: 'set', key: 'app/db/host', value: 'db.internal' },
    { op: 'set', key: 'vm/web1/memory', value: '2048' },
    { op: 'set', key: 'secret/db-password', value: 'hunter2' },
  ]);
  await store.close();
  const s = await startServe(repo, ['--port', '0', '--rate-limit', '0', ...args]);
  servers.push(s);
  return { url: s.url, repo };
}

const show = (repo: string, rev: string) => git(['--git-dir', repo, 'show', rev]).toString();

async function done(page: Page, problems: string[]) {
  expect(problems).toEqual([]);
  await page.close();
}

describe('the web UI', () => {
  it('browses to a key through the tree and edits it', async () => {
    const { url, repo } = await served('browse');
    const { page, problems } = await openPage(browser, `${url}/`);
    await click(page, '.rows a', 'app/');
    await click(page, '.rows a', 'web/');
    await screenshot(page, 'tree');
    await click(page, '.rows a', 'port');
    await seeText(page, '8080');
    await click(page, 'button', 'Edit');
    await fill(page, 'Value of app/web/port', '9090');
    await click(page, 'button', 'Save');
    await page.waitForFunction(() => !document.querySelector('textarea'));
    await seeText(page, '9090');
    expect(show(repo, 'main:app/web/port')).toBe('9090');
    // The JSON value is shown pretty-printed, and its history has the first version.
    await page.goto(`${url}/#/key/main/app%2Fweb%2Fconfig.json`);
    await seeText(page, '"replicas": 2');
    await screenshot(page, 'key');
    await done(page, problems);
  });

  it('a save that meets another client’s change shows both versions and lets the person choose', async () => {
    const { url, repo } = await served('stale');
    const { page, problems } = await openPage(browser, `${url}/#/key/main/app%2Fweb%2Fport`);
    await seeText(page, '8080');
    await click(page, 'button', 'Edit');
    await fill(page, 'Value of app/web/port', 'mine');
    // Meanwhile, someone else.
    await new StoreClient(url).set('app/web/port', 'theirs');
    await click(page, 'button', 'Save');
    await seeText(page, 'Someone changed this key since you opened it');
    await seeText(page, 'theirs');
    expect(show(repo, 'main:app/web/port')).toBe('theirs'); // nothing overwritten silently
    await screenshot(page, 'stale-edit');
    await click(page, 'button', 'Keep mine');
    await page.waitForFunction(() => !(document.body.textContent ?? '').includes('Someone changed'));
    expect(show(repo, 'main:app/web/port')).toBe('mine');
    await done(page, problems);
  });

  it('creates a branch, and resolves a merge conflict key by key', async () => {
    const { url, repo } = await served('merge');
    const { page, problems } = await openPage(browser, `${url}/#/branches`);
    await fill(page, 'Name', 'feature');
    await click(page, 'button', 'Create branch');
    await seeText(page, 'feature');
    // Conflicting changes on each side, made in the UI.
    for (const [branch, value] of [
      ['feature', '{"replicas":3,"image":"web:1.4"}'],
      ['main', '{"replicas":5,"image":"web:1.4"}'],
    ] as const) {
      await page.goto(`${url}/#/key/${branch}/app%2Fweb%2Fconfig.json`);
      await click(page, 'button', 'Edit');
      await fill(page, 'Value of app/web/config.json', value);
      await click(page, 'button', 'Save');
      await page.waitForFunction(() => !document.querySelector('textarea'));
    }
    const main = git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim();
    const feature = git(['--git-dir', repo, 'rev-parse', 'feature']).toString().trim();
    await page.goto(`${url}/#/merge/main/feature`);
    await seeText(page, '1 key conflict');
    await seeText(page, 'app/web/config.json');
    await screenshot(page, 'merge-conflict');
    await click(page, 'label', 'Edit');
    await fill(page, 'Resolved value of app/web/config.json', '{"replicas":4,"image":"web:1.4"}');
    await click(page, 'button', 'Commit the merge');
    await seeText(page, 'Merged.');
    expect(show(repo, 'main:app/web/config.json')).toBe('{"replicas":4,"image":"web:1.4"}');
    const parents = git(['--git-dir', repo, 'log', '-1', '--format=%P', 'main']).toString().trim().split(' ');
    expect(parents).toEqual([main, feature]);
    await done(page, problems);
  });

  it('shows another client’s write as it happens, marked', async () => {
    const { url } = await served('live');
    const { page, problems } = await openPage(browser, `${url}/#/tree/main/app%2Fweb`);
    await seeText(page, 'port');
    await new StoreClient(url).set('app/web/replicas', '3');
    await page.waitForSelector('.rows a.changed::-p-text(replicas)', { timeout: 20_000 });
    await screenshot(page, 'live');
    // An open key shows a change too.
    await page.goto(`${url}/#/key/main/app%2Fweb%2Fport`);
    await seeText(page, '8080');
    await new StoreClient(url).set('app/web/port', '7070');
    await seeText(page, 'changed by another client');
    await seeText(page, '7070');
    await done(page, problems);
  });

  it('with auth on: sign in with a token; a read-only token sees no write controls and no unreadable prefix', async () => {
    const repo = path.join(root, 'auth.git');
    const store = await openStore({ fs, dir: repo, create: true });
    await store.batch([
      {
        op: 'set',
        key: '.store/access.json',
        value: JSON.stringify({ roles: { web: { rules: [{ branch: 'main', prefix: 'app/web/', access: 'read' }] } } }),
      },
      { op: 'set', key: 'app/web/port', value: '8080' },
      { op: 'set', key: 'secret/db-password', value: 'hunter2' },
    ]);
    await store.close();
    const token = (await cli(['--repo', repo, 'token', 'create', 'viewer', '--role', 'web'])).stdout.trim();
    const s = await startServe(repo, ['--port', '0']);
    servers.push(s);
    const { page, problems } = await openPage(browser, `${s.url}/`);
    await seeText(page, 'This store needs a token');
    await fill(page, 'Token', 'gst_000000000000_wrong');
    await click(page, 'button', 'Sign in');
    await seeText(page, 'That token is not valid');
    await fill(page, 'Token', token);
    await screenshot(page, 'sign-in');
    await click(page, 'button', 'Sign in');
    await page.waitForSelector('.rows a::-p-text(app/)');
    const top = await page.$$eval('.rows a', (links) => links.map((a) => a.textContent));
    expect(top.join(' ')).not.toMatch(/secret/);
    expect(await page.$('form[aria-label="New key"]')).toBeNull();
    await page.goto(`${s.url}/#/key/main/app%2Fweb%2Fport`);
    await seeText(page, '8080');
    const buttons = await page.$$eval('button', (all) => all.map((b) => b.textContent));
    expect(buttons).not.toContain('Edit');
    expect(buttons).not.toContain('Delete');
    expect(await page.$('input[type=file]')).toBeNull();
    await done(page, problems);
  });

  it('refuses a value the branch’s schemas break: each violation shown, the editor kept, nothing written', async () => {
    const { url, repo } = await served('schema');
    const client = new StoreClient(url);
    await client.set('.store/schema.json', JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 128 } }));
    const before = git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim();
    const { page, problems } = await openPage(browser, `${url}/#/key/main/vm%2Fweb1%2Fmemory`);
    await seeText(page, '2048');
    await click(page, 'button', 'Edit');
    await fill(page, 'Value of vm/web1/memory', '64');
    await click(page, 'button', 'Save');
    await seeText(page, 'must be >= 128');
    await seeText(page, 'Nothing was written');
    // One row per violation: the key, where in the value (the JSON pointer; "" is the whole value), the problem,
    // and the rule with the pattern whose schema it is.
    const rows = await page.$$eval('.refused table.violations tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows).toEqual([
      ['vm/web1/memory', 'the whole value', 'must be >= 128', '#/minimum of the schema for vm/*/memory'],
    ]);
    // The person's text stays in the editor, marked invalid, to fix.
    const field = await page.$eval('textarea', (t) => [
      (t as unknown as { value: string }).value,
      t.getAttribute('aria-invalid'),
    ]);
    expect(field).toEqual(['64', 'true']);
    await screenshot(page, 'invalid-value');
    // Nothing was written: the server still has the old value, at the same head.
    expect(new TextDecoder().decode((await client.read('vm/web1/memory')).value)).toBe('2048');
    expect(git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim()).toBe(before);
    // A valid value then saves, and the refusal goes.
    await fill(page, 'Value of vm/web1/memory', '256');
    await click(page, 'button', 'Save');
    await page.waitForFunction(() => !document.querySelector('textarea'));
    await seeText(page, '256');
    expect(await page.$('.refused')).toBeNull();
    expect(show(repo, 'main:vm/web1/memory')).toBe('256');
    await done(page, problems);
  });

  it('a merge whose result would break the schemas shows each violation and cannot be made until fixed', async () => {
    const { url, repo } = await served('schema-merge');
    const client = new StoreClient(url);
    // feature branches off before main declares schemas, so its values were never held to them.
    await client.createBranch('feature', { from: 'main' });
    await client.set('vm/web1/memory', '64', { branch: 'feature' });
    await client.set('app/web/config.json', '{"replicas":50,"image":"web:1.4"}', { branch: 'feature' });
    await client.set(
      '.store/schema.json',
      JSON.stringify({
        'vm/*/memory': { type: 'integer', minimum: 128 },
        'app/*/config.json': { type: 'object', properties: { replicas: { type: 'integer', maximum: 10 } } },
      }),
    );
    const before = git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim();
    const { page, problems } = await openPage(browser, `${url}/#/merge/main/feature`);
    await seeText(page, 'The merge would be refused');
    await seeText(page, 'must be >= 128');
    const rows = await page.$$eval('.refused table.violations tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows).toEqual(
      expect.arrayContaining([
        ['vm/web1/memory', 'the whole value', 'must be >= 128', '#/minimum of the schema for vm/*/memory'],
        [
          'app/web/config.json',
          '/replicas',
          'must be <= 10',
          '#/properties/replicas/maximum of the schema for app/*/config.json',
        ],
      ]),
    );
    expect(rows).toHaveLength(2);
    expect(await page.$eval('button::-p-text(Merge)', (b) => b.hasAttribute('disabled'))).toBe(true);
    expect(await page.$('::-p-text(the merge can be made as it is)')).toBeNull();
    await screenshot(page, 'merge-invalid');
    expect(git(['--git-dir', repo, 'rev-parse', 'main']).toString().trim()).toBe(before);
    // Fixed on feature, the preview looked at again: the merge can be made, and is.
    await client.set('vm/web1/memory', '512', { branch: 'feature' });
    await client.set('app/web/config.json', '{"replicas":5,"image":"web:1.4"}', { branch: 'feature' });
    await click(page, 'button', 'Check again');
    await seeText(page, 'No key conflicts: the merge can be made as it is.');
    expect(await page.$('.refused')).toBeNull();
    await click(page, 'button', 'Merge');
    await seeText(page, 'Merged.');
    expect(show(repo, 'main:vm/web1/memory')).toBe('512');
    expect(show(repo, 'main:app/web/config.json')).toBe('{"replicas":5,"image":"web:1.4"}');
    await done(page, problems);
  });

  it('validates a branch against its schemas from the branches page', async () => {
    const { url } = await served('schema-validate');
    const client = new StoreClient(url);
    // A schema the stored 2048 does not meet, forced in (an admin's choice; with auth off, everyone is one).
    const schema = JSON.stringify({ 'vm/*/memory': { type: 'integer', maximum: 1024 } });
    await client.set('.store/schema.json', schema, { force: true });
    const { page, problems } = await openPage(browser, `${url}/#/branches`);
    await click(page, 'button', 'Validate');
    await seeText(page, 'breaks its schemas');
    const rows = await page.$$eval('.validation table.violations tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows).toEqual([
      ['vm/web1/memory', 'the whole value', 'must be <= 1024', '#/maximum of the schema for vm/*/memory'],
    ]);
    await client.set('vm/web1/memory', '1024');
    await click(page, 'button', 'Validate');
    await seeText(page, 'is valid: 1 value checked against 1 schema pattern');
    expect(await page.$('.refused')).toBeNull();
    await done(page, problems);
  });

  it('is usable from the keyboard and readable in a dark colour scheme', async () => {
    const { url } = await served('keys');
    const { page, problems } = await openPage(browser, `${url}/#/tree/main/app`);
    await page.waitForSelector('.rows a');
    await page.focus('.rows a');
    await page.keyboard.press('ArrowDown');
    // The list moves the focus once the next row is drawn (the next animation frame).
    await page.waitForFunction(() => /web\//.test(document.activeElement?.textContent ?? ''), { timeout: 10_000 });
    await page.keyboard.press('Enter');
    await page.waitForSelector('.rows a::-p-text(port)');
    // Visible focus: an outline on the focused control.
    await page.focus('.rows a');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(dark).not.toBe(light);
    await screenshot(page, 'dark');
    await done(page, problems);
  });
});
