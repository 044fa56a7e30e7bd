import { describe, expect, it } from 'vitest';
import { drawMarks } from '../../src/images/draw-marks.js';
import {
  labelFontSize,
  layoutMarks,
  measureLabelText,
  MIN_LABEL_TEXT_HEIGHT,
} from '../../src/images/mark-layout.js';
import type { PixelRect } from '../../src/images/mark-layout.js';
import { magmaMarkSizing } from '../../src/images/mark-sizing.js';
import type { MarkBox, RgbImage } from '../../src/images/types.js';

const GREY = 200;

function greyImage(width: number, height: number): RgbImage {
  return { data: new Uint8Array(width * height * 3).fill(GREY), width, height };
}

function pixel(image: RgbImage, x: number, y: number): [number, number, number] {
  const i = (y * image.width + x) * 3;
  return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
}

function overlaps(a: PixelRect, b: PixelRect): boolean {
  return (
    Math.min(a.x + a.width, b.x + b.width) > Math.max(a.x, b.x) &&
    Math.min(a.y + a.height, b.y + b.height) > Math.max(a.y, b.y)
  );
}

function rectOf(mark: MarkBox): PixelRect {
  return { x: mark.x1, y: mark.y1, width: mark.x2 - mark.x1, height: mark.y2 - mark.y1 };
}

