import type { PixelRect } from './mark-layout.js';
import type { RgbImage } from './types.js';

export type Rgb = readonly [number, number, number];

/** The part of a rectangle that lies inside the image (may be empty). */
function clip(
  image: RgbImage,
  rect: PixelRect,
): { x0: number; y0: number; x1: number; y1: number } {
  return {
    x0: Math.max(0, rect.x),
    y0: Math.max(0, rect.y),
    x1: Math.min(image.width, rect.x + rect.width),
    y1: Math.min(image.height, rect.y + rect.height),
  };
}

/** Paints a rectangle of the image in one colour, clipped to the image. */
export function fillRect(image: RgbImage, rect: PixelRect, [r, g, b]: Rgb): void {
  const { x0, y0, x1, y1 } = clip(image, rect);
  for (let y = y0; y < y1; y++) {
    for (let i = (y * image.width + x0) * 3, end = (y * image.width + x1) * 3; i < end; i += 3) {
      image.data[i] = r;
      image.data[i + 1] = g;
      image.data[i + 2] = b;
    }
  }
}

/** Copies opaque RGBA pixels (rect.width x rect.height) into the image at rect, clipped. */
export function pasteRgba(image: RgbImage, rect: PixelRect, rgba: Uint8ClampedArray): void {
  const { x0, y0, x1, y1 } = clip(image, rect);
  for (let y = y0; y < y1; y++) {
    let src = ((y - rect.y) * rect.width + (x0 - rect.x)) * 4;
    for (let i = (y * image.width + x0) * 3, end = (y * image.width + x1) * 3; i < end; i += 3) {
      image.data[i] = rgba[src]!;
      image.data[i + 1] = rgba[src + 1]!;
      image.data[i + 2] = rgba[src + 2]!;
      src += 4;
    }
  }
}
