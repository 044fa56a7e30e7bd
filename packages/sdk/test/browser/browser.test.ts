import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, startRealServer } from '../support/real-server.js';
import type { RunningServer } from '../support/real-server.js';
import type { AskAppResult } from './ask-app.js';

// The SDK in a browser: a small app bundled by esbuild for the browser (so the default entry must
// hold no Node built-ins), loaded from one origin into headless Chromium, asking the real server
// on another origin (CORS) about the classic shapes scene and streaming the answer.

/** The budget for a minimal ask app, gzipped. */
const MAX_GZIP_BYTES = 60 * 1024;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const assets = new URL('../../../../examples/assets/', import.meta.url);

let bundle: string;
let page: { server: Server; origin: string };
let api: RunningServer;
let browser: Browser;

/** Serves the app's page, its script and the scene image: the page's own origin. */
async function servePage(files: Record<string, { type: string; body: string | Buffer }>) {
  const server = createServer((request, response) => {
    const file = files[new URL(request.url ?? '/', 'http://page').pathname];
    if (!file) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': file.type }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

beforeAll(async () => {
  const built = await build({
    entryPoints: [new URL('./ask-app.ts', import.meta.url).pathname],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    // the workspace's SDK from source; the "browser" condition picks its default (Web) entry
    conditions: ['@magma-som/source'],
    logLevel: 'silent',
  });
  bundle = built.outputFiles[0]!.text;
  page = await servePage({
    '/': {
      type: 'text/html',
      body: '<!doctype html><title>ask</title><script type="module" src="/app.js"></script>',
    },
    '/app.js': { type: 'text/javascript', body: bundle },
    '/shapes.png': { type: 'image/png', body: await readFile(new URL('shapes.png', assets)) },
    // Chromium asks for one; a 404 would show up as a console error
    '/favicon.ico': { type: 'image/x-icon', body: '' },
  });
  api = await startRealServer({ MAGMA_CORS_ORIGINS: page.origin });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await api?.close();
  await new Promise((resolve) => page?.server.close(resolve));
});

describe('the SDK in a browser', () => {
  it(`a minimal ask app bundles for the browser in <= ${MAX_GZIP_BYTES / 1024} kB gzipped`, () => {
    const gzipped = gzipSync(bundle).length;
    console.log(
      `browser bundle of test/browser/ask-app.ts: ${bundle.length} B minified, ${gzipped} B gzipped`,
    );
    expect(bundle).not.toMatch(/["']node:/);
    expect(gzipped).toBeLessThanOrEqual(MAX_GZIP_BYTES);
  });

  it('streams the answer in Chromium from a server on another origin: #1 is red', async () => {
    const scene = JSON.parse(await readFile(new URL('shapes.json', assets), 'utf8')) as {
      marks: number[][];
    };
    const tab = await browser.newPage();
    const problems: string[] = [];
    tab.on('pageerror', (error) => problems.push(error.message));
    tab.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    const query = new URLSearchParams({
      server: api.url,
      apiKey: API_KEY,
      image: '/shapes.png',
      marks: JSON.stringify(scene.marks),
      prompt: 'What color is object #1?',
    });
    await tab.goto(`${page.origin}/?${query}`);
    const handle = await tab.waitForFunction(
      () => (globalThis as { askResult?: unknown }).askResult,
      undefined,
      { timeout: 150_000 },
    );
    const result = (await handle.jsonValue()) as AskAppResult;
    expect(problems).toEqual([]);
    expect(result.error).toBeUndefined();
    expect(result.answer?.trim()).toBe('red');
    expect(result.tokens.length).toBeGreaterThanOrEqual(1);
    expect(result.tokens.join('')).toBe(result.answer);
  });
});
