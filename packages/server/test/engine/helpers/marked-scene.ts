import { drawMarks } from '../../../src/images/draw-marks.js';
import type { MarkBox, RgbImage } from '../../../src/images/types.js';
import {
  createRng,
  markBoxFor,
  randomScene,
  renderScene,
} from '../../../../../tools/scenes/index.js';

/**
 * A synthetic Set-of-Mark scene (the tiny model's training domain) with every shape marked 1..n,
 * so the tiny model's answers depend on what the image shows. Same seed, same image.
 */
export function markedScene(
  width: number,
  height: number,
  seed: number,
  shapes = 3,
): { image: RgbImage; marks: MarkBox[] } {
  const spec = randomScene(createRng(seed), {
    width,
    height,
    minShapes: shapes,
    maxShapes: shapes,
  });
  const marks = spec.shapes.map((shape, i) => ({
    label: i + 1,
    ...markBoxFor(shape, width, height),
  }));
  return { image: drawMarks(renderScene(spec), marks), marks };
}
