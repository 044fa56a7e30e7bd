import type { Mark, MarkStyle } from './contract/types.js';

/** Box corners in pixels: [x1, y1, x2, y2]. */
export type Box = readonly [x1: number, y1: number, x2: number, y2: number];

/**
 * A mark as the SDK accepts it:
 * - a full mark `{ label, x1, y1, x2, y2 }`;
 * - `{ box: [x1, y1, x2, y2], label?, style? }`;
 * - a bare box `[x1, y1, x2, y2]`.
 * A mark without a label is numbered by its position: marks[0] is #1, marks[1] is #2, ...
 */
export type MarkInput =
  Mark | Box | { readonly box: Box; readonly label?: number; readonly style?: MarkStyle };

/** Turns the accepted forms into contract marks; the schema checks them afterwards. */
export function normalizeMarks(marks: readonly MarkInput[]): unknown[] {
  return marks.map((mark, index) => {
    const positionLabel = index + 1;
    if (Array.isArray(mark)) return boxToMark(mark as unknown[], positionLabel);
    if (typeof mark === 'object' && mark !== null && 'box' in mark) {
      const { box, label, style, ...rest } = mark as {
        box: unknown;
        label?: number;
        style?: MarkStyle;
        [key: string]: unknown;
      };
      const base = Array.isArray(box)
        ? boxToMark(box, label ?? positionLabel)
        : { label: label ?? positionLabel, box };
      return { ...rest, ...base, ...(style === undefined ? {} : { style }) };
    }
    return mark;
  });
}

function boxToMark(box: readonly unknown[], label: number): Record<string, unknown> {
  // A box of the wrong length is passed through as it is, so the schema names the problem.
  if (box.length !== 4) return { label, box };
  const [x1, y1, x2, y2] = box;
  return { label, x1, y1, x2, y2 };
}
