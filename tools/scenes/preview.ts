/**
 * Writes a few random marked scenes as PNGs, to look at what the tiny model trains on.
 * Usage: npx tsx tools/scenes/preview.ts [outDir=/tmp/scene-preview] [count=6] [seed=1]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { drawMarks } from '../../packages/server/src/images/draw-marks.js';
import { encodeImage } from '../../packages/server/src/images/encode.js';
import { createRng, markBoxFor, pick, randomScene, renderScene } from './index.js';

const [outDir = '/tmp/scene-preview', count = '6', seed = '1'] = process.argv.slice(2);
const SIDES = [128, 160, 192, 256, 320];

mkdirSync(outDir, { recursive: true });
const rng = createRng(Number(seed));
for (let i = 0; i < Number(count); i++) {
  const width = pick(rng, SIDES);
  const height = pick(rng, SIDES);
  const scene = randomScene(rng, { width, height });
  const marks = scene.shapes.map((shape, n) => ({
    label: n + 1,
    ...markBoxFor(shape, width, height),
  }));
  const png = await encodeImage(drawMarks(renderScene(scene), marks), 'png');
  const file = join(outDir, `scene-${i}.png`);
  writeFileSync(file, png);
  const names = scene.shapes.map((s, n) => `#${n + 1} ${s.color} ${s.kind}`).join(', ');
  console.log(`${file} ${width}x${height}: ${names}`);
}
