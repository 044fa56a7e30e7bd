import sharp from 'sharp';
import type { AskInput } from '@magma-som/sdk';
import { createRng, markBoxFor, randomScene, renderScene } from '../tools/scenes/index.js';

// What the benchmark asks: a 1024x768 JPEG (a synthetic scene of the tiny model's domain) with
// five numbered boxes, and questions that name them. The server decodes the JPEG and draws the
// marks itself, as it would for a user.

export const IMAGE_WIDTH = 1024;
export const IMAGE_HEIGHT = 768;
export const MARK_COUNT = 5;

/**
 * Questions of the kinds the tiny model was trained on, in their trained wording. The describe
 * question's answer lists every mark (about 25 tokens for 5 marks), so decoding is a real share
 * of the mix, as it is when users ask it first.
 */
export const QUESTIONS = [
  'What colour is mark #2?',
  'What shape is mark #1?',
  'Describe the marked objects.',
  'Is mark #3 left of mark #4?',
  'What colour is mark #5?',
  'Which mark is the red circle?',
];

export interface Workload {
  readonly jpeg: Uint8Array;
  readonly marks: ReadonlyArray<{ label: number; x1: number; y1: number; x2: number; y2: number }>;
  /** The i-th request: the same image and marks, questions in turn. */
  ask(i: number, maxTokens: number): AskInput;
}

export async function createWorkload(seed = 7): Promise<Workload> {
  const spec = randomScene(createRng(seed), {
    width: IMAGE_WIDTH,
    height: IMAGE_HEIGHT,
    minShapes: MARK_COUNT,
    maxShapes: MARK_COUNT,
  });
  const pixels = renderScene(spec);
  const jpeg = await sharp(pixels.data, {
    raw: { width: pixels.width, height: pixels.height, channels: 3 },
  })
    .jpeg({ quality: 85 })
    .toBuffer();
  const marks = spec.shapes.map((shape, i) => ({
    label: i + 1,
    ...markBoxFor(shape, IMAGE_WIDTH, IMAGE_HEIGHT),
  }));
  return {
    jpeg: new Uint8Array(jpeg),
    marks,
    ask: (i, maxTokens) => ({
      image: jpeg,
      marks,
      prompt: QUESTIONS[i % QUESTIONS.length]!,
      options: { maxTokens },
    }),
  };
}
