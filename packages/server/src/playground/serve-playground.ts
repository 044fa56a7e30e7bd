import { join, resolve, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * What the page may load: its own scripts, styles and API only. No inline scripts or styles;
 * images from the page's own blob: URLs (the user's image, the marked image).
 */
export const PLAYGROUND_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Vite names every file under assets/ by its content hash: a changed file is a new URL. */
export const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';
/** index.html (and the few unhashed files) are revalidated on every load (ETag, 304). */
export const REVALIDATE_CACHE = 'no-cache';

/**
 * Serves the built playground at `/`: one GET/HEAD route per file found at start-up (no
 * catch-all, so unknown paths still get the contract's 404), hashed assets cached for a year,
 * the page itself revalidated, every file with the Content-Security-Policy.
 */
export async function servePlayground(app: FastifyInstance, dir: string): Promise<void> {
  const root = resolve(dir);
  const assets = join(root, 'assets') + sep;
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    cacheControl: false,
    setHeaders(res, path) {
      res.setHeader('cache-control', path.startsWith(assets) ? IMMUTABLE_CACHE : REVALIDATE_CACHE);
      res.setHeader('content-security-policy', PLAYGROUND_CSP);
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
    },
  });
}
