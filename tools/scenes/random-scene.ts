import { targetLabelHeight } from '../../packages/server/src/images/mark-layout.js';
import { COLOR_NAMES, SHAPE_COLORS, colorDistance, hslToRgb, jitteredColor } from './colors.js';
import type { ColorName, Rgb } from './colors.js';
import { SHAPE_KINDS, shapeBounds } from './render-scene.js';
import type { ClutterStroke, SceneSpec, Shape, ShapeKind } from './render-scene.js';
import { randomInt } from './rng.js';
import type { Rng } from './rng.js';

/** Pixels between a shape's square and its mark box outline's outer edge. */
export const MARK_PADDING = 4;

export interface MarkBoxRect {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}

/** The mark box around a shape: its square plus `padding` (MARK_PADDING), whole pixels, inside the image. */
export function markBoxFor(
  shape: Shape,
  width: number,
  height: number,
  padding: number = MARK_PADDING,
): MarkBoxRect {
  const b = shapeBounds(shape);
  return {
    x1: Math.max(0, Math.floor(b.x1 - padding)),
    y1: Math.max(0, Math.floor(b.y1 - padding)),
    x2: Math.min(width, Math.ceil(b.x2 + padding)),
    y2: Math.min(height, Math.ceil(b.y2 + padding)),
  };
}

/**
 * Backgrounds of the broad world (magma-tiny-som from 2026-12): 'light' is the classic one; the
 * others are what real images and other renderers bring.
 */
export const BACKGROUND_KINDS = [
  'light',
  'dark',
  'saturated',
  'gradient',
  'noise',
  'cluttered',
] as const;
export type BackgroundKind = (typeof BACKGROUND_KINDS)[number];

/** Look of a broad-world scene; without it a scene is classic (light background, canonical colours). */
export interface SceneStyle {
  readonly background: BackgroundKind;
  /** Draw each shape in a colour jittered within its name's range (colors.ts COLOR_RANGES). */
  readonly hueJitter: boolean;
}

export interface RandomSceneOptions {
  readonly width: number;
  readonly height: number;
  readonly minShapes?: number;
  readonly maxShapes?: number;
  readonly style?: SceneStyle;
  /** Label text height the marks will be drawn with (image px); Magma's rule by default. */
  readonly labelTextHeight?: number;
  /** Padding between a shape and its mark box (markBoxFor); MARK_PADDING by default. */
  readonly markPadding?: number;
}

/**
 * Clear space between two shapes' squares: both mark paddings, then room for a label
 * (plus slack for font-size rounding), so a label can always sit between two neighbours.
 */
export function shapeGap(
  width: number,
  height: number,
  labelTextHeight: number = targetLabelHeight(width, height),
  markPadding: number = MARK_PADDING,
): number {
  return 2 * markPadding + Math.ceil(labelTextHeight) + 4;
}

/** A light, low-saturation background colour (HSL with S <= 0.2, L in [0.85, 0.96]). */
function randomBackground(rng: Rng): Rgb {
  const hue = rng() * 360;
  const saturation = rng() * 0.2;
  const lightness = 0.85 + rng() * 0.11;
  return hslToRgb(hue, saturation, lightness);
}

/** Magma's mark red: a background must not hide the marks. */
const MARK_RED: Rgb = [255, 0, 0];

function darkBackground(rng: Rng): Rgb {
  return hslToRgb(rng() * 360, rng() * 0.3, 0.04 + rng() * 0.18);
}

/** Saturated, in the hue gaps between the named colours (orange, chartreuse, cyan, magenta-pink). */
function saturatedBackground(rng: Rng): Rgb {
  const bands: Array<[number, number]> = [
    [20, 34],
    [68, 86],
    [160, 196],
    [318, 338],
  ];
  const [lo, hi] = bands[Math.floor(rng() * bands.length)]!;
  return hslToRgb(lo + rng() * (hi - lo), 0.45 + rng() * 0.45, 0.42 + rng() * 0.3);
}

function anyBackground(rng: Rng): Rgb {
  const r = rng();
  return r < 0.45
    ? randomBackground(rng)
    : r < 0.8
      ? darkBackground(rng)
      : saturatedBackground(rng);
}

/** Greys and muted tones, thin lines and small dots: never a filled circle, square or triangle of a named colour. */
function randomClutter(rng: Rng, width: number, height: number): ClutterStroke[] {
  const side = Math.min(width, height);
  const count = randomInt(rng, 8, 30);
  const strokes: ClutterStroke[] = [];
  for (let i = 0; i < count; i++) {
    const tone = hslToRgb(rng() * 360, rng() * 0.2, 0.2 + rng() * 0.6);
    if (rng() < 0.6) {
      strokes.push({
        kind: 'line',
        x1: rng() * width,
        y1: rng() * height,
        x2: rng() * width,
        y2: rng() * height,
        width: Math.max(1, side * (0.004 + rng() * 0.016)),
        rgb: tone,
      });
    } else {
      strokes.push({
        kind: 'dot',
        cx: rng() * width,
        cy: rng() * height,
        r: Math.max(1, side * (0.005 + rng() * 0.015)),
        rgb: tone,
      });
    }
  }
  return strokes;
}

