/**
 * One training/eval sample: a random scene rendered by tools/scenes, some of its shapes marked
 * with the server's own drawMarks at the server's default sizing (labels 1..m in random order),
 * and its description for the question templates.
 *
 * Two worlds. 'classic' is the original one: small images (96-256 px) on light backgrounds in
 * the canonical colours. 'broad' (the default since revision 2026-12-01.1) is what users send:
 * 64-2000 px, aspect ratios 1:3 to 3:1, light, dark, saturated, gradient, noisy and cluttered
 * backgrounds, hue-jittered shapes, JPEG artefacts. Marks are sized for the model (mark-sizing.ts),
 * so in model pixels they look alike at every image size.
 */
import sharp from 'sharp';
import { selectCropGrid } from '../../packages/server/src/engine/image-processor.js';
import { drawMarks } from '../../packages/server/src/images/draw-marks.js';
import { layoutMarks } from '../../packages/server/src/images/mark-layout.js';
import type { PixelRect } from '../../packages/server/src/images/mark-layout.js';
import { markSizing } from '../../packages/server/src/images/mark-sizing.js';
import type { MarkSizing, MarkSizingMode } from '../../packages/server/src/images/mark-sizing.js';
import type { MarkBox, RgbImage } from '../../packages/server/src/images/types.js';
import {
  BACKGROUND_KINDS,
  markBoxFor,
  randomInt,
  randomScene,
  renderScene,
} from '../scenes/index.js';
import type { BackgroundKind, Rng, SceneSpec, SceneStyle } from '../scenes/index.js';
import type { SceneDescription } from './questions.js';
import { shuffled } from './rng.js';

/** Crop side and crop budget of magma-tiny-som (preprocessor_config.json). */
export const CROP_SIZE = 128;
export const MAX_CROPS = 4;
export const MODEL_RESOLUTION = { cropSize: CROP_SIZE, maxCrops: MAX_CROPS } as const;
/** What magma-tiny-som declares it reads (config.json magma_som.marks), in model pixels. */
export const MARK_MINIMUMS = { labelTextHeight: 16, outlineWidth: 2 } as const;

/** Every grid magma-tiny-som's 4-crop budget allows; 1x4 and 4x1 need aspect ratios beyond 3:1. */
export const GRID_NAMES = ['1x1', '1x2', '2x1', '2x2', '1x3', '3x1', '1x4', '4x1'] as const;
export type GridName = (typeof GRID_NAMES)[number];
/** The grids of the broad world's 1:3 to 3:1 aspect ratios: what training and the eval cycle through. */
export const BROAD_GRIDS: readonly GridName[] = ['1x1', '1x2', '2x1', '2x2', '1x3', '3x1'];
/** The grids of the classic world (and of the eval's per-grid table before 2026-12). */
export const CLASSIC_GRIDS: readonly GridName[] = ['1x1', '1x2', '2x1', '2x2'];

/** Image size ranges [minW, maxW, minH, maxH] that Magma's best-fit rule sends to each grid, classic world. */
const CLASSIC_SIZES: Partial<Record<GridName, readonly [number, number, number, number]>> = {
  '1x1': [96, 128, 96, 128],
  '1x2': [170, 256, 96, 128],
  '2x1': [96, 128, 170, 256],
  '2x2': [150, 256, 150, 256],
};

/** Broad world: image sides from 64 to 2000 px, aspect ratios from 1:3 to 3:1. */
export const BROAD_MIN_SIDE = 64;
export const BROAD_MAX_SIDE = 2000;
export const BROAD_MAX_ASPECT = 3;

/** Shares of the broad world's backgrounds. */
const BACKGROUND_WEIGHTS: Record<BackgroundKind, number> = {
  light: 0.3,
  dark: 0.2,
  saturated: 0.1,
  gradient: 0.15,
  noise: 0.12,
  cluttered: 0.13,
};
const JPEG_SHARE = 0.3;
const HUE_JITTER_SHARE = 0.85;

export type World = 'classic' | 'broad';

