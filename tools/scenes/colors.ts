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

export type Rgb = readonly [number, number, number];

/** HSL (hue in degrees, saturation and lightness in [0, 1]) to 8-bit RGB. */
export function hslToRgb(hue: number, saturation: number, lightness: number): Rgb {
  const h = ((hue % 360) + 360) % 360;
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const x = chroma * (1 - Math.abs(((h / 60) % 2) - 1));
  const [r, g, b] = [
    [chroma, x, 0],
    [x, chroma, 0],
    [0, chroma, x],
    [0, x, chroma],
    [x, 0, chroma],
    [chroma, 0, x],
  ][Math.floor(h / 60)]!;
  const m = lightness - chroma / 2;
  return [r! + m, g! + m, b! + m].map((v) => Math.round(v * 255)) as unknown as Rgb;
}

/**
 * What another renderer may call each name: hue range (degrees) and lightness range. CSS's own
 * "green" (0,128,0) and "purple" (128,0,128) are dark, pure "blue" and "red" are bright; dark
 * yellow reads as olive, so yellow stays light. Training jitters shape colours within these.
 */
export const COLOR_RANGES: Record<ColorName, { hue: [number, number]; light: [number, number] }> = {
  red: { hue: [-8, 8], light: [0.3, 0.6] },
  green: { hue: [100, 145], light: [0.22, 0.55] },
  blue: { hue: [210, 242], light: [0.3, 0.6] },
  yellow: { hue: [46, 58], light: [0.45, 0.58] },
  purple: { hue: [272, 305], light: [0.22, 0.55] },
};

/** A colour another renderer could plausibly call `name`. */
export function jitteredColor(rng: () => number, name: ColorName): Rgb {
  const { hue, light } = COLOR_RANGES[name];
  const at = (range: [number, number]) => range[0] + rng() * (range[1] - range[0]);
  return hslToRgb(at(hue), 0.6 + rng() * 0.4, at(light));
}

/** Euclidean distance in RGB: a cheap stand-in for "is this visibly different". */
export function colorDistance(a: Rgb, b: Rgb): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}
