import { selectCropGrid } from '../engine/image-processor.js';
import { targetLabelHeight } from './mark-layout.js';

/**
 * How big marks are drawn. Magma's rule sizes labels in *image* pixels (4% of the shorter side,
 * at most 30 px), but the model never sees image pixels: the processor stretches the image to
 * its crop grid (at most 2x2 x 128 px for magma-tiny-som, 2x2 x 512 px for Magma-8B) with
 * bilinear and no antialiasing. On a 4000x3000 photo a 30 px label ends up ~8 px tall and a
 * 2 px outline falls between samples. So by default the server sizes marks for the model: at
 * least what the bundle declares it reads, measured in the pixels the model sees, and never
 * smaller than Magma's rule. 'magma' keeps Magma's plain rule for callers who need that look.
 */
export type MarkSizingMode = 'model' | 'magma';

/** Smallest label and outline a model reads, in model pixels (config.json `magma_som.marks`). */
export interface MarkMinimums {
  /** Label text height (the "555" box's smaller side, as Magma measures it). */
  readonly labelTextHeight: number;
  readonly outlineWidth: number;
}

/** What the processor does to an image's size: the crop side and crop budget of the bundle. */
export interface ModelResolution {
  readonly cropSize: number;
  readonly maxCrops: number;
}

/** Magma's outline width in image pixels. */
export const MAGMA_OUTLINE_WIDTH = 2;

/**
 * The declaration used when a bundle has none: what magma-tiny-som was trained to read (16 px
 * labels, 2 px outlines at scale >= 1), and about what Magma-8B saw on its training
 * screenshots (30 px labels on ~1920x1080 screens, ~0.5x at its 1024 px grid).
 */
export const DEFAULT_MARK_MINIMUMS: MarkMinimums = { labelTextHeight: 16, outlineWidth: 2 };

/** Sizes to draw with, in image pixels. */
export interface MarkSizing {
  /** Label text height to aim for (the font search's target). */
  readonly labelTextHeight: number;
  readonly outlineWidth: number;
}

/** Magma's plain rule (with this project's 16 px label floor). */
export function magmaMarkSizing(width: number, height: number): MarkSizing {
  return { labelTextHeight: targetLabelHeight(width, height), outlineWidth: MAGMA_OUTLINE_WIDTH };
}

/**
 * Model pixels per image pixel along the axis the processor shrinks most: the image is
 * stretched to cols*S x rows*S, so a feature is at least this many times its image size.
 */
export function modelScale(width: number, height: number, model: ModelResolution): number {
  const grid = selectCropGrid(width, height, model.cropSize, model.maxCrops);
  return Math.min((grid.cols * model.cropSize) / width, (grid.rows * model.cropSize) / height);
}

/**
 * Label and outline sizes, in image pixels, for a width x height image shown to `model`.
 * 'model': each at least `minimums` once scaled to model pixels, and at least Magma's rule.
 */
export function markSizing(
  width: number,
  height: number,
  model: ModelResolution,
  minimums: MarkMinimums = DEFAULT_MARK_MINIMUMS,
  mode: MarkSizingMode = 'model',
): MarkSizing {
  const magma = magmaMarkSizing(width, height);
  if (mode === 'magma') return magma;
  const scale = modelScale(width, height, model);
  return {
    labelTextHeight: Math.max(magma.labelTextHeight, minimums.labelTextHeight / scale),
    // Whole pixels; a hair of slack so 2 / 0.25 stays 8 despite rounding in the scale.
    outlineWidth: Math.max(magma.outlineWidth, Math.ceil(minimums.outlineWidth / scale - 1e-9)),
  };
}