/** Fixed conditions for a held-out set; anything left out is drawn as in training. */
export interface SceneConditions {
  readonly world?: World;
  readonly size?: { readonly width: number; readonly height: number };
  readonly background?: BackgroundKind;
  /** JPEG quality of the round trip the scene goes through before marks; null = none. */
  readonly jpegQuality?: number | null;
  /** How marks are drawn (the server's `markSizing`); 'model' as the server's default. */
  readonly markSizing?: MarkSizingMode;
}

export interface MarkedScene {
  readonly spec: SceneSpec;
  readonly marks: readonly MarkBox[];
  /** The scene as a user would upload it: rendered, plus any noise and JPEG round trip; no marks. */
  readonly base: RgbImage;
  /** The image as the model sees it: `base` plus the marks the server draws. */
  readonly image: RgbImage;
  readonly sizing: MarkSizing;
  readonly description: SceneDescription;
  readonly grid: GridName;
  readonly background: BackgroundKind;
  readonly jpegQuality: number | null;
  /** Where each mark's box and label were drawn (pixels), by label: the trainer's per-cell targets. */
  readonly drawn: readonly {
    readonly label: number;
    readonly box: PixelRect;
    readonly text: PixelRect;
  }[];
}

/**
 * A scene of 2-6 shapes; small images that cannot hold six get a smaller maximum, and the
 * tiniest (64 px with 16 px labels) may hold only one (still deterministic).
 */
function placeShapes(
  rng: Rng,
  width: number,
  height: number,
  extra: { style?: SceneStyle; labelTextHeight: number; markPadding: number },
): SceneSpec {
  for (let maxShapes = 6; ; maxShapes--) {
    try {
      const minShapes = Math.min(2, maxShapes);
      return randomScene(rng, { width, height, minShapes, maxShapes, ...extra });
    } catch (error) {
      if (maxShapes <= 1) throw error;
    }
  }
}

export function gridName(width: number, height: number): GridName {
  const g = selectCropGrid(width, height, CROP_SIZE, MAX_CROPS);
  const name = `${g.rows}x${g.cols}`;
  if (!(GRID_NAMES as readonly string[]).includes(name))
    throw new RangeError(`a ${width}x${height} image gives grid ${name}`);
  return name as GridName;
}

function weighted<K extends string>(rng: Rng, weights: Record<K, number>): K {
  const keys = Object.keys(weights) as K[];
  let r = rng() * keys.reduce((sum, k) => sum + weights[k], 0);
  for (const k of keys) {
    r -= weights[k];
    if (r < 0) return k;
  }
  return keys[keys.length - 1]!;
}

/** A broad-world size that Magma's best-fit rule sends to `grid` (rejection sampling, deterministic). */
function broadSize(rng: Rng, grid: GridName): { width: number; height: number } {
  const logRange = Math.log(BROAD_MAX_SIDE / BROAD_MIN_SIDE);
  for (let tries = 0; tries < 2000; tries++) {
    const longSide = Math.round(BROAD_MIN_SIDE * Math.exp(rng() * logRange));
    const aspect = Math.exp((rng() * 2 - 1) * Math.log(BROAD_MAX_ASPECT));
    const width = Math.max(BROAD_MIN_SIDE, Math.round(aspect >= 1 ? longSide : longSide * aspect));
    const height = Math.max(BROAD_MIN_SIDE, Math.round(aspect >= 1 ? longSide / aspect : longSide));
    if (gridName(width, height) === grid) return { width, height };
  }
  throw new Error(`no broad-world size found for grid ${grid}`);
}

/** Sensor-like noise, added in place; deterministic for the rng state. */
function addNoise(rng: Rng, image: RgbImage): void {
  const amplitude = 6 + rng() * 22;
  const { data } = image;
  let state = Math.floor(rng() * 2 ** 31) || 1;
  for (let i = 0; i < data.length; i++) {
    // xorshift: a fast per-pixel stream, seeded from the scene rng.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const noise = ((state >>> 0) / 4294967296 - 0.5) * 2 * amplitude;
    data[i] = Math.min(255, Math.max(0, Math.round(data[i]! + noise)));
  }
}

