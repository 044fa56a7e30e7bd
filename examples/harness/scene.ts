import sharp from 'sharp';
import type { Mark } from '@magma-som/sdk';
import { markBoxFor, renderScene } from '../../tools/scenes/index.js';
import type { SceneSpec } from '../../tools/scenes/index.js';
import type { RgbImage } from '../../packages/server/src/images/types.js';
import type { SceneDescription } from '../../tools/tiny-model/questions.js';

/**
 * The harness's scene: a blue square on the left and a red circle on the right. 224x168 px
 * is inside the sizes magma-tiny-som was trained on and gives it a 2x2 crop grid.
 */
export const CLASSIC_SCENE: SceneSpec = {
  width: 224,
  height: 168,
  background: [236, 236, 228],
  shapes: [
    { kind: 'circle', color: 'red', cx: 156, cy: 76, size: 44 },
    { kind: 'square', color: 'blue', cx: 64, cy: 92, size: 44 },
  ],
};

/** shapes[i] is marked #(i + 1): the red circle is #1, so "which is on the left" answers #2. */
export const CLASSIC_LABELS: readonly number[] = [1, 2];

export interface MarkedScene {
  /** The scene as a PNG file, without marks: the server draws them. */
  readonly png: Buffer;
  /** The same pixels, raw. */
  readonly image: RgbImage;
  readonly marks: readonly Mark[];
  /** What the question templates need to compute the right answers. */
  readonly description: SceneDescription;
}

/**
 * The scene `scale` times larger: canvas and shapes scaled, and (in renderMarkedScene) the
 * marks are the scaled boxes of the original, as a user would scale a screenshot and its boxes.
 */
export function scaleScene(spec: SceneSpec, scale: number): SceneSpec {
  return {
    ...spec,
    width: spec.width * scale,
    height: spec.height * scale,
    shapes: spec.shapes.map((s) => ({
      ...s,
      cx: s.cx * scale,
      cy: s.cy * scale,
      size: s.size * scale,
    })),
  };
}

export async function renderMarkedScene(
  original: SceneSpec = CLASSIC_SCENE,
  labels: readonly number[] = CLASSIC_LABELS,
  scale = 1,
): Promise<MarkedScene> {
  if (!Number.isInteger(scale) || scale < 1)
    throw new RangeError(`scale must be a whole number >= 1`);
  const spec = scaleScene(original, scale);
  const { width, height } = spec;
  const image = renderScene(spec);
  const png = await sharp(image.data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  const labelOf = (i: number): number => {
    const label = labels[i];
    if (label === undefined) throw new RangeError(`no label for shape ${i}`);
    return label;
  };
  const marks = original.shapes.map((shape, i) => {
    const box = markBoxFor(shape, original.width, original.height);
    return {
      label: labelOf(i),
      x1: box.x1 * scale,
      y1: box.y1 * scale,
      x2: box.x2 * scale,
      y2: box.y2 * scale,
    };
  });
  const objects = spec.shapes.map((shape, i) => ({
    shape: shape.kind,
    color: shape.color,
    cx: shape.cx,
    cy: shape.cy,
    mark: labelOf(i),
  }));
  return { png, image, marks, description: { width, height, objects } };
}
