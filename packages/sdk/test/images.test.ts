import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageNotFoundError } from '../src/index.js';
import type { AskInput } from '../src/index.js';
import { createClient } from './support/entry.js';
import { noisePng } from './support/images.js';
import { API_KEY, startRealServer } from './support/real-server.js';
import type { RunningServer } from './support/real-server.js';

// client.images.upload() and reuseImages against the real server and the tiny model (its
// prefix cache on, as configured by default; uploads kept 10 s here so expiry can be seen).

// Long enough that two asks on a loaded 2-core machine finish well inside it.
const TTL_MS = 10_000;

let running: RunningServer;
let image: Buffer;
/** Procedures the clients called, in order. */
const calls: string[] = [];

const recordingFetch: typeof fetch = (input, init) => {
  const path = new URL(String(input)).pathname;
  if (path.startsWith('/trpc/')) calls.push(path.slice('/trpc/'.length));
  return fetch(input, init);
};

function client(reuseImages = false) {
  return createClient({
    baseUrl: running.url,
    apiKey: API_KEY,
    fetch: recordingFetch,
    maxRetries: 0,
    reuseImages,
  });
}

function question(source: AskInput['image'], prompt = 'What colour is mark #1?'): AskInput {
  return { image: source, marks: [[10, 10, 60, 60]], prompt, options: { maxTokens: 4 } };
}

beforeAll(async () => {
  running = await startRealServer({ MAGMA_IMAGE_TTL_MS: String(TTL_MS) });
  image = await noisePng(200, 150);
}, 120_000);

afterAll(async () => {
  await running?.close();
});

describe('images.upload', () => {
  it('stores an image whose id asks use instead of the bytes', async () => {
    await using plain = client();
    const uploaded = await plain.images.upload(image);
    expect(uploaded.imageId).toMatch(/^img_[A-Za-z0-9_-]{43}$/);
    expect(uploaded.bytes).toBe(image.byteLength);
    expect(uploaded.ttlSeconds).toBe(TTL_MS / 1000);
    expect((await plain.images.upload(image)).imageId).toBe(uploaded.imageId);
    const byId = await plain.ask(question(uploaded.imageId));
    const byBytes = await plain.ask({ ...question(image), cache: false });
    expect(byId.answer).toBe(byBytes.answer);
  });

  it('fails with ImageNotFoundError for an unknown id', async () => {
    await using plain = client();
    const error = await plain.ask(question(`img_${'B'.repeat(43)}`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageNotFoundError);
    expect((error as ImageNotFoundError).status).toBe(404);
  });
});

describe('reuseImages', () => {
  it('uploads an image once, asks by id, and uploads again after it expired', async () => {
    await using reusing = client(true);
    // an image no other test asked about: its first question cannot be a hit
    const fresh = await noisePng(220, 160);
    calls.length = 0;
    const first = await reusing.ask(question(fresh, 'What shape is mark #1?'));
    const second = await reusing.ask(question(fresh, 'What colour is mark #1?'));
    expect(calls).toEqual(['uploadImage', 'ask', 'ask']);
    // the second question about the same image and marks reads the server's prefix cache
    expect(second.usage.cachedTokens).toBeGreaterThan(0);
    expect(first.usage.cachedTokens).toBe(0);
    expect(second.usage.cachedTokens).toBeLessThan(second.usage.promptTokens);

    await new Promise((resolve) => setTimeout(resolve, TTL_MS + 500));
    calls.length = 0;
    const third = await reusing.ask(question(fresh, 'What shape is mark #1?'));
    expect(calls).toEqual(['ask', 'uploadImage', 'ask']);
    expect(third.answer).toBe(first.answer);
  }, 60_000);
});
