import { bytesToBase64Url } from './base64.js';

// Web Crypto (globalThis.crypto): Node 20+, Deno, Bun, browsers and edge runtimes all have it,
// though browsers offer randomUUID() and crypto.subtle only on secure origins (https, localhost).

/** A random UUID v4, for idempotency keys. */
export function randomUuid(): string {
  const crypto = globalThis.crypto;
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The part of node:crypto used here, reached without an import, so browser bundles need none. */
interface NodeHashing {
  createHash(algorithm: 'sha256'): {
    update(data: Uint8Array): { digest(): Uint8Array };
  };
}

/** node:crypto where the runtime has process.getBuiltinModule (Node 20.16+, 22.3+), else undefined. */
function nodeHashing(): NodeHashing | undefined {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } })
    .process;
  return runtime?.getBuiltinModule?.('crypto') as NodeHashing | undefined;
}

/**
 * The id the server gives these image bytes ("img_" + base64url SHA-256), or undefined where
 * the runtime offers no crypto.subtle (a plain-http page). Node hashes synchronously: an
 * image's SHA-256 takes microseconds there, less than a crypto.subtle job costs to set up,
 * and it runs on every ask that reuses images.
 */
export async function imageIdOf(bytes: Uint8Array): Promise<string | undefined> {
  const node = nodeHashing();
  if (node !== undefined)
    return `img_${bytesToBase64Url(node.createHash('sha256').update(bytes).digest())}`;
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return undefined;
  const digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return `img_${bytesToBase64Url(new Uint8Array(digest))}`;
}
