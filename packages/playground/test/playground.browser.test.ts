import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../server/src/engine/index.js';
import { launchChromium } from './support/browser.js';
import { ROOT, buildPage } from './support/build-page.js';
import { startEngine, startServer } from './support/servers.js';
import type { RunningServer } from './support/servers.js';

/** Screenshots and measurements of the run (gitignored). */
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);
const SHAPES_PNG = `${ROOT}examples/assets/shapes.png`;
/** The classic scene's boxes (examples/harness/scene.ts): #1 the red circle, #2 the blue square. */
const RED_CIRCLE = { x1: 130, y1: 50, x2: 182, y2: 102 };
const BLUE_SQUARE = { x1: 38, y1: 66, x2: 90, y2: 118 };
const SCENE = { width: 224, height: 168 };
const API_KEY = 'playground-test-key';
const PAGE_BUDGET_GZIP_BYTES = 150 * 1024;

let engine: Engine;
let browser: Browser;
let pageDir: string;
/** The page of the running test, photographed when the test fails. */
let current: Page | undefined;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  [pageDir, engine, browser] = await Promise.all([buildPage(), startEngine(), launchChromium()]);
});

afterEach(async ({ task }) => {
  if (task.result?.state === 'fail' && current !== undefined && !current.isClosed()) {
    await current.screenshot({ path: new URL(`failed-${task.id}.png`, ARTIFACTS).pathname });
  }
  await current?.context().close();
  current = undefined;
});

afterAll(async () => {
  await browser?.close();
  await engine?.close();
});

interface OpenedPage {
  readonly page: Page;
  /** Console errors (CSP violations among them) and uncaught exceptions. */
  readonly problems: string[];
  /** The JavaScript and CSS the page loaded, with their gzipped sizes. */
  readonly assets: { url: string; gzipBytes: number }[];
}

/** The page in a fresh browser context: cold cache, no storage. */
async function openPage(url: string): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const opened: OpenedPage = { page, problems: [], assets: [] };
  current = page;
  const pending: Promise<void>[] = [];
  page.on('console', (message) => {
    // Chromium logs failed API calls (the error paths under test) as failed resources.
    if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) {
      opened.problems.push(message.text());
    }
  });
  page.on('pageerror', (error) => opened.problems.push(error.message));
  page.on('response', (response) => {
    if (!/\.(js|css)$/.test(new URL(response.url()).pathname)) return;
    pending.push(
      response.body().then((body) => {
        opened.assets.push({ url: response.url(), gzipBytes: gzipSync(body).byteLength });
      }),
    );
  });
  await page.goto(url);
  await Promise.all(pending);
  return opened;
}

const visible = (page: Page, selector: string) => () => page.locator(selector).isVisible();
const text = (page: Page, selector: string) => () => page.locator(selector).textContent();

/** Drags a box on the image, from image pixel (x1, y1) to (x2, y2). */
async function drawBox(page: Page, box: typeof RED_CIRCLE): Promise<void> {
  const rect = (await page.locator('#overlay').boundingBox())!;
  const at = (x: number, y: number) => ({
    // A quarter pixel in: the page rounds to the nearest image pixel.
    x: rect.x + ((x + 0.25) / SCENE.width) * rect.width,
    y: rect.y + ((y + 0.25) / SCENE.height) * rect.height,
  });
  const from = at(box.x1, box.y1);
  const to = at(box.x2, box.y2);
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(to.x, to.y, { steps: 8 });
  await page.mouse.up();
}

async function markValues(page: Page, label: number): Promise<number[]> {
  const row = page.locator(`#mark-list li[data-label="${label}"]`);
  return Promise.all(
    ['x1', 'y1', 'x2', 'y2'].map(async (f) =>
      Number(await row.locator(`input[name=${f}]`).inputValue()),
    ),
  );
}

function expectNear(actual: number[], box: typeof RED_CIRCLE): void {
  const expected = [box.x1, box.y1, box.x2, box.y2];
  actual.forEach((value, i) => expect(Math.abs(value - expected[i]!)).toBeLessThanOrEqual(1));
}

