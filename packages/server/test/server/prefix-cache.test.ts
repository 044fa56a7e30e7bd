import { AskResponseSchema, ImageUploadResponseSchema } from '@magma-som/schemas';
import type { AskResponse, ImageUploadResponse } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import type { GenerateResult } from '../../src/engine/index.js';
import type { RgbImage } from '../../src/images/types.js';
import { markedScene } from '../engine/helpers/marked-scene.js';
import {
  MODEL_DIR,
  askBody,
  expectTrpcError,
  metric,
  postTrpc,
  startTestServer,
  testImage,
} from './helpers.js';
import type { RunningServer } from './helpers.js';

// Repeated questions about one image through the real server, on the real tiny model with a
// prefix cache: the second question of the same image and marks is served from the cache with
// the answer an uncached ask gets; anything that changes the drawn image is a miss; uploads give
// image ids that asks use instead of the bytes; /metrics counts it all. And, on the engine
// itself, a pixel-less ask whose entry was evicted meanwhile is answered through the full path.

const MIB = 1024 * 1024;

function engineWithCache(prefixCacheBytes: number): Promise<Engine> {
  return Engine.start({
    modelDir: MODEL_DIR,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    prefixCacheBytes,
  });
}

async function ask(url: string, body: unknown): Promise<AskResponse> {
  const response = await postTrpc(url, 'ask', body);
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return AskResponseSchema.parse((JSON.parse(text) as { result: { data: unknown } }).result.data);
}

async function upload(url: string, bytes: Uint8Array): Promise<Response> {
  const form = new FormData();
  form.append('image', new Blob([bytes], { type: 'image/png' }), 'image.png');
  return fetch(`${url}/trpc/uploadImage`, { method: 'POST', body: form });
}