async function jpegRoundTrip(image: RgbImage, quality: number): Promise<RgbImage> {
  const { width, height } = image;
  const raw = { width, height, channels: 3 as const };
  const jpeg = await sharp(image.data, { raw }).jpeg({ quality }).toBuffer();
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`JPEG decoded to ${info.channels} channels`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
}

/** Builds one marked scene for the given grid; deterministic for a given rng state. */
export async function sampleMarkedScene(
  rng: Rng,
  grid: GridName,
  conditions: SceneConditions = {},
): Promise<MarkedScene> {
  const world = conditions.world ?? 'broad';
  let size = conditions.size;
  if (size === undefined) {
    const classic = CLASSIC_SIZES[grid];
    if (world === 'classic') {
      if (!classic) throw new RangeError(`the classic world has no grid ${grid}`);
      const [minW, maxW, minH, maxH] = classic;
      size = { width: randomInt(rng, minW, maxW), height: randomInt(rng, minH, maxH) };
    } else {
      size = broadSize(rng, grid);
    }
  }
  const { width, height } = size;
  const sizing = markSizing(
    width,
    height,
    MODEL_RESOLUTION,
    MARK_MINIMUMS,
    conditions.markSizing ?? 'model',
  );
  const background: BackgroundKind =
    world === 'classic' ? 'light' : (conditions.background ?? weighted(rng, BACKGROUND_WEIGHTS));
  const style: SceneStyle | undefined =
    world === 'classic' ? undefined : { background, hueJitter: rng() < HUE_JITTER_SHARE };
  // Padding between shape and box scales with the outline, so the outline never covers the shape.
  const markPadding =
    world === 'classic'
      ? undefined
      : Math.max(2, Math.round(sizing.outlineWidth * (1 + rng() * 1.5)));
  const spec = placeShapes(rng, width, height, {
    style,
    labelTextHeight: sizing.labelTextHeight,
    markPadding: markPadding ?? 4,
  });
  // Mark at least one shape; about a third of scenes leave some shapes unmarked.
  const n = spec.shapes.length;
  const markedCount = rng() < 0.35 ? randomInt(rng, 1, n) : n;
  const markedIndices = shuffled(
    rng,
    spec.shapes.map((_, i) => i),
  ).slice(0, markedCount);
  const labels = shuffled(
    rng,
    markedIndices.map((_, i) => i + 1),
  );
  const labelOf = new Map(markedIndices.map((shapeIndex, i) => [shapeIndex, labels[i] as number]));
  const marks: MarkBox[] = markedIndices.map((shapeIndex) => ({
    label: labelOf.get(shapeIndex) as number,
    ...markBoxFor(spec.shapes[shapeIndex]!, width, height, markPadding),
  }));

  let base = renderScene(spec);
  if (background === 'noise') addNoise(rng, base);
  const jpegQuality =
    world === 'classic'
      ? null
      : conditions.jpegQuality !== undefined
        ? conditions.jpegQuality
        : rng() < JPEG_SHARE
          ? randomInt(rng, 30, 90)
          : null;
  if (jpegQuality !== null) base = await jpegRoundTrip(base, jpegQuality);

  const image = drawMarks(base, marks, sizing);
  const layout = layoutMarks(width, height, marks, sizing.labelTextHeight);
  const drawn = marks.map((m, i) => {
    const { x, y, width: w, height: h } = layout.labels[i]!;
    return { label: m.label, box: layout.boxes[i]!, text: { x, y, width: w, height: h } };
  });
  const description: SceneDescription = {
    width,
    height,
    objects: spec.shapes.map((s, i) => ({
      shape: s.kind,
      color: s.color,
      cx: s.cx,
      cy: s.cy,
      mark: labelOf.get(i) ?? null,
    })),
  };
  const actual = gridName(width, height);
  if (conditions.size === undefined && actual !== grid)
    throw new Error(`a ${width}x${height} image gives grid ${actual}, not ${grid}`);
  return {
    spec,
    marks,
    base,
    image,
    sizing,
    description,
    grid: actual,
    background,
    jpegQuality,
    drawn,
  };
}

export { BACKGROUND_KINDS };
