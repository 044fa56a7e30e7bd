/**
 * Quickstart: mark two regions of an image, ask about #1, save the image the model saw.
 * With a server running (npm start):  node --import tsx examples/quickstart.ts
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createClient } from '@magma-som/sdk';

await using client = createClient({ baseUrl: process.env.MAGMA_URL ?? 'http://127.0.0.1:8080' });

const prompt = 'What color is object #1?';
const response = await client.ask({
  image: new URL('./assets/shapes.png', import.meta.url),
  // Boxes are [x1, y1, x2, y2] in pixels; unlabelled marks are numbered #1, #2, ... in order.
  marks: [
    [130, 50, 182, 102], // #1: the red circle
    [38, 66, 90, 118], // #2: the blue square
  ],
  prompt,
  returnMarkedImage: true,
});

console.log(`Q: ${prompt}`);
console.log(`A: ${response.answer}`);
console.log(`   (${response.model.id}, ${Math.round(response.timings.totalMs)} ms)`);

// The image exactly as the model saw it, with the numbered boxes drawn in Magma's style.
const { markedImage } = response;
if (markedImage) {
  const outDir = new URL('./output/', import.meta.url);
  await mkdir(outDir, { recursive: true });
  const file = new URL(`quickstart-marked.${markedImage.format}`, outDir);
  await writeFile(file, Buffer.from(markedImage.data, 'base64'));
  console.log(`Marked image: ${fileURLToPath(file)}`);
}
