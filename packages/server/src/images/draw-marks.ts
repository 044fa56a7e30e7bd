import { createCanvas } from '@napi-rs/canvas';
import { labelFont, layoutMarks } from './mark-layout.js';
import type { MarkLayout, PixelRect, PlacedLabel } from './mark-layout.js';
import { magmaMarkSizing } from './mark-sizing.js';
import type { MarkSizing } from './mark-sizing.js';
import { assertRgbImage } from './rgb-canvas.js';
import { fillRect, pasteRgba } from './rgb-pixels.js';
import type { Rgb } from './rgb-pixels.js';
import type { MarkBox, RgbImage } from './types.js';

/** Magma's mark colour, (255, 0, 0). */
export const MARK_COLOR = '#ff0000';
export const LABEL_TEXT_COLOR = '#ffffff';
const colorCache = new Map<string, Rgb>();

/** A CSS colour as opaque RGB, resolved by the canvas itself so any CSS syntax works. */
function cssColorToRgb(color: string): Rgb {
  let rgb = colorCache.get(color);
  if (rgb === undefined) {
    const ctx = createCanvas(1, 1).getContext('2d');
    ctx.fillStyle = color;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
    rgb = [r!, g!, b!];
    colorCache.set(color, rgb);
  }
  return rgb;
}

/**
 * The outline as four pixel-aligned strips inside the box, written straight into the pixels:
 * every outline pixel is pure mark colour (a stroked path would straddle pixel edges and blur).
 */
function drawOutline(image: RgbImage, box: PixelRect, color: Rgb, width: number): void {
  const tx = Math.min(width, box.width);
  const ty = Math.min(width, box.height);
  const right = box.x + box.width;
  const bottom = box.y + box.height;
  fillRect(image, { x: box.x, y: box.y, width: box.width, height: ty }, color);
  fillRect(image, { x: box.x, y: bottom - ty, width: box.width, height: ty }, color);
  fillRect(image, { x: box.x, y: box.y, width: tx, height: box.height }, color);
  fillRect(image, { x: right - tx, y: box.y, width: tx, height: box.height }, color);
}

/**
 * Rendered labels (RGBA), by everything that decides their pixels. Marks are numbered 1, 2, 3..
 * at a few sizes, so the same labels come back request after request; rendering one costs a
 * canvas, a text draw and a read-back (0.1-0.15 ms), a hit a map lookup. Bounded by bytes
 * (labels on huge images are large), oldest dropped first; per thread (each image worker).
 */
const LABEL_CACHE_BYTES = 4 * 1024 * 1024;
const labelCache = new Map<string, Uint8ClampedArray>();
let labelCacheBytes = 0;

/**
 * A label rendered on its own small canvas (filled rectangle, white number on it). The
 * rectangle is opaque, so copying it in is exact, and only label-sized pixel buffers cross
 * between canvas and image, however large the image.
 */
function renderLabel(label: PlacedLabel, layout: MarkLayout, color: string): Uint8ClampedArray {
  const key = `${label.text}|${label.width}x${label.height}|${layout.fontSize}|${layout.textAscent}|${color}`;
  const cached = labelCache.get(key);
  if (cached !== undefined) return cached;
  const canvas = createCanvas(label.width, label.height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = color;
  ctx.fillRect(0, 0, label.width, label.height);
  ctx.font = labelFont(layout.fontSize);
  ctx.textAlign = 'left';
  ctx.textBaseline = 'alphabetic';
  ctx.fillStyle = LABEL_TEXT_COLOR;
  ctx.fillText(label.text, 0, layout.textAscent);
  const rgba = ctx.getImageData(0, 0, label.width, label.height).data;
  if (rgba.byteLength <= LABEL_CACHE_BYTES / 4) {
    labelCache.set(key, rgba);
    labelCacheBytes += rgba.byteLength;
    for (const [oldest, pixels] of labelCache) {
      if (labelCacheBytes <= LABEL_CACHE_BYTES) break;
      labelCache.delete(oldest);
      labelCacheBytes -= pixels.byteLength;
    }
  }
  return rgba;
}

/**
 * Draws Set-of-Mark marks the way Magma's UI agent did: a red outline per box (drawn inside
 * it), then per mark its number in white on a red rectangle the size of the text, at the spot
 * chosen by `layoutMarks`. Sizes come from `sizing` (mark-sizing.ts; Magma's plain rule, 2 px
 * outlines, by default). Writes into `image`'s pixels (no full-image copy); same input, same bytes.
 */
export function drawMarksInPlace(
  image: RgbImage,
  marks: readonly MarkBox[],
  sizing: MarkSizing = magmaMarkSizing(image.width, image.height),
): void {
  assertRgbImage(image);
  if (marks.length === 0) return;
  const layout = layoutMarks(image.width, image.height, marks, sizing.labelTextHeight);

  // All outlines first, then labels on top in mark order, as Magma does.
  marks.forEach((mark, index) => {
    drawOutline(
      image,
      layout.boxes[index]!,
      cssColorToRgb(mark.color ?? MARK_COLOR),
      sizing.outlineWidth,
    );
  });
  marks.forEach((mark, index) => {
    const label = layout.labels[index]!;
    pasteRgba(image, label, renderLabel(label, layout, mark.color ?? MARK_COLOR));
  });
}

/** drawMarksInPlace on a copy: returns a new image in a buffer of its own; the input is not modified. */
export function drawMarks(
  image: RgbImage,
  marks: readonly MarkBox[],
  sizing: MarkSizing = magmaMarkSizing(image.width, image.height),
): RgbImage {
  assertRgbImage(image);
  // A fresh buffer of exactly the image's size, safe to transfer to the engine's worker.
  const out: RgbImage = {
    data: new Uint8Array(image.data),
    width: image.width,
    height: image.height,
  };
  drawMarksInPlace(out, marks, sizing);
  return out;
}
