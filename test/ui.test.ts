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
