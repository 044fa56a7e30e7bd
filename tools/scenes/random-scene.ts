import { targetLabelHeight } from '../../packages/server/src/images/mark-layout.js';
import { COLOR_NAMES } from './colors.js';
import type { ColorName } from './colors.js';
import { SHAPE_KINDS, shapeBounds } from './render-scene.js';
import type { SceneSpec, Shape, ShapeKind } from './render-scene.js';
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

/** The mark box around a shape: its square plus MARK_PADDING, whole pixels, inside the image. */
export function markBoxFor(shape: Shape, width: number, height: number): MarkBoxRect {
  const b = shapeBounds(shape);
  return {
    x1: Math.max(0, Math.floor(b.x1 - MARK_PADDING)),
    y1: Math.max(0, Math.floor(b.y1 - MARK_PADDING)),
    x2: Math.min(width, Math.ceil(b.x2 + MARK_PADDING)),
    y2: Math.min(height, Math.ceil(b.y2 + MARK_PADDING)),
  };
}

export interface RandomSceneOptions {
  readonly width: number;
  readonly height: number;
  readonly minShapes?: number;
  readonly maxShapes?: number;
}

/**
 * Clear space between two shapes' squares: both mark paddings, then room for a label
 * (plus slack for font-size rounding), so a label can always sit between two neighbours.
 */
export function shapeGap(width: number, height: number): number {
  return 2 * MARK_PADDING + Math.ceil(targetLabelHeight(width, height)) + 4;
}

/** A light, low-saturation background colour (HSL with S <= 0.2, L in [0.85, 0.96]). */
function randomBackground(rng: Rng): [number, number, number] {
  const hue = rng() * 360;
  const saturation = rng() * 0.2;
  const lightness = 0.85 + rng() * 0.11;
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const x = chroma * (1 - Math.abs(((hue / 60) % 2) - 1));
  const sector = Math.floor(hue / 60);
  const [r, g, b] = [
    [chroma, x, 0],
    [x, chroma, 0],
    [0, chroma, x],
    [0, x, chroma],
    [x, 0, chroma],
    [chroma, 0, x],
  ][sector]!;
  const m = lightness - chroma / 2;
  return [r! + m, g! + m, b! + m].map((v) => Math.round(v * 255)) as [number, number, number];
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
  const { width, height, minShapes = 2, maxShapes = 6 } = options;
  if (!(minShapes >= 1 && maxShapes >= minShapes && maxShapes <= STYLES.length)) {
    throw new RangeError(`need 1 <= minShapes <= maxShapes <= ${STYLES.length}`);
  }
  const background = randomBackground(rng);
  const target = randomInt(rng, minShapes, maxShapes);
  const gap = shapeGap(width, height);
  const margin = MARK_PADDING + 1;
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
    if (shapes.length === target) return { width, height, background, shapes };
  }
  throw new Error(`could not place ${target} shapes on a ${width}x${height} scene`);
}
