import { createCanvas } from '@napi-rs/canvas';
import type { SKRSContext2D } from '@napi-rs/canvas';
import { LABEL_FONT_FAMILY, ensureLabelFont } from './font.js';
import type { MarkBox } from './types.js';

/**
 * Where a mark's label goes, Magma's UI-agent rule (agents/ui_agent/util/som.py):
 * label size, font size, and which of 8 spots around the box it takes. Pure geometry plus
 * text measurement; drawing is in draw-marks.ts.
 */

/** Label height Magma aims for: 4% of the shorter image side, at most 30 px. */
export const LABEL_HEIGHT_FRACTION = 0.04;
export const MAX_LABEL_TEXT_HEIGHT = 30;
/**
 * Our floor. Magma starts its font search at 20 px, so on small images its labels never get
 * tiny; 4% of a 96-400 px image would be 4-16 px. A label box 16 px tall (digits about 12 px)
 * is what a small vision trunk learns to read quickly: with a 10 px floor (8 px digits)
 * magma-tiny-som took about 4x the steps to read half the digits (see its model card).
 */
export const MIN_LABEL_TEXT_HEIGHT = 16;
/** Smallest font size tried; the search grows it 1 px at a time. */
const MIN_FONT_SIZE = 6;
/** Large enough for labels sized for the model on very large images (mark-sizing.ts). */
const MAX_FONT_SIZE = 2048;

/** The 8 spots in the order Magma tries them. */
export const LABEL_SPOTS = [
  'above-left',
  'above-right',
  'right-top',
  'right-bottom',
  'below-right',
  'below-left',
  'left-bottom',
  'left-top',
] as const;
export type LabelSpot = (typeof LABEL_SPOTS)[number];

/** An integer rectangle of pixels: columns x..x+width-1, rows y..y+height-1. */
export interface PixelRect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface PlacedLabel extends PixelRect {
  readonly label: number;
  readonly text: string;
  /** The spot taken, or 'fallback' when no spot fits inside the image (above-left, clamped). */
  readonly spot: LabelSpot | 'fallback';
}

export interface MarkLayout {
  /** Font size in px (the em size, as PIL's truetype size). */
  readonly fontSize: number;
  /** Distance from a label's top to the text baseline. */
  readonly textAscent: number;
  /** Each mark's box snapped to whole pixels and clipped to the image, in input order. */
  readonly boxes: readonly PixelRect[];
  /** Each mark's label, in input order. */
  readonly labels: readonly PlacedLabel[];
}

let measureContext: SKRSContext2D | undefined;

function measuringContext(): SKRSContext2D {
  ensureLabelFont();
  measureContext ??= createCanvas(1, 1).getContext('2d');
  return measureContext;
}

export function labelFont(fontSize: number): string {
  return `${fontSize}px ${LABEL_FONT_FAMILY}`;
}

export interface TextBox {
  readonly width: number;
  readonly height: number;
  /** From the box's top to the text baseline. */
  readonly ascent: number;
}

const textBoxCache = new Map<string, TextBox>();

/**
 * Size of a text's box as PIL's `textbbox((0, 0), text)` gives it: from the font's ascender
 * line to the lowest ink, and from the origin to the rightmost ink. Whole pixels.
 */
export function measureLabelText(text: string, fontSize: number): TextBox {
  const key = `${fontSize}:${text}`;
  let box = textBoxCache.get(key);
  if (box === undefined) {
    const ctx = measuringContext();
    ctx.font = labelFont(fontSize);
    const metrics = ctx.measureText(text);
    const ascent = Math.ceil(metrics.fontBoundingBoxAscent);
    box = {
      width: Math.ceil(metrics.actualBoundingBoxRight),
      height: ascent + Math.max(0, Math.ceil(metrics.actualBoundingBoxDescent)),
      ascent,
    };
    textBoxCache.set(key, box);
  }
  return box;
}

/** Label text height aimed for on a width x height image. */
export function targetLabelHeight(width: number, height: number): number {
  const magma = Math.min(MAX_LABEL_TEXT_HEIGHT, LABEL_HEIGHT_FRACTION * Math.min(width, height));
  return Math.max(MIN_LABEL_TEXT_HEIGHT, magma);
}

const fontSizeCache = new Map<number, number>();

/** Magma's search on a width x height image: its plain rule's target (mark-sizing.ts has the others). */
export function labelFontSize(width: number, height: number): number {
  return fontSizeForTextHeight(targetLabelHeight(width, height));
}

/** Magma's search: grow the font until the smaller side of the "555" box reaches the target. */
export function fontSizeForTextHeight(target: number): number {
  const cached = fontSizeCache.get(target);
  if (cached !== undefined) return cached;
  // The "555" box is never taller than ~0.95 em, so no font below 0.75 x target can reach it:
  // start there instead of at 6 px (same answer, far fewer measurements for large labels).
  let fontSize = Math.max(MIN_FONT_SIZE, Math.floor(target * 0.75));
  for (; fontSize < MAX_FONT_SIZE; fontSize++) {
    const box = measureLabelText('555', fontSize);
    if (Math.min(box.width, box.height) >= target) break;
  }
  fontSize = Math.min(fontSize, MAX_FONT_SIZE);
  fontSizeCache.set(target, fontSize);
  return fontSize;
}

