import sharp from 'sharp';
import { assertRgbImage } from './rgb-canvas.js';
import type { RgbImage } from './types.js';

/** Encodes RGB pixels as PNG (lossless) or JPEG (`quality` 1-100). */
export async function encodeImage(
  image: RgbImage,
  format: 'png' | 'jpeg',
  quality = 90,
): Promise<Uint8Array> {
  assertRgbImage(image);
  const raw = sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: 3 },
  });
  const encoded = format === 'png' ? raw.png() : raw.jpeg({ quality });
  return new Uint8Array(await encoded.toBuffer());
}
