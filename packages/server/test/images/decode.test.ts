import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, ImageError } from '../../src/images/decode.js';
import { parseImageString } from '../../src/images/image-string.js';
import type { DecodeLimits } from '../../src/images/decode.js';
import type { RgbImage } from '../../src/images/types.js';

const LIMITS: DecodeLimits = { maxBytes: 1_000_000, maxPixels: 1_000_000 };

/** A small image whose every pixel differs, so orientation and channel order are checkable. */
function gradient(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((x / (width - 1)) * 255);
      data[i + 1] = Math.round((y / (height - 1)) * 255);
      data[i + 2] = 100;
    }
  }
  return data;
}

function pixel(image: RgbImage, x: number, y: number): [number, number, number] {
  const i = (y * image.width + x) * 3;
  return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
}

function solid(width: number, height: number, color: { r: number; g: number; b: number }) {
  return sharp({ create: { width, height, channels: 3, background: color } });
}

/** Runs `promise`, expecting an ImageError; returns it. */
async function imageError(promise: Promise<unknown>): Promise<ImageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageError);
  return error as ImageError;
}

describe('decodeImage', () => {
  it('decodes a PNG to exact RGB pixels', async () => {
    const raw = gradient(16, 8);
    const png = await sharp(raw, { raw: { width: 16, height: 8, channels: 3 } })
      .png()
      .toBuffer();
    const decoded = await decodeImage(png, LIMITS);
    expect(decoded.format).toBe('png');
    expect([decoded.width, decoded.height]).toEqual([16, 8]);
    expect(decoded.image.data.length).toBe(16 * 8 * 3);
    expect(Buffer.from(decoded.image.data).equals(raw)).toBe(true);
    // The pixels own their whole buffer, so the engine can transfer it.
    expect(decoded.image.data.buffer.byteLength).toBe(decoded.image.data.length);
  });

  it('decodes a JPEG (lossy: colours close)', async () => {
    const jpeg = await solid(20, 10, { r: 200, g: 40, b: 60 }).jpeg({ quality: 95 }).toBuffer();
    const decoded = await decodeImage(jpeg, LIMITS);
    expect(decoded.format).toBe('jpeg');
    expect([decoded.width, decoded.height]).toEqual([20, 10]);
    const [r, g, b] = pixel(decoded.image, 10, 5);
    expect(Math.abs(r - 200)).toBeLessThanOrEqual(4);
    expect(Math.abs(g - 40)).toBeLessThanOrEqual(4);
    expect(Math.abs(b - 60)).toBeLessThanOrEqual(4);
  });

  it('decodes a lossless WebP exactly', async () => {
    const raw = gradient(12, 9);
    const webp = await sharp(raw, { raw: { width: 12, height: 9, channels: 3 } })
      .webp({ lossless: true })
      .toBuffer();
    const decoded = await decodeImage(webp, LIMITS);
    expect(decoded.format).toBe('webp');
    expect(Buffer.from(decoded.image.data).equals(raw)).toBe(true);
  });

  it('decodes only the first frame of an animated GIF', async () => {
    const red = await solid(8, 6, { r: 255, g: 0, b: 0 }).png().toBuffer();
    const blue = await solid(8, 6, { r: 0, g: 0, b: 255 }).png().toBuffer();
    const gif = await sharp([red, blue], { join: { animated: true } })
      .gif()
      .toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);

    const decoded = await decodeImage(gif, LIMITS);
    expect(decoded.format).toBe('gif');
    expect([decoded.width, decoded.height]).toEqual([8, 6]);
    expect(decoded.image.data.length).toBe(8 * 6 * 3);
    for (let y = 0; y < 6; y++) expect(pixel(decoded.image, 3, y)).toEqual([255, 0, 0]);
  });

  it('applies EXIF orientation', async () => {
    // Stored 4 wide x 2 tall, left half black, right half white; orientation 6 = rotate 90° clockwise.
    const stored = Buffer.alloc(4 * 2 * 3);
    for (let y = 0; y < 2; y++)
      for (let x = 2; x < 4; x++) stored.fill(255, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
    const jpeg = await sharp(stored, { raw: { width: 4, height: 2, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);

    const decoded = await decodeImage(jpeg, LIMITS);
    expect([decoded.width, decoded.height]).toEqual([2, 4]);
    // After rotating clockwise the left (black) half is on top, the white half at the bottom.
    expect(pixel(decoded.image, 0, 0)[0]).toBeLessThan(60);
    expect(pixel(decoded.image, 1, 3)[0]).toBeGreaterThan(200);
  });

  it('flattens transparency onto white', async () => {
    const rgba = Buffer.alloc(2 * 1 * 4);
    rgba.set([0, 0, 255, 0], 0); // fully transparent blue
    rgba.set([0, 0, 255, 255], 4); // opaque blue
    const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    const decoded = await decodeImage(png, LIMITS);
    expect(decoded.image.data.length).toBe(2 * 3);
    expect(pixel(decoded.image, 0, 0)).toEqual([255, 255, 255]);
    expect(pixel(decoded.image, 1, 0)).toEqual([0, 0, 255]);
  });

  it('turns greyscale into three equal channels', async () => {
    const grey = await sharp(Buffer.from([0, 128, 255]), {
      raw: { width: 3, height: 1, channels: 1 },
    })
      .png()
      .toBuffer();
    const decoded = await decodeImage(grey, LIMITS);
    expect(Array.from(decoded.image.data)).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255]);
  });

  it('scales a 16-bit PNG down to 8 bits', async () => {
    const words = new Uint16Array([0, 0, 0, 65535, 32896, 257]);
    // A Uint16Array as raw input is read as 16-bit samples.
    const png = await sharp(words, { raw: { width: 2, height: 1, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(png).metadata()).depth).toBe('ushort');
    const decoded = await decodeImage(png, LIMITS);
    expect(Array.from(decoded.image.data)).toEqual([0, 0, 0, 255, 128, 1]);
  });

  it('refuses truncated bytes as INVALID_IMAGE without leaking decoder text', async () => {
    const png = await sharp(gradient(64, 64), { raw: { width: 64, height: 64, channels: 3 } })
      .png()
      .toBuffer();
    const error = await imageError(decodeImage(png.subarray(0, png.length / 2), LIMITS));
    expect(error.code).toBe('INVALID_IMAGE');
    expect(error.message).not.toMatch(/vips|libpng|\/|\bat\b/i);

    const jpeg = await sharp(gradient(64, 64), { raw: { width: 64, height: 64, channels: 3 } })
      .jpeg()
      .toBuffer();
    expect((await imageError(decodeImage(jpeg.subarray(0, jpeg.length - 200), LIMITS))).code).toBe(
      'INVALID_IMAGE',
    );
  });

  it('refuses corrupt and unknown bytes as INVALID_IMAGE', async () => {
    const png = await solid(32, 32, { r: 1, g: 2, b: 3 }).png().toBuffer();
    const corrupt = Buffer.from(png);
    corrupt.fill(0xab, 40, corrupt.length - 12); // header kept, image data destroyed
    expect((await imageError(decodeImage(corrupt, LIMITS))).code).toBe('INVALID_IMAGE');

    const text = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>');
    const error = await imageError(decodeImage(text, LIMITS));
    expect(error.code).toBe('INVALID_IMAGE');
    expect(error.message).toMatch(/PNG, JPEG, WebP or GIF/);

    const tiff = await solid(4, 4, { r: 1, g: 2, b: 3 }).tiff().toBuffer();
    expect((await imageError(decodeImage(tiff, LIMITS))).code).toBe('INVALID_IMAGE');
    expect((await imageError(decodeImage(new Uint8Array(0), LIMITS))).code).toBe('INVALID_IMAGE');
  });

  it('refuses a decompression bomb from its header, before decoding', async () => {
    // 10000x10000 rather than larger: sharp takes seconds to encode bigger ones on our CPUs.
    const bomb = await sharp({
      create: { width: 10000, height: 10000, channels: 3, background: { r: 0, g: 0, b: 0 } },
      limitInputPixels: false,
    })
      .png()
      .toBuffer();
    expect(bomb.length).toBeLessThan(LIMITS.maxBytes); // a small file ...
    const error = await imageError(
      decodeImage(bomb, { maxBytes: LIMITS.maxBytes, maxPixels: 40_000_000 }),
    );
    expect(error.code).toBe('PAYLOAD_TOO_LARGE'); // ... declaring 100 megapixels (300 MB of RGB)
    // The size in the message comes from the header check, which runs before any decoding.
    expect(error.message).toMatch(/10000x10000/);
  }, 60_000);

  it('refuses an image just over the pixel limit and accepts one at it', async () => {
    const png = await solid(100, 50, { r: 9, g: 9, b: 9 }).png().toBuffer();
    const over = await imageError(decodeImage(png, { maxBytes: 1_000_000, maxPixels: 4999 }));
    expect(over.code).toBe('PAYLOAD_TOO_LARGE');
    const at = await decodeImage(png, { maxBytes: 1_000_000, maxPixels: 5000 });
    expect(at.width * at.height).toBe(5000);
  });

  it('refuses more bytes than maxBytes before looking at them', async () => {
    const garbage = new Uint8Array(2049); // not even an image: the size check comes first
    const error = await imageError(decodeImage(garbage, { maxBytes: 2048, maxPixels: 1_000_000 }));
    expect(error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(error.message).toMatch(/2049 bytes.*2048/);
  });
});

describe('parseImageString', () => {
  const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
  const base64 = Buffer.from(bytes).toString('base64');

  it('reads plain base64 and data URLs of the four image types', () => {
    expect(Array.from(parseImageString(base64))).toEqual(Array.from(bytes));
    for (const type of ['png', 'jpeg', 'webp', 'gif']) {
      expect(Array.from(parseImageString(`data:image/${type};base64,${base64}`))).toEqual(
        Array.from(bytes),
      );
    }
    expect(Array.from(parseImageString(`data:IMAGE/PNG;BASE64,${base64}`))).toEqual(
      Array.from(bytes),
    );
  });

  it('returns bytes in a buffer of their own, small (out of the shared pool) or large', () => {
    const large = new Uint8Array(300_000).map((_, i) => (i * 7) & 255);
    for (const input of [bytes, large]) {
      const decoded = parseImageString(Buffer.from(input).toString('base64'));
      expect(Array.from(decoded)).toEqual(Array.from(input));
      expect(decoded.byteOffset).toBe(0);
      expect(decoded.buffer.byteLength).toBe(input.byteLength);
    }
  });

  it('accepts unpadded base64, as the schema does', () => {
    const unpadded = Buffer.from(bytes.subarray(0, 7)).toString('base64').replace(/=+$/, '');
    expect(Array.from(parseImageString(unpadded))).toEqual(Array.from(bytes.subarray(0, 7)));
  });

  it('ignores whitespace and line breaks in the base64', () => {
    const wrapped = `${base64.slice(0, 4)}\n${base64.slice(4)}  `;
    expect(Array.from(parseImageString(wrapped))).toEqual(Array.from(bytes));
  });

  it('refuses malformed base64, other media types and empty data', () => {
    const cases = [
      'not base64!',
      'abcde', // 4n+1 characters can never be base64
      'ab=c',
      '',
      `data:text/plain;base64,${base64}`,
      `data:image/svg+xml;base64,${base64}`,
      `data:image/png,${base64}`, // not base64-encoded
      'data:image/png;base64,',
    ];
    for (const value of cases) {
      let caught: unknown;
      try {
        parseImageString(value);
      } catch (error) {
        caught = error;
      }
      expect(caught, value).toBeInstanceOf(ImageError);
      expect((caught as ImageError).code).toBe('INVALID_IMAGE');
    }
  });

  it('refuses a payload over maxBytes before decoding it', () => {
    expect(() => parseImageString(base64, { maxBytes: 7 })).toThrow(ImageError);
    try {
      parseImageString(base64, { maxBytes: 7 });
    } catch (error) {
      expect((error as ImageError).code).toBe('PAYLOAD_TOO_LARGE');
    }
    expect(parseImageString(base64, { maxBytes: 8 }).length).toBe(8);
  });

  describe('a string the schema already checked', () => {
    const checked = { checked: true } as const;

    it('decodes plain base64, data URLs, unpadded and line-wrapped payloads as the full parse does', () => {
      const unpadded = base64.replace(/=+$/, '');
      const wrapped = `${base64.slice(0, 4)}\r\n${base64.slice(4)}`;
      for (const value of [
        base64,
        `data:image/png;base64,${base64}`,
        `data:image/jpeg;name=a.jpg;base64,${base64}`,
        unpadded,
        wrapped,
      ]) {
        expect(Array.from(parseImageString(value, checked)), value).toEqual(
          Array.from(parseImageString(value)),
        );
      }
    });

    it('skips the alphabet check (the schema made it), so its result on unchecked garbage differs', () => {
      // what the flag promises: no second pass; the full parse refuses the same string
      expect(() => parseImageString('ab!c', checked)).not.toThrow();
      expect(() => parseImageString('ab!c')).toThrow(ImageError);
    });

    it('sizes a line-wrapped payload without its line breaks', () => {
      const big = new Uint8Array(300).map((_, i) => i);
      const lines = Buffer.from(big)
        .toString('base64')
        .match(/.{1,76}/g)!
        .join('\r\n');
      // 400 characters of base64 plus 10 line breaks: a naive estimate says 307 bytes
      expect(parseImageString(lines, { ...checked, maxBytes: 300 }).length).toBe(300);
      expect(() => parseImageString(lines, { ...checked, maxBytes: 299 })).toThrow(/300 bytes/);
    });
  });
});
