import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/images/decode.js';
import { encodeImage } from '../../src/images/encode.js';
import type { RgbImage } from '../../src/images/types.js';

const LIMITS = { maxBytes: 1_000_000, maxPixels: 1_000_000 };

function pattern(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
  return { data, width, height };
}

describe('encodeImage', () => {
  it('writes PNG that decodes to the same pixels', async () => {
    const image = pattern(17, 9);
    const png = await encodeImage(image, 'png');
    expect(Array.from(png.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    const decoded = await decodeImage(png, LIMITS);
    expect(decoded.format).toBe('png');
    expect(Array.from(decoded.image.data)).toEqual(Array.from(image.data));
  });

  it('writes JPEG whose size follows the quality setting', async () => {
    const image: RgbImage = { data: new Uint8Array(64 * 64 * 3).fill(128), width: 64, height: 64 };
    const jpeg = await encodeImage(image, 'jpeg');
    expect(Array.from(jpeg.subarray(0, 3))).toEqual([0xff, 0xd8, 0xff]);
    const decoded = await decodeImage(jpeg, LIMITS);
    expect([decoded.width, decoded.height]).toEqual([64, 64]);
    expect(Math.abs(decoded.image.data[100]! - 128)).toBeLessThanOrEqual(2);

    const noisy = pattern(64, 64);
    const low = await encodeImage(noisy, 'jpeg', 20);
    const high = await encodeImage(noisy, 'jpeg', 95);
    expect(low.length).toBeLessThan(high.length);
  });

  it('rejects pixel buffers of the wrong length', async () => {
    await expect(
      encodeImage({ data: new Uint8Array(5), width: 2, height: 2 }, 'png'),
    ).rejects.toThrow(RangeError);
  });
});
