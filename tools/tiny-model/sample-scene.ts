/**
 * One training/eval sample: a random scene rendered by tools/scenes, some of its shapes marked
 * with the server's own drawMarks (labels 1..m in random order), and its description for the
 * question templates. Image sizes are drawn per crop grid so 1x1, 1x2, 2x1 and 2x2 all occur.
 */
import { selectCropGrid } from '../../packages/server/src/engine/image-processor.js';
import { drawMarks } from '../../packages/server/src/images/draw-marks.js';
import { layoutMarks } from '../../packages/server/src/images/mark-layout.js';
import type { PixelRect } from '../../packages/server/src/images/mark-layout.js';
import type { MarkBox, RgbImage } from '../../packages/server/src/images/types.js';
import { markBoxFor, randomInt, randomScene, renderScene } from '../scenes/index.js';
import type { Rng, SceneSpec } from '../scenes/index.js';
import type { SceneDescription } from './questions.js';
import { shuffled } from './rng.js';

/** Crop side and crop budget of magma-tiny-som (preprocessor_config.json). */
export const CROP_SIZE = 128;
export const MAX_CROPS = 4;

export type GridName = '1x1' | '1x2' | '2x1' | '2x2';
export const GRID_NAMES: readonly GridName[] = ['1x1', '1x2', '2x1', '2x2'];

/** Image size ranges [minW, maxW, minH, maxH] that Magma's best-fit rule sends to each grid (rows x cols). */
const SIZE_RANGES: Record<GridName, readonly [number, number, number, number]> = {
  '1x1': [96, 128, 96, 128],
  '1x2': [170, 256, 96, 128],
  '2x1': [96, 128, 170, 256],
  '2x2': [150, 256, 150, 256],
};

export interface MarkedScene {
  readonly spec: SceneSpec;
  readonly marks: readonly MarkBox[];
  /** The image as the model sees it: scene plus drawn marks. */
  readonly image: RgbImage;
  readonly description: SceneDescription;
  readonly grid: GridName;
  /** Where each mark's box and label were drawn (pixels), by label: the trainer's per-cell targets. */
  readonly drawn: readonly {
    readonly label: number;
    readonly box: PixelRect;
    readonly text: PixelRect;
  }[];
}

/** A scene of 2-6 shapes; small images that cannot hold six get a smaller maximum (still deterministic). */
function placeShapes(rng: Rng, width: number, height: number): SceneSpec {
  for (let maxShapes = 6; ; maxShapes--) {
    try {
      return randomScene(rng, { width, height, minShapes: 2, maxShapes });
    } catch (error) {
      if (maxShapes <= 2) throw error;
    }
  }
}

export function gridName(width: number, height: number): GridName {
  const g = selectCropGrid(width, height, CROP_SIZE, MAX_CROPS);
  return `${g.rows}x${g.cols}` as GridName;
}

/** Builds one marked scene for the given grid; deterministic for a given rng state. */
export function sampleMarkedScene(rng: Rng, grid: GridName): MarkedScene {
  const [minW, maxW, minH, maxH] = SIZE_RANGES[grid];
  const width = randomInt(rng, minW, maxW);
  const height = randomInt(rng, minH, maxH);
  const spec = placeShapes(rng, width, height);
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
    ...markBoxFor(spec.shapes[shapeIndex]!, width, height),
  }));
  const image = drawMarks(renderScene(spec), marks);
  const layout = layoutMarks(width, height, marks);
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
  if (actual !== grid)
    throw new Error(`a ${width}x${height} image gives grid ${actual}, not ${grid}`);
  return { spec, marks, image, description, grid, drawn };
}
