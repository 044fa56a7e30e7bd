/**
 * The marks being drawn, as plain data: boxes in pixels of the image (what the server takes),
 * and the edits the page makes to them. No DOM here, so the rules are tested in Node.
 */

export interface Box {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}

export interface PlacedMark extends Box {
  readonly label: number;
}

export interface Size {
  readonly width: number;
  readonly height: number;
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** Corners a box is resized by. */
export type Corner = 'nw' | 'ne' | 'sw' | 'se';

/** Boxes smaller than this (image pixels, either side) are taken for a click, not a drag. */
export const MIN_BOX_SIDE = 3;

const clamp = (value: number, min: number, max: number): number =>
  Math.min(max, Math.max(min, value));

/** A point inside the image, in whole pixels. */
export function clampPoint(point: Point, size: Size): Point {
  return {
    x: clamp(Math.round(point.x), 0, size.width),
    y: clamp(Math.round(point.y), 0, size.height),
  };
}

/** The box spanned by two corners dragged in any direction, inside the image. */
export function boxFromCorners(a: Point, b: Point, size: Size): Box {
  const p = clampPoint(a, size);
  const q = clampPoint(b, size);
  return {
    x1: Math.min(p.x, q.x),
    y1: Math.min(p.y, q.y),
    x2: Math.max(p.x, q.x),
    y2: Math.max(p.y, q.y),
  };
}

export function isBigEnough(box: Box): boolean {
  return box.x2 - box.x1 >= MIN_BOX_SIDE && box.y2 - box.y1 >= MIN_BOX_SIDE;
}

/** The label a new mark gets: one above the highest in use, from 1 (the classic "#1"). */
export function nextLabel(marks: readonly PlacedMark[]): number {
  return marks.reduce((highest, mark) => Math.max(highest, mark.label), 0) + 1;
}

/** The box moved by (dx, dy), kept whole inside the image. */
export function moveBox<T extends Box>(box: T, dx: number, dy: number, size: Size): T {
  const width = box.x2 - box.x1;
  const height = box.y2 - box.y1;
  const x1 = clamp(Math.round(box.x1 + dx), 0, Math.max(0, size.width - width));
  const y1 = clamp(Math.round(box.y1 + dy), 0, Math.max(0, size.height - height));
  return { ...box, x1, y1, x2: x1 + width, y2: y1 + height };
}

/** The box with one corner dragged to `point`; the opposite corner stays where it is. */
export function resizeBox<T extends Box>(box: T, corner: Corner, point: Point, size: Size): T {
  const fixed: Point = {
    x: corner === 'nw' || corner === 'sw' ? box.x2 : box.x1,
    y: corner === 'nw' || corner === 'ne' ? box.y2 : box.y1,
  };
  const next = boxFromCorners(fixed, point, size);
  return isBigEnough(next) ? { ...box, ...next } : box;
}

/** The box one pixel step wider/taller (or narrower/shorter) at its far edges. */
export function growBox<T extends Box>(box: T, dw: number, dh: number, size: Size): T {
  const x2 = clamp(Math.round(box.x2 + dw), box.x1 + MIN_BOX_SIDE, size.width);
  const y2 = clamp(Math.round(box.y2 + dh), box.y1 + MIN_BOX_SIDE, size.height);
  return { ...box, x2, y2 };
}

/** Labels 1..n in list order (after deletions left gaps, or to restart the count). */
export function renumber(marks: readonly PlacedMark[]): PlacedMark[] {
  return marks.map((mark, index) => ({ ...mark, label: index + 1 }));
}

/** What is wrong with a mark for this image, as the server would see it; empty when fine. */
export function markProblems(mark: Box, size: Size): string[] {
  const problems: string[] = [];
  const values = [mark.x1, mark.y1, mark.x2, mark.y2];
  if (values.some((v) => !Number.isFinite(v) || v < 0)) problems.push('coordinates must be ≥ 0');
  if (!(mark.x1 < mark.x2)) problems.push('x2 must be greater than x1');
  if (!(mark.y1 < mark.y2)) problems.push('y2 must be greater than y1');
  if (mark.x2 > size.width || mark.y2 > size.height) {
    problems.push(`outside the ${size.width}×${size.height} image`);
  }
  return problems;
}
