/**
 * Shape colours, far apart in hue so each name is unambiguous even on small, resized images.
 * Orange is left out: between this red and this yellow it would be easy to confuse.
 */
export const SHAPE_COLORS = {
  red: [220, 30, 30],
  green: [30, 160, 60],
  blue: [30, 80, 220],
  yellow: [240, 200, 0],
  purple: [140, 50, 180],
} as const satisfies Record<string, readonly [number, number, number]>;

export type ColorName = keyof typeof SHAPE_COLORS;

export const COLOR_NAMES = Object.keys(SHAPE_COLORS) as ColorName[];
