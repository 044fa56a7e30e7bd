import type { Canvas } from '@napi-rs/canvas';
import type { RgbImage } from './types.js';

/** Checks that an image's buffer holds exactly width x height RGB pixels. */
export function assertRgbImage(image: RgbImage): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new RangeError(
      `image data has ${data.length} bytes, expected ${width * height * 3} for ${width}x${height} RGB`,
    );
  }
}

/** The canvas's pixels as RGB (alpha dropped) in a fresh buffer of exactly that size. */
export function rgbFromCanvas(canvas: Canvas): RgbImage {
  const { width, height } = canvas;
  const rgba = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let src = 0, dst = 0; dst < data.length; src += 4, dst += 3) {
    data[dst] = rgba[src]!;
    data[dst + 1] = rgba[src + 1]!;
    data[dst + 2] = rgba[src + 2]!;
  }
  return { data, width, height };
}