describe('the playground page', () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer(engine, pageDir);
  });

  afterAll(async () => {
    await running?.server.shutdown();
  });

  it('loads the classic scene, takes two boxes drawn with the mouse and streams the answers', async () => {
    const started = Date.now();
    const { page, problems, assets } = await openPage(running.url);
    await page.locator('html[data-state="ready"]').waitFor();
    // In the page (Navigation Timing, and the mark the page sets once info() answered).
    const firstLoad = (await page.evaluate(`(() => {
      const navigation = performance.getEntriesByType('navigation')[0];
      return {
        domContentLoadedMs: navigation.domContentLoadedEventEnd,
        loadMs: navigation.loadEventEnd,
        connectedMs: performance.getEntriesByName('playground-ready')[0].startTime,
      };
    })()`)) as { domContentLoadedMs: number; loadMs: number; connectedMs: number };
    expect(firstLoad.loadMs).toBeGreaterThan(0);
    const pageBytes = assets.reduce((sum, s) => sum + s.gzipBytes, 0);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    expect(pageBytes).toBeLessThanOrEqual(PAGE_BUDGET_GZIP_BYTES);

    // Headers: a strict CSP on the page, hashed assets cached for good, the page revalidated.
    const index = await fetch(running.url);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const asset = await fetch(assets[0]!.url);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');

    await page.locator('#file-input').setInputFiles(SHAPES_PNG);
    await page.locator('#photo').waitFor({ state: 'visible' });
    await drawBox(page, RED_CIRCLE);
    await drawBox(page, BLUE_SQUARE);
    expectNear(await markValues(page, 1), RED_CIRCLE);
    expectNear(await markValues(page, 2), BLUE_SQUARE);
    await expect.poll(() => page.locator('#overlay .box').count()).toBe(2);

    // Every text the answer showed, and whether the ask was still running at the time.
    await page.evaluate(`(() => {
      const answer = document.getElementById('answer');
      window.seen = [];
      new MutationObserver(() =>
        window.seen.push({ text: answer.textContent, busy: answer.getAttribute('aria-busy') }),
      ).observe(answer, { childList: true, characterData: true, subtree: true });
    })()`);
    await page.getByRole('button', { name: 'Select mark #1' }).click();
    const suggestion = page.getByRole('button', { name: 'What color is object #1?' });
    await suggestion.click();
    expect(await page.locator('#prompt').inputValue()).toBe('What color is object #1?');
    await page.locator('#stats').waitFor({ state: 'visible' });
    expect(await page.locator('#answer').textContent()).toBe('red');
    const seen = (await page.evaluate('window.seen')) as { text: string; busy: string }[];
    // The answer was on the page while the stream was still open: it came token by token.
    expect(seen.some((s) => s.busy === 'true' && s.text.length > 0)).toBe(true);
    const stats = await page.locator('#stats').textContent();
    for (const term of ['Queue', 'Vision', 'Prefill', 'Decode', 'Tokens'])
      expect(stats).toContain(term);

    // A free-text question whose answer names a mark: that mark is highlighted, the other not.
    await page.locator('#prompt').fill('Which mark is the red circle?');
    await page.locator('#prompt').press('Enter');
    await expect.poll(text(page, '#answer mark[data-label="1"]')).toBe('Mark: 1');
    expect(await page.locator('#answer').textContent()).toBe('Mark: 1');
    const referenced = page.locator('#overlay .box.referenced');
    expect(await referenced.count()).toBe(1);
    expect(await referenced.getAttribute('data-label')).toBe('1');
    expect(await page.locator('#mark-list li.referenced').getAttribute('data-label')).toBe('1');
    await page.screenshot({ path: new URL('playground.png', ARTIFACTS).pathname });

    // The image as the model saw it: the server's drawing of the same two marks.
    await page.getByLabel('Show what the model saw').check();
    await expect.poll(visible(page, '#marked-photo')).toBe(true);
    expect(await page.locator('#overlay').isVisible()).toBe(false);
    const marked = await page.evaluate(`(() => {
      const img = document.getElementById('marked-photo');
      return { width: img.naturalWidth, height: img.naturalHeight };
    })()`);
    expect(marked).toEqual(SCENE);
    await page.screenshot({ path: new URL('playground-marked.png', ARTIFACTS).pathname });
    await page.keyboard.press('m');
    await expect.poll(visible(page, '#overlay')).toBe(true);

    // A phone's width: one column, nothing wider than the screen, the boxes still on their shapes.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    const photo = (await page.locator('#photo').boundingBox())!;
    const circle = (await page.locator('#overlay .box[data-label="1"]').boundingBox())!;
    expect(photo.width).toBeLessThan(390);
    expect(
      Math.abs(circle.x - (photo.x + (RED_CIRCLE.x1 / SCENE.width) * photo.width)),
    ).toBeLessThan(3);
    expect(
      Math.abs(circle.y - (photo.y + (RED_CIRCLE.y1 / SCENE.height) * photo.height)),
    ).toBeLessThan(3);

    expect(problems).toEqual([]);
    const record = {
      url: running.url,
      wallMs: Date.now() - started,
      firstLoad,
      pageGzipBytes: pageBytes,
      files: assets.map((s) => ({ file: new URL(s.url).pathname, gzipBytes: s.gzipBytes })),
    };
    writeFileSync(new URL('first-load.json', ARTIFACTS), `${JSON.stringify(record, null, 2)}\n`);
    console.log(
      `playground first load on loopback: DOMContentLoaded ${firstLoad.domContentLoadedMs.toFixed(0)} ms, ` +
        `load ${firstLoad.loadMs.toFixed(0)} ms, connected (info) ${firstLoad.connectedMs.toFixed(0)} ms; ` +
        `JS + CSS ${(pageBytes / 1024).toFixed(1)} kB gzipped`,
    );
  });
});

