import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorDataSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/index.js';
import type { MagmaServer, ServingEngine } from '../../src/index.js';
import { findPlaygroundDir } from '../../src/playground/assets-dir.js';
import {
  IMMUTABLE_CACHE,
  PLAYGROUND_CSP,
  REVALIDATE_CACHE,
} from '../../src/playground/serve-playground.js';
import { testConfig } from '../server/helpers.js';

// The static page's routes and headers; no model is needed (the engine never arrives), the
// page in the browser is tested in packages/playground.

const INDEX =
  '<!doctype html><title>playground</title><script type="module" src="./assets/app-Abc123.js"></script>';
const SCRIPT = 'console.log("hashed");';
let dir: string;
let on: MagmaServer;
let off: MagmaServer;

/** An engine that never finishes loading: the server answers HTTP, /ready stays 503. */
const neverLoaded = new Promise<ServingEngine>(() => {});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'playground-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets', 'app-Abc123.js'), SCRIPT);
  [on, off] = await Promise.all([
    // A trailing separator, as a caller may well write it.
    createServer(testConfig(), { engine: neverLoaded, playgroundDir: `${dir}/` }),
    createServer(testConfig({ playground: false }), { engine: neverLoaded, playgroundDir: dir }),
  ]);
});

afterAll(async () => {
  await Promise.all([on?.app.close(), off?.app.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('the playground page at /', () => {
  it('serves index.html at / with the CSP, revalidated on every load', async () => {
    const response = await on.app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body).toBe(INDEX);
    expect(response.headers['content-security-policy']).toBe(PLAYGROUND_CSP);
    expect(response.headers['cache-control']).toBe(REVALIDATE_CACHE);
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers.etag).toBeDefined();
    const again = await on.app.inject({
      method: 'GET',
      url: '/',
      headers: { 'if-none-match': String(response.headers.etag) },
    });
    expect(again.statusCode).toBe(304);
    expect((await on.app.inject({ method: 'HEAD', url: '/' })).statusCode).toBe(200);
  });

  it('allows no inline script, no other origin, no framing', () => {
    expect(PLAYGROUND_CSP).toContain("default-src 'none'");
    expect(PLAYGROUND_CSP).toContain("script-src 'self';");
    expect(PLAYGROUND_CSP).toContain("connect-src 'self'");
    expect(PLAYGROUND_CSP).toContain("frame-ancestors 'none'");
    expect(PLAYGROUND_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });

  it('caches the hashed assets for a year', async () => {
    const response = await on.app.inject({ method: 'GET', url: '/assets/app-Abc123.js' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/javascript/);
    expect(response.headers['cache-control']).toBe(IMMUTABLE_CACHE);
    expect(response.body).toBe(SCRIPT);
    const index = await on.app.inject({ method: 'GET', url: '/index.html' });
    expect(index.headers['cache-control']).toBe(REVALIDATE_CACHE);
  });

  it('leaves other paths to the contract: typed 404s, no files outside the folder', async () => {
    for (const url of [
      '/assets/missing.js',
      '/nope',
      '/assets/../../../etc/passwd',
      '/%2e%2e/package.json',
    ]) {
      const response = await on.app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(404);
      expect(ErrorDataSchema.parse(response.json()).code).toBe('NOT_FOUND');
    }
    const post = await on.app.inject({ method: 'POST', url: '/' });
    expect(post.statusCode).toBeGreaterThanOrEqual(400);
    expect(post.statusCode).toBeLessThan(500);
    expect(ErrorDataSchema.safeParse(post.json()).success).toBe(true);
  });

  it('is not served with MAGMA_PLAYGROUND=false', async () => {
    const response = await off.app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(404);
    expect(ErrorDataSchema.parse(response.json()).code).toBe('NOT_FOUND');
    expect((await off.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});

describe('findPlaygroundDir', () => {
  it("finds playground/ at the root of the module's package, only when it was built", () => {
    const pkg = mkdtempSync(join(tmpdir(), 'server-package-'));
    try {
      writeFileSync(join(pkg, 'package.json'), '{}');
      mkdirSync(join(pkg, 'dist', 'chunks'), { recursive: true });
      const module = pathToFileURL(join(pkg, 'dist', 'chunks', 'server.js')).href;
      expect(findPlaygroundDir(module)).toBeUndefined();
      mkdirSync(join(pkg, 'playground'));
      writeFileSync(join(pkg, 'playground', 'index.html'), INDEX);
      expect(findPlaygroundDir(module)).toBe(join(pkg, 'playground'));
    } finally {
      rmSync(pkg, { recursive: true, force: true });
    }
  });
});
