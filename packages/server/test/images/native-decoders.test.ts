import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import type { JpegOptions, Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, decodePixels, ImageError, readImageHeader } from '../../src/images/decode.js';
import type { DecodeLimits } from '../../src/images/decode.js';
import { decodeNative, nativeDecoderStatus } from '../../src/images/native-decoders.js';
import { createRng, randomScene, renderScene } from '../../../../tools/scenes/index.js';

// The native JPEG and PNG decoders must give exactly sharp's pixels (the model sees them), and
// leave to sharp every file it would treat differently. `npm test` builds them first (its
// pretest); a machine without them would serve every image through sharp, which these tests do
// not accept.

const LIMITS: DecodeLimits = { maxBytes: 50_000_000, maxPixels: 50_000_000 };
const SHARP_ONLY: DecodeLimits = { ...LIMITS, imageDecoder: 'sharp' };
const decodeJpegDirect = (bytes: Uint8Array, maxPixels: number) =>
  decodeNative('jpeg', bytes, maxPixels)?.image;
const decodePngDirect = (bytes: Uint8Array, maxPixels: number) =>
  decodeNative('png', bytes, maxPixels)?.image;

/**
 * A synthetic scene (shapes on a textured background: edges and colours that stress chroma);
 * under 64 px, where no scene fits, seeded noise.
 */
function scene(width: number, height: number, seed: number) {
  if (width < 64 || height < 64) {
    const rng = createRng(seed);
    const noise = Buffer.alloc(width * height * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rng() * 256);
    return sharp(noise, { raw: { width, height, channels: 3 } });
  }
  const spec = randomScene(createRng(seed), { width, height, minShapes: 4, maxShapes: 6 });
  const pixels = renderScene(spec);
  return sharp(pixels.data, { raw: { width, height, channels: 3 } });
}

/** Both decoders' results for the same file, each with the decoder that produced it. */
async function bothDecodes(file: Buffer) {
  const header = await readImageHeader(file, LIMITS);
  const direct = await decodePixels(file, LIMITS, header);
  const reference = await decodePixels(file, SHARP_ONLY, header);
  return { direct, reference };
}

/** What decodePixels ends with, pixels or error, comparable across decoders. */
const outcome = (file: Uint8Array, limits: DecodeLimits) =>
  decodePixels(file, limits).then(
    (decoded) => ({ pixels: Buffer.from(decoded.image.data).toString('base64') }),
    (error: unknown) => ({
      error: error instanceof ImageError ? `${error.code}: ${error.message}` : String(error),
    }),
  );

const samePixels = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );

