import { baselineImages } from '../baseline-images.js';
import { decodePixels } from '../../packages/server/src/images/decode.js';
import { drawMarksInPlace } from '../../packages/server/src/images/draw-marks.js';
import { markSizing } from '../../packages/server/src/images/mark-sizing.js';
const images = await baselineImages(32);
const body = JSON.parse(images[2]!.bodies[0]!);
const bytes = new Uint8Array(Buffer.from(body.image, 'base64'));
const { image } = await decodePixels(bytes, { maxBytes: 1e8, maxPixels: 1e8 });
const sizing = markSizing(1024, 768, { cropSize: 128, maxCrops: 4 }, { labelTextHeight: 16, outlineWidth: 2 });
console.log(sizing, body.marks.length);
const t: number[] = [];
for (let i = 0; i < 400; i++) { const a = performance.now(); drawMarksInPlace(image, body.marks, sizing); t.push(performance.now() - a); }
t.sort((a, b) => a - b); console.log('marks p50', t[200]!.toFixed(3), 'p10', t[40]!.toFixed(3));