/** A broad-world backdrop: its colours (every colour a shape may stand on) and what renderScene needs. */
function styledBackdrop(
  rng: Rng,
  style: SceneStyle,
  width: number,
  height: number,
): Pick<SceneSpec, 'background' | 'gradient' | 'clutter'> & { tones: Rgb[] } {
  for (let attempt = 0; ; attempt++) {
    let backdrop: Pick<SceneSpec, 'background' | 'gradient' | 'clutter'>;
    switch (style.background) {
      case 'light':
        backdrop = { background: randomBackground(rng) };
        break;
      case 'dark':
        backdrop = { background: darkBackground(rng) };
        break;
      case 'saturated':
        backdrop = { background: saturatedBackground(rng) };
        break;
      case 'gradient':
        backdrop = {
          background: anyBackground(rng),
          gradient: { to: anyBackground(rng), angle: rng() * Math.PI * 2 },
        };
        break;
      case 'noise':
        // The noise itself is added to the rendered pixels (sample-scene.ts).
        backdrop = { background: rng() < 0.6 ? randomBackground(rng) : darkBackground(rng) };
        break;
      case 'cluttered':
        backdrop = {
          background: anyBackground(rng),
          clutter: randomClutter(rng, width, height),
        };
        break;
    }
    const tones = [backdrop.background, ...(backdrop.gradient ? [backdrop.gradient.to] : [])];
    if (attempt >= 20 || tones.every((t) => colorDistance(t, MARK_RED) >= 110)) {
      return { ...backdrop, tones };
    }
  }
}

/** A shape colour that stands out from every background tone (canonical colour as the fallback). */
function visibleColor(rng: Rng, name: ColorName, tones: readonly Rgb[], jitter: boolean): Rgb {
  const canonical = SHAPE_COLORS[name];
  if (!jitter) return canonical;
  for (let tries = 0; tries < 12; tries++) {
    const candidate = jitteredColor(rng, name);
    if (tones.every((t) => colorDistance(candidate, t) >= 90)) return candidate;
  }
  return canonical;
}

function isClear(candidate: Shape, placed: readonly Shape[], gap: number): boolean {
  const a = shapeBounds(candidate);
  return placed.every((other) => {
    const b = shapeBounds(other);
    const gapX = Math.max(b.x1 - a.x2, a.x1 - b.x2);
    const gapY = Math.max(b.y1 - a.y2, a.y1 - b.y2);
    return gapX >= gap || gapY >= gap;
  });
}

/** Every (kind, colour) pair, so a scene can use each at most once. */
const STYLES: ReadonlyArray<readonly [ShapeKind, ColorName]> = SHAPE_KINDS.flatMap((kind) =>
  COLOR_NAMES.map((color) => [kind, color] as const),
);

const TRIES_PER_SHAPE = 200;
const SCENE_ATTEMPTS = 20;

/**
 * A random scene: a light background and minShapes..maxShapes shapes of varied size and
 * position. Shapes keep `shapeGap` apart and their mark boxes stay inside the image; no two
 * shapes share both kind and colour, so "the red circle" names one shape. Same rng state,
 * same scene.
 */
export function randomScene(rng: Rng, options: RandomSceneOptions): SceneSpec {
  const { width, height, minShapes = 2, maxShapes = 6, style } = options;
  if (!(minShapes >= 1 && maxShapes >= minShapes && maxShapes <= STYLES.length)) {
    throw new RangeError(`need 1 <= minShapes <= maxShapes <= ${STYLES.length}`);
  }
  const backdrop = style ? styledBackdrop(rng, style, width, height) : undefined;
  const background = backdrop ? backdrop.background : randomBackground(rng);
  const target = randomInt(rng, minShapes, maxShapes);
  const markPadding = options.markPadding ?? MARK_PADDING;
  const gap = shapeGap(width, height, options.labelTextHeight, markPadding);
  const margin = markPadding + 1;
  const side = Math.min(width, height);
  const minSize = Math.max(12, Math.round(0.08 * side));

  for (let attempt = 0; attempt < SCENE_ATTEMPTS; attempt++) {
    // Crowded scenes get smaller shapes, and each failed attempt shrinks them further.
    const roomy = 0.55 * Math.sqrt((width * height) / target) - gap / 2;
    const maxSize = Math.max(minSize, Math.round(Math.min(0.3 * side, roomy) * 0.9 ** attempt));
    const styles = [...STYLES];
    const shapes: Shape[] = [];
    while (shapes.length < target) {
      let placed = false;
      for (let tries = 0; tries < TRIES_PER_SHAPE && !placed; tries++) {
        const size = randomInt(rng, minSize, maxSize);
        const lo = margin + Math.ceil(size / 2);
        const cx = randomInt(rng, lo, width - lo);
        const cy = randomInt(rng, lo, height - lo);
        const styleIndex = Math.floor(rng() * styles.length);
        const [kind, color] = styles[styleIndex]!;
        const shape: Shape = { kind, color, cx, cy, size };
        if (lo <= width - lo && lo <= height - lo && isClear(shape, shapes, gap)) {
          shapes.push(shape);
          styles.splice(styleIndex, 1);
          placed = true;
        }
      }
      if (!placed) break;
    }
    if (shapes.length === target) {
      if (!backdrop) return { width, height, background, shapes };
      const { tones, ...look } = backdrop;
      const colored = shapes.map((shape) => ({
        ...shape,
        rgb: visibleColor(rng, shape.color, tones, style?.hueJitter ?? false),
      }));
      return { width, height, ...look, shapes: colored };
    }
  }
  throw new Error(`could not place ${target} shapes on a ${width}x${height} scene`);
}
