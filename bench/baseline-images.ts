import sharp from 'sharp';
import { createRng, markBoxFor, randomScene, renderScene } from '../tools/scenes/index.js';
import { MARK_COUNT, QUESTIONS } from './workload.js';

// The images of the baseline comparison: synthetic scenes of the tiny model's domain at four
// sizes, each with 5 marks, and the JSON bodies both servers are sent (built once, so the load
// generator's own cost is the same small one for both).

export interface BenchImage {
  readonly name: string;
  readonly bytes: number;
  /** JSON bodies of the asks about it, one per question. */
  readonly bodies: readonly string[];
}

const SIZES = [
  { width: 256, height: 256, format: 'png' },
  { width: 640, height: 480, format: 'jpeg' },
  { width: 1024, height: 768, format: 'jpeg' },
  { width: 4000, height: 3000, format: 'jpeg' },
] as const;

/** The request both servers answer: the Node server's REST ask, prefix cache off (see baseline.ts). */
export function askBody(
  image: Uint8Array,
  marks: readonly object[],
  prompt: string,
  maxTokens: number,
): string {
  const base64 = Buffer.from(image.buffer, image.byteOffset, image.byteLength).toString('base64');
  return JSON.stringify({ image: base64, marks, prompt, options: { maxTokens }, cache: false });
}

export async function baselineImages(maxTokens: number, seed = 11): Promise<BenchImage[]> {
  const images: BenchImage[] = [];
  for (const [index, size] of SIZES.entries()) {
    const spec = randomScene(createRng(seed + index), {
      width: size.width,
      height: size.height,
      minShapes: MARK_COUNT,
      maxShapes: MARK_COUNT,
    });
    const pixels = renderScene(spec);
    const raw = sharp(pixels.data, {
      raw: { width: pixels.width, height: pixels.height, channels: 3 },
    });
    const file = await (size.format === 'png' ? raw.png() : raw.jpeg({ quality: 85 })).toBuffer();
    const marks = spec.shapes.map((shape, i) => ({
      label: i + 1,
      ...markBoxFor(shape, size.width, size.height),
    }));
    const megapixels = (size.width * size.height) / 1e6;
    images.push({
      name: `${size.width}x${size.height} ${size.format.toUpperCase()}${megapixels >= 10 ? ` (${megapixels} MP)` : ''}`,
      bytes: file.length,
      bodies: QUESTIONS.map((q) => askBody(file, marks, q, maxTokens)),
    });
  }
  return images;
}