describe('prefix cache through the server', () => {
  let engine: Engine;
  let running: RunningServer;
  let url: string;
  let png: Buffer;

  beforeAll(async () => {
    engine = await engineWithCache(64 * MIB);
    running = await startTestServer(engine, { maxTokens: 8, imageTtlMs: 3_000 });
    url = running.url;
    png = await testImage(320, 240);
  }, 120_000);
  afterAll(async () => {
    await running?.server.shutdown();
    await engine?.close();
  });

  it('serves the second question about an image from the cache, with the uncached answer', async () => {
    const marks = [
      { label: 1, x1: 15, y1: 15, x2: 65, y2: 65 },
      { label: 2, x1: 100, y1: 50, x2: 200, y2: 150 },
    ];
    const first = await ask(url, askBody(png, { marks, prompt: 'What colour is mark #1?' }));
    expect(first.usage.cachedTokens).toBe(0);
    for (const prompt of ['What shape is mark #2?', 'Which mark is the red square?']) {
      const cached = await ask(url, askBody(png, { marks, prompt }));
      const uncached = await ask(url, askBody(png, { marks, prompt, cache: false }));
      expect(cached.usage.cachedTokens).toBeGreaterThan(cached.usage.imageTokens);
      expect(cached.usage.cachedTokens).toBeLessThan(cached.usage.promptTokens);
      expect(cached.timings.visionMs).toBe(0);
      expect(uncached.usage.cachedTokens).toBe(0);
      expect(cached.answer).toBe(uncached.answer);
      expect(cached.usage.promptTokens).toBe(uncached.usage.promptTokens);
      expect(cached.grid).toEqual(uncached.grid);
    }
  });

  it('misses when anything drawn differs: marks, a mark colour, the sizing, the bytes', async () => {
    const base = askBody(png, { prompt: 'What colour is mark #1?' });
    await ask(url, base);
    expect((await ask(url, base)).usage.cachedTokens).toBeGreaterThan(0);
    const mark = { label: 1, x1: 15, y1: 15, x2: 65, y2: 65 };
    const variants = [
      askBody(png, { prompt: base.prompt, marks: [{ ...mark, x2: 66 }] }),
      askBody(png, { prompt: base.prompt, marks: [{ ...mark, style: { color: '#0000ff' } }] }),
      askBody(png, { prompt: base.prompt, markSizing: 'magma' }),
      askBody(await testImage(320, 240, 'jpeg'), { prompt: base.prompt }),
    ];
    for (const variant of variants) expect((await ask(url, variant)).usage.cachedTokens).toBe(0);
  });

  it('returns the marked image on a cached prefix too', async () => {
    const body = askBody(png, { prompt: 'What colour is mark #1?', returnMarkedImage: true });
    await ask(url, body);
    const again = await ask(url, { ...body, prompt: 'What shape is mark #1?' });
    expect(again.usage.cachedTokens).toBeGreaterThan(0);
    expect(again.markedImage?.width).toBe(320);
  });

  it('asks by an uploaded image id, and answers IMAGE_NOT_FOUND for unknown and expired ids', async () => {
    const other = await testImage(300, 200);
    const response = await upload(url, other);
    expect(response.status).toBe(200);
    const uploaded: ImageUploadResponse = ImageUploadResponseSchema.parse(
      ((await response.json()) as { result: { data: unknown } }).result.data,
    );
    expect(uploaded.bytes).toBe(other.byteLength);
    // same bytes, same id
    const again = await upload(url, other);
    expect(
      ((await again.json()) as { result: { data: ImageUploadResponse } }).result.data.imageId,
    ).toBe(uploaded.imageId);
    const prompt = 'What colour is mark #1?';
    const byId = await ask(url, { ...askBody(other, { prompt }), image: uploaded.imageId });
    const byBytes = await ask(url, askBody(other, { prompt, cache: false }));
    expect(byId.answer).toBe(byBytes.answer);
    // the id's key is the bytes' key: a question by bytes now hits the entry the id stored
    const hit = await ask(url, askBody(other, { prompt: 'What shape is mark #1?' }));
    expect(hit.usage.cachedTokens).toBeGreaterThan(0);

    const unknown = `img_${'A'.repeat(43)}`;
    await expectTrpcError(
      await postTrpc(url, 'ask', { ...askBody(other), image: unknown }),
      'IMAGE_NOT_FOUND',
      404,
    );
    // the TTL is 3 s here: unused for longer, the id is gone
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    await expectTrpcError(
      await postTrpc(url, 'ask', { ...askBody(other), image: uploaded.imageId }),
      'IMAGE_NOT_FOUND',
      404,
    );
    // a file that is not an image is refused at upload
    await expectTrpcError(await upload(url, new Uint8Array(100).fill(7)), 'INVALID_IMAGE', 400);
  });

  it('computes the prefix of a new image once when questions about it arrive together', async () => {
    const image = await testImage(330, 250);
    const prompts = [
      'What colour is mark #1?',
      'What shape is mark #1?',
      'What colour is mark #1',
      'Which mark is the red square?',
    ];
    const prepared = await metric(url, 'magma_images_prepared_total');
    const together = await Promise.all(
      prompts.map((prompt) => ask(url, askBody(image, { prompt }))),
    );
    // one computed it; the others waited for it and were served from the cache
    expect(together.filter((r) => r.usage.cachedTokens === 0)).toHaveLength(1);
    expect(await metric(url, 'magma_images_prepared_total')).toBe(prepared + 1);
    for (const [i, response] of together.entries()) {
      const uncached = await ask(url, askBody(image, { prompt: prompts[i]!, cache: false }));
      expect(response.answer).toBe(uncached.answer);
    }
  });

  it('reports hits, misses, evictions and bytes in /metrics', async () => {
    expect(await metric(url, 'magma_prefix_cache_hits_total')).toBeGreaterThanOrEqual(4);
    expect(await metric(url, 'magma_prefix_cache_misses_total')).toBeGreaterThanOrEqual(4);
    expect(await metric(url, 'magma_prefix_cache_evictions_total')).toBe(0);
    const bytes = await metric(url, 'magma_prefix_cache_bytes');
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(64 * MIB);
    expect(await metric(url, 'magma_prefix_cache_budget_bytes')).toBe(64 * MIB);
    expect(bytes).toBe(engine.prefixCacheStats().bytes);
  });
});