/** A box in whole pixels, at least 1 px each way, inside the image. */
function snapBox(mark: MarkBox, width: number, height: number): PixelRect {
  const snap = (a: number, b: number, size: number): [number, number] => {
    let lo = Math.min(Math.max(Math.round(a), 0), size);
    let hi = Math.min(Math.max(Math.round(b), 0), size);
    if (hi <= lo) {
      if (lo < size) hi = lo + 1;
      else lo = hi - 1;
    }
    return [lo, hi];
  };
  const [x1, x2] = snap(mark.x1, mark.x2, width);
  const [y1, y2] = snap(mark.y1, mark.y2, height);
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}

/** Top-left of a w x h label at each spot around a box, in LABEL_SPOTS order. */
function spotOrigins(box: PixelRect, w: number, h: number): Array<[LabelSpot, number, number]> {
  const left = box.x;
  const top = box.y;
  const right = box.x + box.width;
  const bottom = box.y + box.height;
  return [
    ['above-left', left, top - h],
    ['above-right', right - w, top - h],
    ['right-top', right, top],
    ['right-bottom', right, bottom - h],
    ['below-right', right - w, bottom],
    ['below-left', left, bottom],
    ['left-bottom', left - w, bottom - h],
    ['left-top', left - w, top],
  ];
}

function overlapArea(a: PixelRect, b: PixelRect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Smallest gap between one of a0/a1 and one of b0/b1. */
function nearestEdge(a0: number, a1: number, b0: number, b1: number): number {
  return Math.min(Math.abs(a0 - b0), Math.abs(a0 - b1), Math.abs(a1 - b0), Math.abs(a1 - b1));
}

/**
 * Shortest distance between a corner of one rectangle and a corner of the other. A corner
 * picks its x and its y independently, so the nearest pair is the nearest x and nearest y.
 */
function nearestCornerDistance(a: PixelRect, b: PixelRect): number {
  const dx = nearestEdge(a.x, a.x + a.width, b.x, b.x + b.width);
  const dy = nearestEdge(a.y, a.y + a.height, b.y, b.y + b.height);
  return Math.hypot(dx, dy);
}

/**
 * Lays out the labels of `marks` on a width x height image, labels aimed at `labelTextHeight`
 * (Magma's rule by default; see mark-sizing.ts). For each mark in order, the
 * label takes the first spot (inside the image) whose worst overlap with any other mark's
 * box or any label placed before is smallest; Magma's tie-break subtracts 0.0001 x the
 * nearest-corner distance from each overlap, so among equal overlaps the spot farther from
 * its neighbours wins.
 */
export function layoutMarks(
  width: number,
  height: number,
  marks: readonly MarkBox[],
  labelTextHeight: number = targetLabelHeight(width, height),
): MarkLayout {
  if (!(width > 0 && height > 0)) {
    throw new RangeError(`image size must be positive, got ${width}x${height}`);
  }
  const fontSize = fontSizeForTextHeight(labelTextHeight);
  const boxes = marks.map((mark) => snapBox(mark, width, height));
  const labels: PlacedLabel[] = [];
  let textAscent = 0;

  marks.forEach((mark, index) => {
    const text = String(mark.label);
    // Like Magma, every label with the same number of digits gets the same box ("5", "55", ...).
    const size = measureLabelText('5'.repeat(text.length), fontSize);
    textAscent = size.ascent;
    const box = boxes[index]!;
    const others: PixelRect[] = [...boxes.filter((_, i) => i !== index), ...labels];

    let best: PlacedLabel | undefined;
    let bestScore = Infinity;
    for (const [spot, x, y] of spotOrigins(box, size.width, size.height)) {
      if (x < 0 || y < 0 || x + size.width > width || y + size.height > height) continue;
      const rect = { x, y, width: size.width, height: size.height };
      let worst = -(width + height);
      for (const other of others) {
        worst = Math.max(
          worst,
          overlapArea(rect, other) - 0.0001 * nearestCornerDistance(rect, other),
        );
      }
      if (worst < bestScore) {
        bestScore = worst;
        best = { ...rect, label: mark.label, text, spot };
      }
    }

    if (best === undefined) {
      // No spot fits (label larger than the room around the box): above-left, kept inside.
      const x = Math.min(Math.max(box.x, 0), Math.max(0, width - size.width));
      const y = Math.min(Math.max(box.y - size.height, 0), Math.max(0, height - size.height));
      best = {
        x,
        y,
        width: size.width,
        height: size.height,
        label: mark.label,
        text,
        spot: 'fallback',
      };
    }
    labels.push(best);
  });

  if (labels.length === 0) textAscent = measureLabelText('5', fontSize).ascent;
  return { fontSize, textAscent, boxes, labels };
}