describe('drawMarks', () => {
  const box: MarkBox = { label: 1, x1: 30, y1: 30, x2: 60, y2: 50 };

  it('draws a 2 px pure red outline inside the box edges, nothing inside', () => {
    const marked = drawMarks(greyImage(100, 80), [box]);
    for (let x = 30; x < 60; x++) {
      for (const y of [30, 31, 48, 49])
        expect(pixel(marked, x, y), `${x},${y}`).toEqual([255, 0, 0]);
    }
    for (let y = 30; y < 50; y++) {
      for (const x of [30, 31, 58, 59])
        expect(pixel(marked, x, y), `${x},${y}`).toEqual([255, 0, 0]);
    }
    // Crisp: the pixels just inside the outline and just outside the box are untouched.
    for (let x = 32; x < 58; x++) {
      expect(pixel(marked, x, 32)).toEqual([GREY, GREY, GREY]);
      expect(pixel(marked, x, 47)).toEqual([GREY, GREY, GREY]);
      expect(pixel(marked, x, 50)).toEqual([GREY, GREY, GREY]);
    }
    for (let y = 32; y < 48; y++) {
      expect(pixel(marked, 29, y)).toEqual([GREY, GREY, GREY]);
      expect(pixel(marked, 60, y)).toEqual([GREY, GREY, GREY]);
    }
  });

  it('puts the number in white on a red rectangle just above the box', () => {
    const marked = drawMarks(greyImage(100, 80), [box]);
    const [label] = layoutMarks(100, 80, [box]).labels;
    // Alone on the image, the first of Magma's spots wins: above-left, touching the box.
    expect(label).toMatchObject({ spot: 'above-left', x: 30, text: '1' });
    expect(label!.y + label!.height).toBe(30);

    let white = 0;
    for (let y = label!.y; y < label!.y + label!.height; y++) {
      for (let x = label!.x; x < label!.x + label!.width; x++) {
        const [r, g, b] = pixel(marked, x, y);
        // Only red, white, and antialiased blends of the two.
        expect(r).toBe(255);
        expect(g).toBe(b);
        if (g > 200) white++;
      }
    }
    expect(white).toBeGreaterThan(5);
    // Nothing drawn left of the label or above it.
    expect(pixel(marked, label!.x - 1, label!.y + 2)).toEqual([GREY, GREY, GREY]);
    expect(pixel(marked, label!.x + 1, label!.y - 1)).toEqual([GREY, GREY, GREY]);
  });

  it('moves a label off another box when a free spot exists', () => {
    const target: MarkBox = { label: 2, x1: 40, y1: 50, x2: 80, y2: 80 };
    // A box right above the target covers both "above" spots.
    const blocker: MarkBox = { label: 9, x1: 30, y1: 20, x2: 90, y2: 49 };
    const layout = layoutMarks(160, 120, [target, blocker]);
    const label = layout.labels[0]!;
    expect(['above-left', 'above-right']).not.toContain(label.spot);
    expect(overlaps(label, rectOf(blocker))).toBe(false);

    // The drawn image agrees: the blocker's interior is untouched.
    const marked = drawMarks(greyImage(160, 120), [target, blocker]);
    for (let y = 22; y < 47; y++) {
      for (let x = 32; x < 88; x++) expect(pixel(marked, x, y)).toEqual([GREY, GREY, GREY]);
    }
  });

  it('avoids labels already placed', () => {
    // Two marks on the same box: only the first label can make the second one move.
    const same = { x1: 80, y1: 80, x2: 120, y2: 120 };
    const { labels } = layoutMarks(200, 200, [
      { label: 1, ...same },
      { label: 2, ...same },
    ]);
    expect(labels[0]!.spot).toBe('above-left');
    expect(labels[1]!.spot).not.toBe('above-left');
    expect(overlaps(labels[0]!, labels[1]!)).toBe(false);
  });

  it('skips spots outside the image and keeps every label inside', () => {
    const corner: MarkBox = { label: 3, x1: 0, y1: 0, x2: 20, y2: 20 };
    const [label] = layoutMarks(64, 64, [corner]).labels;
    expect(label!.spot).not.toMatch(/^above|^left/);
    expect(label!.x).toBeGreaterThanOrEqual(0);
    expect(label!.y).toBeGreaterThanOrEqual(0);

    // A box filling the image leaves no spot: above-left, clamped inside.
    const [fallback] = layoutMarks(64, 64, [{ label: 4, x1: 0, y1: 0, x2: 64, y2: 64 }]).labels;
    expect(fallback).toMatchObject({ spot: 'fallback', x: 0, y: 0 });
  });

  it('sizes labels by digit count like Magma ("5", "55", "555")', () => {
    const marks: MarkBox[] = [
      { label: 7, x1: 10, y1: 40, x2: 40, y2: 70 },
      { label: 12, x1: 100, y1: 40, x2: 130, y2: 70 },
      { label: 345, x1: 190, y1: 40, x2: 220, y2: 70 },
    ];
    const { labels, fontSize } = layoutMarks(300, 300, marks);
    expect(labels.map((l) => l.text)).toEqual(['7', '12', '345']);
    expect(labels[0]!.width).toBe(measureLabelText('5', fontSize).width);
    expect(labels[1]!.width).toBe(measureLabelText('55', fontSize).width);
    expect(labels[2]!.width).toBe(measureLabelText('555', fontSize).width);
    expect(labels[0]!.width).toBeLessThan(labels[1]!.width);
    expect(labels[1]!.width).toBeLessThan(labels[2]!.width);
  });

  it('grows the font with the image, from a readable floor up to Magma’s 30 px cap', () => {
    const sizes = [64, 128, 480, 500, 750, 1000, 3000].map((side) => labelFontSize(side, side));
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]!).toBeGreaterThanOrEqual(sizes[i - 1]!);
    expect(sizes[2]!).toBeGreaterThan(sizes[1]!); // 480 px (4% above the floor) > 128 px
    expect(sizes[4]!).toBeGreaterThan(sizes[2]!); // 750 px > 480 px
    expect(sizes[0]).toBe(sizes[1]); // both at the floor
    expect(sizes[5]).toBe(sizes[6]); // both at the cap

    // The floor: 128 px images still get labels at least MIN_LABEL_TEXT_HEIGHT tall.
    expect(measureLabelText('555', sizes[1]!).height).toBeGreaterThanOrEqual(MIN_LABEL_TEXT_HEIGHT);
    // Magma's rule where it applies: the smallest size whose "555" is >= min(30, 4% of 500).
    const at500 = labelFontSize(500, 800);
    expect(measureLabelText('555', at500).height).toBeGreaterThanOrEqual(20);
    expect(measureLabelText('555', at500 - 1).height).toBeLessThan(20);
    const capped = labelFontSize(3000, 2000);
    expect(measureLabelText('555', capped).height).toBeGreaterThanOrEqual(30);
    expect(measureLabelText('555', capped - 1).height).toBeLessThan(30);
  });

  it('is deterministic and leaves its input alone', () => {
    const image = greyImage(120, 90);
    const before = image.data.slice();
    const marks: MarkBox[] = [
      { label: 1, x1: 10.4, y1: 20.6, x2: 50.2, y2: 60.9 },
      { label: 22, x1: 60, y1: 30, x2: 110, y2: 80 },
    ];
    const first = drawMarks(image, marks);
    const second = drawMarks(image, marks);
    expect(Buffer.from(first.data).equals(Buffer.from(second.data))).toBe(true);
    expect(Buffer.from(image.data).equals(Buffer.from(before))).toBe(true);
    expect(first.data).not.toBe(image.data);
    expect(first.data.buffer.byteLength).toBe(120 * 90 * 3);
  });

  it('draws repeated labels (kept rendered) exactly as the first time, by text, size and colour', () => {
    const at = { x1: 300, y1: 200, x2: 400, y2: 300 };
    const label = (text: number, color?: string) => {
      const marked = drawMarks(greyImage(640, 480), [
        { label: text, ...at, ...(color ? { color } : {}) },
      ]);
      const height = magmaMarkSizing(640, 480).labelTextHeight;
      const { labels } = layoutMarks(640, 480, [{ label: text, ...at }], height);
      const rect = labels[0]!;
      const rows: number[] = [];
      for (let y = rect.y; y < rect.y + rect.height; y++)
        for (let x = rect.x; x < rect.x + rect.width; x++) rows.push(...pixel(marked, x, y));
      return { image: marked, rect, pixels: Buffer.from(rows) };
    };
    const first = label(12);
    const again = label(12);
    expect(Buffer.from(again.image.data).equals(Buffer.from(first.image.data))).toBe(true);
    // same size, other digits: other pixels
    const swapped = label(21);
    expect(swapped.rect.width).toBe(first.rect.width);
    expect(swapped.pixels.equals(first.pixels)).toBe(false);
    // same label, another colour: that colour's rectangle, the same white digits
    const green = label(12, '#00ff00');
    expect(pixel(green.image, green.rect.x, green.rect.y)).toEqual([0, 255, 0]);
    const white = (p: Buffer, i: number) => p[i] === 255 && p[i + 1] === 255 && p[i + 2] === 255;
    for (let i = 0; i < first.pixels.length; i += 3) {
      expect(white(green.pixels, i)).toBe(white(first.pixels, i));
    }
  });

  it('never writes into its input, even when the pixels are a Buffer', () => {
    const data = Buffer.alloc(40 * 40 * 3, GREY);
    const marked = drawMarks({ data, width: 40, height: 40 }, [
      { label: 1, x1: 5, y1: 15, x2: 30, y2: 35 },
    ]);
    expect(pixel(marked, 5, 20)).toEqual([255, 0, 0]);
    expect(data.every((v) => v === GREY)).toBe(true);
  });

  it('uses a mark’s own colour when given', () => {
    const marked = drawMarks(greyImage(100, 80), [{ ...box, color: '#00ff00' }]);
    expect(pixel(marked, 30, 40)).toEqual([0, 255, 0]);
    expect(pixel(marked, 59, 40)).toEqual([0, 255, 0]);
  });

  it('returns an unchanged copy when there are no marks, and rejects malformed images', () => {
    const image = greyImage(8, 8);
    const copy = drawMarks(image, []);
    expect(Array.from(copy.data)).toEqual(Array.from(image.data));
    expect(copy.data).not.toBe(image.data);
    expect(() => drawMarks({ data: new Uint8Array(10), width: 8, height: 8 }, [])).toThrow(
      RangeError,
    );
  });
});
