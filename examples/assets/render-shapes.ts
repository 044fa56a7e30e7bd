/**
 * Writes examples/assets/shapes.png, the quickstart's image: the harness's scene (a red
 * circle and a blue square) without marks. Run: npx tsx examples/assets/render-shapes.ts
 */
import { writeFile } from 'node:fs/promises';
import { renderMarkedScene } from '../harness/scene.js';

const { png, marks } = await renderMarkedScene();
const path = new URL('./shapes.png', import.meta.url);
await writeFile(path, png);
console.log(`wrote ${path.pathname} (${png.byteLength} bytes); mark boxes:`);
for (const { label, x1, y1, x2, y2 } of marks)
  console.log(`  #${label}: [${x1}, ${y1}, ${x2}, ${y2}]`);