describe('native JPEG decoder', () => {
  it('is built and loads (npm test builds it first)', () => {
    expect(nativeDecoderStatus('jpeg')).toEqual({ available: true });
  });

  const cases: [string, number, number, JpegOptions][] = [
    ['4:2:0, q85', 1024, 768, { quality: 85 }],
    ['4:4:4, q95', 640, 480, { quality: 95, chromaSubsampling: '4:4:4' }],
    ['odd size 4:2:0, q50', 333, 177, { quality: 50 }],
    ['progressive', 500, 375, { quality: 80, progressive: true }],
    ['mozjpeg (trellis, progressive)', 420, 300, { quality: 75, mozjpeg: true }],
    ['optimised Huffman, restart-free, q100', 256, 256, { quality: 100, optimiseCoding: true }],
    ['1x1', 1, 1, { quality: 90 }],
    ['9x7 noise, 4:2:0 (partial blocks)', 9, 7, { quality: 70 }],
    ['wide 3:1', 1500, 500, { quality: 85 }],
  ];
  it.each(cases)('gives sharp exact pixels: %s', async (_name, width, height, options) => {
    const file = await scene(width, height, width + height)
      .jpeg(options)
      .toBuffer();
    const { direct, reference } = await bothDecodes(file);
    expect(direct.decoder).toBe('libjpeg');
    expect(reference.decoder).toBe('sharp');
    expect([direct.width, direct.height]).toEqual([width, height]);
    expect(samePixels(direct.image.data, reference.image.data)).toBe(true);
  });

  it('gives sharp exact pixels for a greyscale JPEG (three equal channels)', async () => {
    const file = await scene(200, 150, 3).greyscale().jpeg({ quality: 85 }).toBuffer();
    const { direct, reference } = await bothDecodes(file);
    expect(direct.decoder).toBe('libjpeg');
    expect(samePixels(direct.image.data, reference.image.data)).toBe(true);
    const [r, g, b] = direct.image.data.subarray(0, 3);
    expect(r).toBe(g);
    expect(g).toBe(b);
  });

  it('leaves to sharp what sharp treats differently: EXIF orientation, ICC profiles, CMYK', async () => {
    const sideways = await scene(240, 120, 5).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const withProfile = await scene(240, 120, 6).jpeg().withIccProfile('p3').toBuffer();
    const cmyk = await scene(240, 120, 7).toColourspace('cmyk').jpeg().toBuffer();
    for (const file of [sideways, withProfile, cmyk]) {
      expect(decodeJpegDirect(file, LIMITS.maxPixels)).toBeUndefined();
      const { direct, reference } = await bothDecodes(file);
      expect(direct.decoder).toBe('sharp');
      expect(samePixels(direct.image.data, reference.image.data)).toBe(true);
    }
    const turned = await decodePixels(sideways, LIMITS);
    expect([turned.width, turned.height]).toEqual([120, 240]);
  });

  it('leaves truncated and corrupt files to sharp, whose answer (pixels or error) stands', async () => {
    const file = await scene(320, 240, 9).jpeg({ quality: 90 }).toBuffer();
    const truncated = file.subarray(0, Math.floor(file.length * 0.6));
    const flipped = Buffer.from(file);
    for (let i = 700; i < 760; i++) flipped[i] = flipped[i]! ^ 0x5a; // damage the entropy-coded data
    const headerOnly = file.subarray(0, 400);
    for (const damaged of [truncated, flipped, headerOnly]) {
      // libjpeg warns about (or fails on) each of these: not the direct path's to answer
      expect(decodeJpegDirect(damaged, LIMITS.maxPixels)).toBeUndefined();
      expect(await outcome(damaged, LIMITS)).toEqual(await outcome(damaged, SHARP_ONLY));
    }
  });

  it('refuses garbage after a JPEG signature as INVALID_IMAGE, as before', async () => {
    const garbage = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(300, 7)]);
    expect(decodeJpegDirect(garbage, LIMITS.maxPixels)).toBeUndefined();
    const error = await decodeImage(garbage, LIMITS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageError);
    expect((error as ImageError).code).toBe('INVALID_IMAGE');
  });

  it('does not decode past the pixel limit: the limit error comes from the header', async () => {
    const file = await scene(400, 300, 11).jpeg().toBuffer();
    expect(decodeJpegDirect(file, 400 * 300 - 1)).toBeUndefined();
    expect(decodeJpegDirect(file, 400 * 300)?.width).toBe(400);
    const error = await decodeImage(file, { ...LIMITS, maxPixels: 400 * 300 - 1 }).catch(
      (e: unknown) => e,
    );
    expect((error as ImageError).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('returns pixels in a buffer of their own, exactly sized and transferable', async () => {
    const file = await scene(300, 200, 12).jpeg().toBuffer();
    const decoded = await decodeImage(file, LIMITS);
    expect(decoded.decoder).toBe('libjpeg');
    const { data } = decoded.image;
    expect(data.byteOffset).toBe(0);
    expect(data.buffer.byteLength).toBe(300 * 200 * 3);
    const copy = structuredClone(data, { transfer: [data.buffer as ArrayBuffer] });
    expect(copy.length).toBe(300 * 200 * 3);
    expect(data.buffer.byteLength).toBe(0); // moved, not copied
  });

  it('takes only Uint8Arrays and numbers', () => {
    expect(() => decodeJpegDirect('not bytes' as unknown as Uint8Array, 10)).toThrow(TypeError);
    expect(decodeJpegDirect(new Uint8Array(0), 10)).toBeUndefined();
  });
});

describe('native PNG decoder', () => {
  it('is built and loads (npm test builds it first)', () => {
    expect(nativeDecoderStatus('png')).toEqual({ available: true });
  });

  const cases: [string, number, number, (image: Sharp) => Sharp][] = [
    ['RGB, adaptive filters', 640, 480, (image) => image.png()],
    ['RGB, stored (level 0)', 333, 177, (image) => image.png({ compressionLevel: 0 })],
    ['RGB, level 9', 1024, 768, (image) => image.png({ compressionLevel: 9 })],
    ['opaque RGBA', 500, 375, (image) => image.ensureAlpha().png()],
    ['palette', 420, 300, (image) => image.png({ palette: true, colours: 64 })],
    ['greyscale', 300, 200, (image) => image.greyscale().png()],
    ['opaque grey + alpha', 300, 200, (image) => image.greyscale().ensureAlpha().png()],
    ['1x1', 1, 1, (image) => image.png()],
    ['9x7 noise', 9, 7, (image) => image.png()],
  ];
  it.each(cases)('gives sharp exact pixels: %s', async (_name, width, height, encode) => {
    const file = await encode(scene(width, height, width * 3 + height)).toBuffer();
    const { direct, reference } = await bothDecodes(file);
    expect(direct.decoder).toBe('libpng');
    expect(reference.decoder).toBe('sharp');
    expect([direct.width, direct.height]).toEqual([width, height]);
    expect(samePixels(direct.image.data, reference.image.data)).toBe(true);
  });

  /** The PNG with one more chunk right after IHDR (8-byte signature + 25-byte IHDR chunk). */
  function withChunk(png: Buffer, type: string, data: Buffer): Buffer {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const chunk = Buffer.alloc(12 + data.length);
    chunk.writeUInt32BE(data.length, 0);
    body.copy(chunk, 4);
    chunk.writeUInt32BE(crc32(body), 8 + data.length);
    return Buffer.concat([png.subarray(0, 33), chunk, png.subarray(33)]);
  }

  it('decodes a PNG marked sRGB natively, and leaves one with gamma to sharp', async () => {
    const png = await scene(200, 150, 28).png().toBuffer();
    const gammaChunk = Buffer.from([0, 0, 0xb1, 0x8f]); // 1/2.2, as written beside sRGB
    const srgb = withChunk(png, 'sRGB', Buffer.from([0]));
    const srgbAndGamma = withChunk(srgb, 'gAMA', gammaChunk);
    const gamma = withChunk(png, 'gAMA', gammaChunk);
    for (const file of [srgb, srgbAndGamma]) {
      const marked = await bothDecodes(file);
      expect(marked.direct.decoder).toBe('libpng');
      expect(samePixels(marked.direct.image.data, marked.reference.image.data)).toBe(true);
    }
    expect(decodePngDirect(gamma, LIMITS.maxPixels)).toBeUndefined();
    const withGamma = await bothDecodes(gamma);
    expect(samePixels(withGamma.direct.image.data, withGamma.reference.image.data)).toBe(true);
  });

  it('leaves to sharp translucent, interlaced, 16-bit and colour-managed PNGs', async () => {
    const translucent = await scene(120, 80, 21).ensureAlpha(0.5).png().toBuffer();
    const oneClearPixel = await sharp(await scene(120, 80, 22).ensureAlpha().raw().toBuffer(), {
      raw: { width: 120, height: 80, channels: 4 },
    })
      .composite([
        {
          input: {
            create: {
              width: 1,
              height: 1,
              channels: 4,
              background: { r: 0, g: 0, b: 0, alpha: 0 },
            },
          },
          left: 119,
          top: 79,
          blend: 'source',
        },
      ])
      .png()
      .toBuffer();
    const interlaced = await scene(120, 80, 23).png({ progressive: true }).toBuffer();
    const deep = await scene(120, 80, 24).toColourspace('rgb16').png().toBuffer();
    const withProfile = await scene(120, 80, 25).withIccProfile('p3').png().toBuffer();
    for (const file of [translucent, oneClearPixel, interlaced, deep, withProfile]) {
      expect(decodePngDirect(file, LIMITS.maxPixels)).toBeUndefined();
      const { direct, reference } = await bothDecodes(file);
      expect(direct.decoder).toBe('sharp');
      expect(samePixels(direct.image.data, reference.image.data)).toBe(true);
    }
  });

  it('leaves truncated and corrupt files to sharp, whose answer (pixels or error) stands', async () => {
    const file = await scene(320, 240, 26).png().toBuffer();
    const truncated = file.subarray(0, Math.floor(file.length * 0.6));
    const badCrc = Buffer.from(file);
    badCrc[file.length - 20] = badCrc[file.length - 20]! ^ 0xff; // inside the last IDAT
    const noEnd = file.subarray(0, file.length - 12); // IEND dropped
    for (const damaged of [truncated, badCrc, noEnd]) {
      expect(decodePngDirect(damaged, LIMITS.maxPixels)).toBeUndefined();
      expect(await outcome(damaged, LIMITS)).toEqual(await outcome(damaged, SHARP_ONLY));
    }
  });

  it('does not decode past the pixel limit', async () => {
    const file = await scene(400, 300, 27).png().toBuffer();
    expect(decodePngDirect(file, 400 * 300 - 1)).toBeUndefined();
    expect(decodePngDirect(file, 400 * 300)?.width).toBe(400);
  });
});

describe("decoding into a buffer the caller keeps (the image worker's scratch)", () => {
  const formats = [
    ['jpeg', (s: Sharp) => s.jpeg({ quality: 85 })],
    ['png', (s: Sharp) => s.png()],
  ] as const;

  it.each(formats)(
    '%s: writes the pixels at the start of a large enough buffer, the same as a buffer of their own',
    async (format, encode) => {
      const file = await encode(scene(300, 200, 31)).toBuffer();
      const own = decodeNative(format, file, LIMITS.maxPixels)!.image;
      const into = new ArrayBuffer(300 * 200 * 3 + 4096);
      new Uint8Array(into).fill(7); // stale bytes from an earlier image must not matter
      const reused = decodeNative(format, file, LIMITS.maxPixels, into)!.image;
      expect(reused.data.buffer).toBe(into);
      expect(reused.data.byteOffset).toBe(0);
      expect(reused.data.length).toBe(300 * 200 * 3);
      expect(Buffer.compare(reused.data, own.data)).toBe(0);
    },
  );

  it.each(formats)(
    '%s: makes a buffer of its own when the one given is too small or detached',
    async (format, encode) => {
      const file = await encode(scene(120, 90, 32)).toBuffer();
      const small = new ArrayBuffer(120 * 90 * 3 - 1);
      const decoded = decodeNative(format, file, LIMITS.maxPixels, small)!.image;
      expect(decoded.data.buffer).not.toBe(small);
      expect(decoded.data.buffer.byteLength).toBe(120 * 90 * 3);
      expect(new Uint8Array(small).every((v) => v === 0)).toBe(true); // not written to
      const detached = new ArrayBuffer(120 * 90 * 3);
      structuredClone(detached, { transfer: [detached] });
      expect(decodeNative(format, file, LIMITS.maxPixels, detached)!.image.data.length).toBe(
        120 * 90 * 3,
      );
    },
  );

  it('takes only an ArrayBuffer to decode into', async () => {
    const file = await scene(40, 30, 33).jpeg().toBuffer();
    const view = new Uint8Array(40 * 30 * 3);
    expect(() =>
      decodeNative('jpeg', file, LIMITS.maxPixels, view as unknown as ArrayBuffer),
    ).toThrow(TypeError);
  });
});