describe('prefix cache too small for an entry', () => {
  let engine: Engine;
  let running: RunningServer;

  beforeAll(async () => {
    engine = await engineWithCache(1024);
    running = await startTestServer(engine, { maxTokens: 8 });
  }, 120_000);
  afterAll(async () => {
    await running?.server.shutdown();
    await engine?.close();
  });

  it('answers concurrent questions about one image, each computing its prefix after waiting once', async () => {
    const image = await testImage(320, 240);
    const prompts = ['What colour is mark #1?', 'What shape is mark #1?', 'What colour is mark #1'];
    const together = await Promise.all(
      prompts.map((prompt) => ask(running.url, askBody(image, { prompt }))),
    );
    for (const response of together) expect(response.usage.cachedTokens).toBe(0);
    expect(await metric(running.url, 'magma_prefix_cache_bytes')).toBe(0);
    expect(await metric(running.url, 'magma_images_prepared_total')).toBe(prompts.length);
  });
});

describe('prefix cache in the engine', () => {
  let engine: Engine;
  let entryBytes = 0;
  const scene = (seed: number): RgbImage => markedScene(1024, 768, seed).image;
  const copy = (image: RgbImage): RgbImage => ({ ...image, data: image.data.slice() });

  beforeAll(async () => {
    // one 2x2 entry's size, to size a cache that holds exactly one
    const probe = await engineWithCache(64 * MIB);
    await probe.generate({
      image: scene(1),
      prompt: 'What colour is mark #1?',
      maxTokens: 2,
      prefixKey: 'p',
    });
    entryBytes = probe.prefixCacheStats().bytes;
    await probe.close();
    engine = await engineWithCache(Math.floor(entryBytes * 1.5));
  }, 120_000);
  afterAll(async () => {
    await engine?.close();
  });

  it('answers a pixel-less ask whose entry was evicted meanwhile through the full path', async () => {
    const a = scene(11);
    const b = scene(12);
    const prompt = 'What shape is mark #2?';
    const uncached = await engine.generate({ image: copy(a), prompt, maxTokens: 6 });
    await engine.generate({
      image: copy(a),
      prompt: 'What colour is mark #1?',
      maxTokens: 2,
      prefixKey: 'a',
    });
    expect(engine.hasPrefix('a')).toBe(true);

    // b's miss evicts a in the worker; the cached ask for a is sent before the main thread hears of it
    let loads = 0;
    const evicting = engine.generate({ image: copy(b), prompt, maxTokens: 2, prefixKey: 'b' });
    expect(engine.hasPrefix('a')).toBe(true);
    const cached: Promise<GenerateResult> = engine.generateCached({
      prefixKey: 'a',
      prompt,
      maxTokens: 6,
      loadImage: () => {
        loads++;
        return Promise.resolve(copy(a));
      },
    });
    await evicting;
    const result = await cached;
    expect(loads).toBe(1);
    expect(result.usage.cachedTokens).toBe(0);
    expect(result.text).toBe(uncached.text);
    expect(engine.prefixCacheStats().evictions).toBeGreaterThanOrEqual(1);
    // the resend stored a again: now a real hit, same answer
    expect(engine.hasPrefix('a')).toBe(true);
    const hit = await engine.generateCached({
      prefixKey: 'a',
      prompt,
      maxTokens: 6,
      loadImage: () => Promise.reject(new Error('not needed')),
    });
    expect(hit.usage.cachedTokens).toBeGreaterThan(0);
    expect(hit.text).toBe(uncached.text);
    expect(engine.prefixCacheStats().bytes).toBeLessThanOrEqual(Math.floor(entryBytes * 1.5));
  });

  it('cancels a cached ask like any other', async () => {
    const image = scene(21);
    await engine.generate({
      image: copy(image),
      prompt: 'What colour is mark #1?',
      maxTokens: 2,
      prefixKey: 'c',
    });
    const controller = new AbortController();
    let tokens = 0;
    const result = await engine.generateCached({
      prefixKey: 'c',
      prompt: 'Describe the marked objects.',
      maxTokens: 200,
      loadImage: () => Promise.resolve(copy(image)),
      signal: controller.signal,
      onToken: () => {
        if (++tokens === 1) controller.abort();
      },
    });
    expect(result.finishReason).toBe('cancelled');
    const after = await engine.generateCached({
      prefixKey: 'c',
      prompt: 'What colour is mark #1?',
      maxTokens: 4,
      loadImage: () => Promise.resolve(copy(image)),
    });
    expect(after.usage.cachedTokens).toBeGreaterThan(0);
  });
});
