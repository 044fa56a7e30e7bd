import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { preprocessImage } from '../../src/engine/image-processor.js';
import type { ProcessedImage } from '../../src/engine/image-processor.js';
import { ImagePool } from '../../src/image-pool/pool.js';
import { TINY_PROCESSOR } from './processor.js';
import type { ImageTask } from '../../src/image-pool/task.js';
import { decodeImage, readImageHeader } from '../../src/images/decode.js';
import { drawMarks } from '../../src/images/draw-marks.js';
import { ImageError } from '../../src/images/errors.js';
import { markSizing } from '../../src/images/mark-sizing.js';
import type { MarkBox, RgbImage } from '../../src/images/types.js';

const LIMITS = { maxBytes: 10_000_000, maxPixels: 20_000_000 };
const PROCESSOR = TINY_PROCESSOR;
const MARKS: MarkBox[] = [
  { label: 1, x1: 10, y1: 12, x2: 90, y2: 70 },
  { label: 2, x1: 120, y1: 30, x2: 200, y2: 110, color: '#00ff00' },
];

/** A JPEG whose pixels all differ, stored sideways (EXIF orientation 6: decoded 120x240). */
async function sidewaysJpeg(): Promise<Uint8Array> {
  const width = 240;
  const height = 120;
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 5)) & 0xff;
  return new Uint8Array(
    await sharp(data, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 90 })
      .withMetadata({ orientation: 6 })
      .toBuffer(),
  );
}

async function taskFor(bytes: Uint8Array, marks: MarkBox[] = MARKS): Promise<ImageTask> {
  const header = await readImageHeader(bytes, LIMITS);
  const sizing = markSizing(header.orientedWidth, header.orientedHeight, PROCESSOR);
  return { bytes, limits: LIMITS, header, marks, sizing, processor: PROCESSOR };
}

const pool = new ImagePool({ threads: 2, pixelBudget: 240 * 120 });
afterAll(() => pool.close());

describe('image pool', () => {
  it('reads the oriented size from the header', async () => {
    const header = await readImageHeader(await sidewaysJpeg(), LIMITS);
    expect([header.width, header.height]).toEqual([240, 120]);
    expect([header.orientedWidth, header.orientedHeight]).toEqual([120, 240]);
  });

  it('gives the model exactly the pixels of decode, draw and preprocess on the main thread', async () => {
    const bytes = await sidewaysJpeg();
    const marks: MarkBox[] = [
      { label: 1, x1: 10, y1: 12, x2: 90, y2: 70 },
      { label: 7, x1: 30, y1: 120, x2: 110, y2: 230, color: '#00ff00' },
    ];
    const task = await taskFor(bytes, marks);
    const out = await pool.run({ ...task, markedImageFormat: 'png' }, new AbortController().signal);

    const decoded = await decodeImage(bytes, LIMITS);
    const marked = drawMarks(decoded.image, marks, task.sizing);
    const reference = preprocessImage(marked, PROCESSOR);
    const image = out.image as ProcessedImage;
    expect(image.grid).toEqual(reference.grid);
    expect(
      Buffer.from(image.pixelValues.buffer).equals(Buffer.from(reference.pixelValues.buffer)),
    ).toBe(true);
    expect([out.width, out.height]).toEqual([120, 240]);

    // the marked image returned is the marked pixels, losslessly
    const png = await sharp(out.markedImage!).raw().toBuffer();
    expect(png.equals(Buffer.from(marked.data))).toBe(true);
  });

  it('decodes a plain JPEG with the native decoder in its threads, with the same crops as sharp', async () => {
    const width = 240;
    const height = 120;
    const data = Buffer.alloc(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 6)) & 0xff;
    const bytes = new Uint8Array(
      await sharp(data, { raw: { width, height, channels: 3 } })
        .jpeg({ quality: 80 })
        .toBuffer(),
    );
    const task = await taskFor(bytes);
    const signal = new AbortController().signal;
    const direct = await pool.run(task, signal);
    const viaSharp = await pool.run(
      { ...task, limits: { ...task.limits, imageDecoder: 'sharp' } },
      signal,
    );
    expect(direct.decoder).toBe('libjpeg');
    expect(viaSharp.decoder).toBe('sharp');
    const pixels = (out: typeof direct) =>
      Buffer.from((out.image as ProcessedImage).pixelValues.buffer);
    expect(pixels(direct).equals(pixels(viaSharp))).toBe(true);
    // EXIF orientation is sharp's to apply
    expect((await pool.run(await taskFor(await sidewaysJpeg()), signal)).decoder).toBe('sharp');
  });

  it("decodes image after image into one thread's scratch buffer, each with the crops sharp gives", async () => {
    // one thread whose share of the budget holds these images: the native decoder writes into
    // its scratch every time, over what the previous, larger or smaller, image left there
    const single = new ImagePool({ threads: 1, pixelBudget: 400 * 300 });
    try {
      const signal = new AbortController().signal;
      const jpeg = async (width: number, height: number, seed: number) => {
        const data = Buffer.alloc(width * height * 3);
        for (let i = 0; i < data.length; i++) data[i] = (i * seed + (i >> 6)) & 0xff;
        return new Uint8Array(
          await sharp(data, { raw: { width, height, channels: 3 } })
            .jpeg()
            .toBuffer(),
        );
      };
      for (const [width, height, seed] of [
        [400, 300, 13],
        [240, 120, 7],
        [400, 300, 29],
        [240, 120, 7],
      ] as const) {
        const task = await taskFor(await jpeg(width, height, seed));
        const direct = await single.run(task, signal);
        const viaSharp = await single.run(
          { ...task, limits: { ...task.limits, imageDecoder: 'sharp' } },
          signal,
        );
        expect(direct.decoder).toBe('libjpeg');
        const pixels = (out: typeof direct) =>
          Buffer.from((out.image as ProcessedImage).pixelValues.buffer);
        expect(pixels(direct).equals(pixels(viaSharp)), `${width}x${height}`).toBe(true);
      }
    } finally {
      await single.close();
    }
  });

  it('returns the marked pixels when no processor is given', async () => {
    const bytes = await sidewaysJpeg();
    const { processor: _unused, ...task } = await taskFor(bytes);
    const out = await pool.run(task, new AbortController().signal);
    const decoded = await decodeImage(bytes, LIMITS);
    const marked = drawMarks(decoded.image, MARKS, task.sizing);
    expect(Buffer.from((out.image as RgbImage).data).equals(Buffer.from(marked.data))).toBe(true);
  });

  it('reports a corrupt image as an ImageError with its code', async () => {
    const bytes = await sidewaysJpeg();
    const task = await taskFor(bytes);
    const corrupt = bytes.slice(0, Math.floor(bytes.length / 3));
    const failure = await pool
      .run({ ...task, bytes: corrupt }, new AbortController().signal)
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ImageError);
    expect((failure as ImageError).code).toBe('INVALID_IMAGE');
  });

  it('keeps the pixels in flight within the budget, and an abort leaves the line at once', async () => {
    const task = await taskFor(await sidewaysJpeg());
    // the budget holds one 240x120 image: the others wait their turn
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, pool.budget.inUse)), 1);
    const signal = new AbortController().signal;
    const waiting = new AbortController();
    const runs = [0, 1, 2].map(() => pool.run(task, signal));
    const aborted = pool.run(task, waiting.signal);
    expect(pool.budget.waiting).toBeGreaterThan(0);
    waiting.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    await Promise.all(runs);
    clearInterval(timer);
    expect(peak).toBeLessThanOrEqual(240 * 120);
    expect(pool.budget.inUse).toBe(0);
  });
});
