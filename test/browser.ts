import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

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
 * A real headless Chromium for the web UI's tests: Debian's `chromium` package (.ci/run installs it), driven by
 * puppeteer-core, which downloads no browser. $CHROMIUM names another one.
 */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  const found = candidates.find((c): c is string => !!c && fs.existsSync(c));
  if (!found) throw new Error('no Chromium here: apt-get install chromium, or set $CHROMIUM to a Chromium binary');
  return found;
}

export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Root in CI containers cannot use Chromium's sandbox; /dev/shm may be small there.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/**
 * A page that records what must never happen: script errors, and Content-Security-Policy violations (the UI runs no
 * inline script and loads nothing from elsewhere, so a violation is a defect).
 */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(m.text());
  });
  await page.setViewport({ width: 1100, height: 720 });
  await page.goto(url, { waitUntil: 'load' });
  return { page, problems };
}

/** Where tests put screenshots: $SCREENSHOTS (docs/screenshots to refresh the README's), else a temporary directory. */
export function screenshotDir(): string {
  const dir = process.env.SCREENSHOTS ?? path.join(process.env.TMPDIR ?? '/tmp', 'gitstore-screenshots');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(screenshotDir(), `${name}.png`) as `${string}.png` });
}

/** Clicks the element matching `selector` whose text contains `text` (waiting for it). */
export async function click(page: Page, selector: string, text: string): Promise<void> {
  await page.locator(`${selector}::-p-text(${text})`).click();
}

/** Waits until the page's text contains `text`. */
export async function seeText(page: Page, text: string, timeout = 20_000): Promise<void> {
  await page.waitForFunction((t) => (document.body.textContent ?? '').includes(t), { timeout }, text);
}

/** Types into the field labelled `label` (replacing what it held). */
export async function fill(page: Page, label: string, text: string): Promise<void> {
  const field = await page.waitForSelector(`::-p-aria(${label})`);
  await field!.click({ count: 3 });
  await field!.evaluate((el) => {
    (el as unknown as { value: string }).value = '';
  });
  await field!.type(text);
}
