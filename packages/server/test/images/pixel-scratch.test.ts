import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { runImageTask } from '../../src/image-pool/task.js';
import type { ImageTask } from '../../src/image-pool/task.js';
import { readImageHeader } from '../../src/images/decode.js';
import { PixelScratch } from '../../src/images/pixel-scratch.js';
import { isProcessedImage } from '../../src/engine/image-processor.js';
import { createRng, randomScene, renderScene } from '../../../../tools/scenes/index.js';

// The image worker decodes every JPEG and PNG into one reused buffer (images/pixel-scratch.ts).
// Whatever the previous image left in it, each task's output must be what a fresh decode gives.

const LIMITS = { maxBytes: 50_000_000, maxPixels: 50_000_000 };
const SIZING = { labelTextHeight: 16, outlineWidth: 2 };

async function taskFor(width: number, height: number, seed: number, format: 'jpeg' | 'png') {
  const spec = randomScene(createRng(seed), { width, height, minShapes: 3, maxShapes: 5 });
  const pixels = renderScene(spec);
  const raw = sharp(pixels.data, { raw: { width, height, channels: 3 } });
  const bytes = new Uint8Array(await (format === 'png' ? raw.png() : raw.jpeg()).toBuffer());
  const task: ImageTask = {
    bytes,
    limits: LIMITS,
    header: await readImageHeader(bytes, LIMITS),
    marks: [{ label: 1, x1: 4, y1: 4, x2: Math.floor(width / 2), y2: Math.floor(height / 2) }],
    sizing: SIZING,
    processor: {
      cropSize: 128,
      maxCrops: 4,
      imageMean: [0.48145466, 0.4578275, 0.40821073],
      imageStd: [0.26862954, 0.26130258, 0.27577711],
    },
  };
  return task;
}

function crops(result: Awaited<ReturnType<typeof runImageTask>>): Float32Array {
  if (!result.ok) throw new Error(result.message);
  const image = result.output.image;
  if (!isProcessedImage(image)) throw new Error('expected crops');
  return image.pixelValues;
}

describe('PixelScratch', () => {
  it('keeps one buffer, grows it when an image needs more, and lets it go', () => {
    const scratch = new PixelScratch();
    const first = new ArrayBuffer(1000);
    scratch.keep(first);
    scratch.keep(new ArrayBuffer(800)); // smaller: the one held stays
    expect(scratch.held).toBe(first);
    const grown = new ArrayBuffer(5000);
    scratch.keep(grown);
    expect(scratch.held).toBe(grown);
    expect(scratch.heldBytes).toBe(5000);
    scratch.release();
    expect(scratch.heldBytes).toBe(0);
  });

  it('does not grow for an image the native decoders leave to sharp', async () => {
    const scratch = new PixelScratch();
    const pixels = Buffer.alloc(320 * 240 * 3, 90);
    const sideways = new Uint8Array(
      await sharp(pixels, { raw: { width: 320, height: 240, channels: 3 } })
        .jpeg()
        .withMetadata({ orientation: 6 })
        .toBuffer(),
    );
    const task = { ...(await taskFor(320, 240, 6, 'jpeg')), bytes: sideways };
    const result = await runImageTask(
      { ...task, header: await readImageHeader(sideways, LIMITS) },
      scratch,
    );
    expect(result.ok && result.output.decoder).toBe('sharp');
    expect(scratch.heldBytes).toBe(0);
  });

  it('holds no more than its limit: a larger image gets a buffer of its own', async () => {
    const scratch = new PixelScratch(200 * 150 * 3);
    expect(scratch.fits(200 * 150 * 3)).toBe(true);
    scratch.keep(new ArrayBuffer(200 * 150 * 3 + 1));
    expect(scratch.heldBytes).toBe(0);
    const large = await taskFor(640, 480, 4, 'jpeg');
    const reused = crops(await runImageTask(large, scratch));
    expect(scratch.heldBytes).toBe(0);
    expect(
      Buffer.compare(
        Buffer.from(reused.buffer),
        Buffer.from(crops(await runImageTask(large)).buffer),
      ),
    ).toBe(0);
    await runImageTask(await taskFor(200, 150, 5, 'png'), scratch);
    expect(scratch.heldBytes).toBe(200 * 150 * 3);
  });

  it('gives each task of a sequence the crops a fresh decode gives, whatever came before', async () => {
    const scratch = new PixelScratch();
    const tasks = [
      await taskFor(640, 480, 1, 'jpeg'),
      await taskFor(200, 150, 2, 'png'), // smaller: the scratch's tail still holds the first image
      await taskFor(800, 300, 3, 'jpeg'),
      await taskFor(200, 150, 2, 'png'), // again, after a larger one
    ];
    for (const task of tasks) {
      const reused = crops(await runImageTask(task, scratch));
      const fresh = crops(await runImageTask(task));
      expect(Buffer.compare(Buffer.from(reused.buffer), Buffer.from(fresh.buffer))).toBe(0);
      // the output never is the scratch itself: it leaves the worker
      expect(reused.buffer).not.toBe(scratch.held);
    }
    expect(scratch.heldBytes).toBe(640 * 480 * 3);
  });
});