describe('the playground page on a server that needs an API key and takes small images', () => {
  let running: RunningServer;

  beforeAll(async () => {
    running = await startServer(engine, pageDir, {
      MAGMA_API_KEYS: API_KEY,
      MAGMA_MAX_IMAGE_BYTES: String(64 * 1024),
    });
  });

  afterAll(async () => {
    await running?.server.shutdown();
  });

  it('asks for the key, refuses an oversized file, shows typed errors with a retry where it helps', async () => {
    const { page, problems } = await openPage(running.url);
    const state = () => page.locator('html').getAttribute('data-state');

    // The key prompt, focused; a wrong key brings it back; the key is kept in memory only.
    await page.locator('html[data-state="needs-key"]').waitFor();
    expect(await page.evaluate('document.activeElement.id')).toBe('api-key');
    await page.locator('#api-key').fill('not-the-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await expect.poll(state).toBe('needs-key');
    expect(await page.locator('#key-panel').isVisible()).toBe(true);
    await page.locator('#api-key').fill(API_KEY);
    await page.getByRole('button', { name: 'Use key' }).click();
    await expect.poll(state).toBe('ready');
    expect(await page.locator('#key-panel').isVisible()).toBe(false);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);

    // An image over the server's maxImageBytes is refused before anything is sent.
    await page.locator('#file-input').setInputFiles({
      name: 'big.png',
      mimeType: 'image/png',
      buffer: randomBytes(100 * 1024),
    });
    await expect
      .poll(text(page, '#image-error'))
      .toBe('big.png is 100.0 KiB; this server takes images up to 64.0 KiB');
    expect(await page.locator('#photo').isVisible()).toBe(false);

    // A box typed to reach outside the image: flagged on the page, refused by the server with
    // its typed error (not retryable: no retry button).
    await page.locator('#file-input').setInputFiles(SHAPES_PNG);
    await page.locator('#photo').waitFor({ state: 'visible' });
    expect(await page.locator('#image-error').isVisible()).toBe(false);
    await drawBox(page, RED_CIRCLE);
    const x2 = page.locator('#mark-list li[data-label="1"] input[name=x2]');
    await x2.fill('300');
    await x2.press('Tab');
    await expect
      .poll(text(page, '#mark-list li[data-label="1"] .hint'))
      .toBe('outside the 224×168 image');
    expect(await x2.getAttribute('aria-invalid')).toBe('true');
    await page.locator('#prompt').fill('What color is object #1?');
    await page.locator('#prompt').press('Enter');
    await expect.poll(visible(page, '#ask-error')).toBe(true);
    const refusal = await page.locator('#ask-error-text').textContent();
    expect(refusal).toMatch(
      /^InvalidMarksError: mark 1 \(\d+,\d+\)-\(300,\d+\) extends outside the 224x168 image/,
    );
    expect(refusal).toContain('code INVALID_MARKS · HTTP 400');
    expect(await page.locator('#retry-button').isVisible()).toBe(false);

    // The server gone: a connection error, which a retry may cure, so the button is offered.
    await x2.fill(String(RED_CIRCLE.x2));
    await x2.press('Tab');
    await running.server.shutdown();
    await page.locator('#prompt').press('Enter');
    await expect.poll(visible(page, '#retry-button'), { timeout: 60_000 }).toBe(true);
    expect(await page.locator('#ask-error-text').textContent()).toMatch(/^APIConnectionError: /);

    expect(problems.filter((p) => !/ERR_CONNECTION_REFUSED|Failed to fetch/.test(p))).toEqual([]);
  });
});
