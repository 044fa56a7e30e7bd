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
 * A label rendered on its own small canvas (filled rectangle, white number on it), then
 * copied in. The rectangle is opaque, so copying is exact, and only label-sized pixel
 * buffers cross between canvas and image, however large the image.
 */
function drawLabel(image: RgbImage, label: PlacedLabel, layout: MarkLayout, color: string): void {
  const canvas = createCanvas(label.width, label.height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = color;
  ctx.fillRect(0, 0, label.width, label.height);
  ctx.font = labelFont(layout.fontSize);
  ctx.textAlign = 'left';
  ctx.textBaseline = 'alphabetic';
  ctx.fillStyle = LABEL_TEXT_COLOR;
  ctx.fillText(label.text, 0, layout.textAscent);
  pasteRgba(image, label, ctx.getImageData(0, 0, label.width, label.height).data);
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
    drawLabel(image, layout.labels[index]!, layout, mark.color ?? MARK_COLOR);
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
