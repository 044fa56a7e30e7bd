/** Interleaved 8-bit RGB pixels (3 bytes per pixel, row-major, no padding). */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** A mark as the drawing code needs it: box corners in pixels of the image, and its label. */
export interface MarkBox {
  readonly label: number;
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
  /** Optional per-mark colour override, CSS colour string; Magma's red by default. */
  readonly color?: string;
}
