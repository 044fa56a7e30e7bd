import sharp from 'sharp';
import type { Mark } from '@magma-som/sdk';
import { markBoxFor, renderScene } from '../../tools/scenes/index.js';
import type { SceneSpec } from '../../tools/scenes/index.js';
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
  readonly marks: readonly Mark[];
  /** What the question templates need to compute the right answers. */
  readonly description: SceneDescription;
}

export async function renderMarkedScene(
  spec: SceneSpec = CLASSIC_SCENE,
  labels: readonly number[] = CLASSIC_LABELS,
): Promise<MarkedScene> {
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
  const marks = spec.shapes.map((shape, i) => ({
    label: labelOf(i),
    ...markBoxFor(shape, width, height),
  }));
  const objects = spec.shapes.map((shape, i) => ({
    shape: shape.kind,
    color: shape.color,
    cx: shape.cx,
    cy: shape.cy,
    mark: labelOf(i),
  }));
  return { png, marks, description: { width, height, objects } };
}
