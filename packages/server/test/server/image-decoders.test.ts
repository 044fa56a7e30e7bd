import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AskResponse } from '@magma-som/schemas';
import type { Engine } from '../../src/engine/index.js';
import { createRng, markBoxFor, randomScene, renderScene } from '../../../../tools/scenes/index.js';
import { askBody, metric, postTrpc, startTestEngine, startTestServer } from './helpers.js';
import type { RunningServer } from './helpers.js';

// The native decoders through the whole server: plain JPEGs and PNGs are decoded by them
// (counted in /metrics), and the model sees what it would have seen through sharp: the same
// marked image and the same answers as a server told MAGMA_IMAGE_DECODER=sharp.

let engine: Engine;
let direct: RunningServer;
let viaSharp: RunningServer;

beforeAll(async () => {
  engine = await startTestEngine();
  direct = await startTestServer(engine, { prefixCacheBytes: 0 });
  viaSharp = await startTestServer(engine, { prefixCacheBytes: 0, imageDecoder: 'sharp' });
}, 120_000);

afterAll(async () => {
  await direct?.server.shutdown();
  await viaSharp?.server.shutdown();
  await engine?.close();
});

async function sceneJpeg(width: number, height: number, seed: number) {
  const spec = randomScene(createRng(seed), { width, height, minShapes: 3, maxShapes: 3 });
  const pixels = renderScene(spec);
  const image = await sharp(pixels.data, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
  const marks = spec.shapes.map((shape, i) => ({
    label: i + 1,
    ...markBoxFor(shape, width, height),
  }));
  return { image, marks };
}

async function ask(url: string, body: object): Promise<AskResponse> {
  const response = await postTrpc(url, 'ask', body);
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return (JSON.parse(text) as { result: { data: AskResponse } }).result.data;
}

const LIBJPEG = 'magma_image_decodes_total{decoder="libjpeg"}';
const LIBPNG = 'magma_image_decodes_total{decoder="libpng"}';
const SHARP = 'magma_image_decodes_total{decoder="sharp"}';

describe('image decoders in the server', () => {
  it('decodes plain JPEGs natively: same marked image and answers as through sharp', async () => {
    const before = {
      direct: [await metric(direct.url, LIBJPEG), await metric(direct.url, SHARP)],
      viaSharp: [await metric(viaSharp.url, LIBJPEG), await metric(viaSharp.url, SHARP)],
    };
    const prompts = ['Describe the marked objects.', 'What colour is #2?'];
    for (const [i, size] of [
      [640, 480],
      [1024, 768],
    ].entries()) {
      const { image, marks } = await sceneJpeg(size[0]!, size[1]!, 40 + i);
      for (const prompt of prompts) {
        const body = askBody(image, {
          prompt,
          marks,
          returnMarkedImage: true,
          options: { maxTokens: 16 },
        });
        const [a, b] = await Promise.all([ask(direct.url, body), ask(viaSharp.url, body)]);
        expect(a.answer).toBe(b.answer);
        expect(a.markedImage?.data).toBeDefined();
        expect(a.markedImage?.data).toBe(b.markedImage?.data);
      }
    }
    expect(await metric(direct.url, LIBJPEG)).toBe(before.direct[0]! + 4);
    expect(await metric(direct.url, SHARP)).toBe(before.direct[1]!);
    expect(await metric(viaSharp.url, LIBJPEG)).toBe(before.viaSharp[0]!);
    expect(await metric(viaSharp.url, SHARP)).toBe(before.viaSharp[1]! + 4);
  });

  it('decodes opaque PNGs natively, translucent ones and WebP through sharp', async () => {
    const { image, marks } = await sceneJpeg(320, 240, 7);
    const png = await sharp(image).png().toBuffer();
    const translucent = await sharp(image).ensureAlpha(0.8).png().toBuffer();
    const webp = await sharp(image).webp({ lossless: true }).toBuffer();
    const before = [await metric(direct.url, LIBPNG), await metric(direct.url, SHARP)];
    for (const file of [png, translucent, webp]) {
      const body = askBody(file, { marks, prompt: 'What colour is #1?', returnMarkedImage: true });
      const [a, b] = await Promise.all([ask(direct.url, body), ask(viaSharp.url, body)]);
      expect(a.answer).toBe(b.answer);
      expect(a.markedImage?.data).toBe(b.markedImage?.data);
    }
    expect(await metric(direct.url, LIBPNG)).toBe(before[0]! + 1);
    expect(await metric(direct.url, SHARP)).toBe(before[1]! + 2);
  });
});
