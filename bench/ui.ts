import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { openStore } from '../src/index.js';
import { chromiumPath } from '../test/browser.js';
import { startServer } from './http.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The DOM names used by code that runs in the page (the bench is compiled without the DOM library). */
declare const document: {
  querySelector(selector: string): {
    addEventListener(type: string, f: (e: { preventDefault(): void }) => void, o: object): void;
    click(): void;
  };
};

/**
 * The web UI's first paint and time to an interactive tree, for a store of 100,000 keys, in headless Chromium on
 * loopback (issue 17; target: under 1 s). Two stores of 100,000 keys (two branches of one repository): `spread`,
 * ten keys in each of 10,000 directories (`vm/<n>/k<i>`; the tree of `vm/` lists 10,000 entries), and the worst
 * case, `flat`, 100,000 keys in ONE directory (a 100,000-entry listing, drawn as a virtual list). Each page load is
 * a fresh browser context (no cache); medians of `runs` loads, after one that warms the server.
 *
 * - firstPaintMs: the browser's first-contentful-paint entry;
 * - interactiveMs: from navigation start until the tree's rows are drawn and a click on one has been handled (the
 *   page's main thread free to answer a person).
 */
export async function benchUi(runs = 5, keys = 100_000) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-ui-bench-'));
  const repo = path.join(dir, 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.set('README', 'two 100,000-key layouts: branches spread and flat');
  for (const [branch, keyOf] of [
    ['spread', (j: number) => `vm/${Math.floor(j / 10)}/k${j % 10}`],
    ['flat', (j: number) => `flat/k${String(j).padStart(6, '0')}`],
  ] as const) {
    await store.createBranch(branch, { from: 'main' });
    for (let i = 0; i < keys; i += 10_000) {
      const ops = [];
      for (let j = i; j < Math.min(keys, i + 10_000); j++)
        ops.push({ op: 'set' as const, key: keyOf(j), value: `v${j}` });
      await store.batch(ops, { branch });
    }
  }
  await store.close();
  const server = await startServer(repo);
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const measure = async (hash: string) => {
    const firstPaint: number[] = [];
    const interactive: number[] = [];
    for (let i = 0; i < runs + 1; i++) {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      await page.setViewport({ width: 1100, height: 720 });
      await page.goto(`${server.url}/${hash}`, { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('.rows a', { timeout: 60_000 });
      // A click on the first row, handled: the page answers a person.
      const times = await page.evaluate(
        () =>
          new Promise<{ fcp: number; ready: number }>((resolve) => {
            const row = document.querySelector('.rows a');
            row.addEventListener('click', (e) => e.preventDefault(), { once: true });
            row.click();
            const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN;
            setTimeout(() => resolve({ fcp, ready: performance.now() }), 0);
          }),
      );
      // The first load warms the server's caches (as any load after the first would find them).
      if (i > 0) {
        firstPaint.push(times.fcp);
        interactive.push(times.ready);
      }
      await context.close();
    }
    return { firstPaintMs: Math.round(median(firstPaint)), interactiveMs: Math.round(median(interactive)) };
  };
  try {
    return {
      keys,
      runs,
      spread: await measure('#/tree/spread/vm'),
      oneDirectory: await measure('#/tree/flat/flat'),
    };
  } finally {
    await browser.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
