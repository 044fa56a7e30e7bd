import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { APIConnectionError, InvalidImageError, createClient } from '../src/index.js';
import { createClient as createNodeClient } from '../src/node.js';
import {
  base64ToBytes,
  bufferBase64,
  bytesToBase64,
  bytesToBase64Url,
  nativeBase64,
  portableBase64,
} from '../src/web/base64.js';
import { imageIdOf, randomUuid } from '../src/web/web-crypto.js';
import { FaultServer } from './support/fault-server.js';

// The default entry uses Web APIs only (the browser test runs it in Chromium); these check the
// pieces that replaced Node's Buffer and crypto, and where file paths are read.

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the default entry', () => {
  it('refuses a file path before sending anything, and names the Node entry', async () => {
    const server = await FaultServer.start();
    try {
      await using client = createClient({ baseUrl: server.url });
      const error = await client
        .ask({ image: '/tmp/scene.png', prompt: 'What is in #1?' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidImageError);
      expect((error as Error).message).toContain('@magma-som/sdk/node');
      await using nodeClient = createNodeClient({ baseUrl: server.url });
      const missing = await nodeClient
        .ask({ image: '/nonexistent/scene.png', prompt: 'What is in #1?' })
        .catch((e: unknown) => e);
      // the Node entry's client tried to read it
      expect((missing as Error).message).toContain('ENOENT');
      expect(server.requests).toHaveLength(0);
    } finally {
      await server.close();
    }
  });
});

describe("a browser's network failure", () => {
  // Browsers give no detail (a refused connection and a CORS refusal look alike); Node cannot
  // produce these messages, so a fetch stands in for the browser's.
  it.each(['Failed to fetch', 'NetworkError when attempting to fetch resource.', 'Load failed'])(
    '"%s" is an APIConnectionError, retried',
    async (message) => {
      let calls = 0;
      await using client = createClient({
        baseUrl: 'http://127.0.0.1:9',
        maxRetries: 1,
        retry: { initialDelayMs: 1 },
        fetch: () => {
          calls++;
          return Promise.reject(new TypeError(message));
        },
      });
      const error = await client.info().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(APIConnectionError);
      expect(calls).toBe(2);
    },
  );
});

describe('Web replacements of Buffer and node:crypto', () => {
  it('each base64 codec, and the one the module picked, round-trips bytes of every length, as Buffer encodes them', () => {
    const picked = { encode: bytesToBase64, decode: base64ToBytes };
    const codecs = [picked, portableBase64, bufferBase64(Buffer), nativeBase64()].filter(
      (c) => c !== undefined,
    );
    for (const codec of codecs) {
      for (const length of [0, 1, 2, 3, 100, 0x8000 - 1, 0x8000, 0x8000 * 3 + 7]) {
        const bytes = randomBytes(length);
        // a view at an offset: the codecs must encode the view, not its whole buffer
        const backing = new Uint8Array(length + 3);
        backing.set(bytes, 3);
        const view = backing.subarray(3);
        const encoded = codec.encode(view);
        expect(encoded).toBe(bytes.toString('base64'));
        if (codec === picked) expect(bytesToBase64Url(view)).toBe(bytes.toString('base64url'));
        // Buffer.equals: vitest's deep equality is slow on 100k-element arrays
        expect(Buffer.from(codec.decode(encoded)).equals(bytes)).toBe(true);
        expect(Buffer.from(codec.decode(encoded.replace(/=+$/, ''))).equals(bytes)).toBe(true);
      }
    }
  });

  /** Runs `body` as in a browser: no process.getBuiltinModule, so no node:crypto. */
  async function withoutNodeModules<T>(body: () => Promise<T>): Promise<T> {
    const original = process.getBuiltinModule;
    (process as { getBuiltinModule?: unknown }).getBuiltinModule = undefined;
    try {
      return await body();
    } finally {
      process.getBuiltinModule = original;
    }
  }

  it("an image's id is the server's: img_ and the base64url SHA-256, in Node and in browsers", async () => {
    const bytes = new Uint8Array(randomBytes(1000));
    const { createHash } = await import('node:crypto');
    const expected = `img_${createHash('sha256').update(bytes).digest('base64url')}`;
    expect(await imageIdOf(bytes)).toBe(expected);
    expect(await withoutNodeModules(() => imageIdOf(bytes))).toBe(expected);
  });

  it('without randomUUID or crypto.subtle (a plain-http page) ids still work', async () => {
    const { getRandomValues } = globalThis.crypto;
    vi.stubGlobal('crypto', {
      getRandomValues: getRandomValues.bind(globalThis.crypto),
    });
    const uuid = randomUuid();
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(randomUuid()).not.toBe(uuid);
    expect(await withoutNodeModules(() => imageIdOf(new Uint8Array([1, 2, 3])))).toBeUndefined();
  });
});
