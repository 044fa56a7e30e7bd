import { createClient } from '@magma-som/sdk';
import type { MagmaClient } from '@magma-som/sdk';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderScene } from '../../tools/scenes/index.js';
import { evalScene } from '../../tools/tiny-model/eval-scenes.js';
import type { QuestionAnswer } from '../../tools/tiny-model/questions.js';
import { bundledModelRevision, startBundledServer } from '../test-support/bundled-server.js';
import type { RunningServer } from '../test-support/bundled-server.js';
import { isVerifiedRevision } from './harness.js';

/**
 * The default model, through the whole product: the first held-out eval scenes (the stream
 * `npm run eval` starts with, disjoint from training), sent unmarked as PNG with their marks,
 * so the server draws the marks exactly as in training. Every question type, every crop grid.
 */
const SCENES = 8;
/**
 * Greedy decoding is deterministic, so a bundle's misses on this sample are fixed: revision
 * 2026-11-22.3 (98.1% on the full eval) answers 49 of these 52 right (94.2%); all three misses
 * are one crowded 1x2 scene's describe, find and marked-count questions. The bar guards against
 * regressions with room for a retrained bundle's different misses.
 */
const MIN_EXACT_MATCH = 0.85;

interface Case {
  readonly grid: string;
  readonly qa: QuestionAnswer;
  got?: string;
}

const unverified = !isVerifiedRevision(bundledModelRevision());
let running: RunningServer;
let client: MagmaClient;

beforeAll(async () => {
  if (unverified) return;
  running = await startBundledServer();
  client = createClient({ baseUrl: running.url });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await running?.server.shutdown();
});

describe.skipIf(unverified)('held-out scenes through the server (default model)', () => {
  it('answers the templated questions right', async () => {
    const cases: Case[] = [];
    for (let i = 0; i < SCENES; i++) {
      const { grid, scene, questions: qas } = evalScene(1, i);
      const { width, height } = scene.spec;
      const png = await sharp(renderScene(scene.spec).data, {
        raw: { width, height, channels: 3 },
      })
        .png()
        .toBuffer();
      const answers = await Promise.all(
        qas.map((qa) =>
          client.ask({
            image: png,
            marks: [...scene.marks],
            prompt: qa.question,
            options: { maxTokens: 48 },
          }),
        ),
      );
      qas.forEach((qa, k) => cases.push({ grid, qa, got: answers[k]!.answer.trim() }));
    }
    const misses = cases.filter((c) => c.got !== c.qa.answer);
    const exact = 1 - misses.length / cases.length;
    const report = misses
      .map((c) => `[${c.grid}] ${c.qa.question} -> ${JSON.stringify(c.got)} (want ${c.qa.answer})`)
      .join('\n');
    expect(cases.length).toBeGreaterThanOrEqual(SCENES * 5);
    expect(exact, `misses:\n${report}`).toBeGreaterThanOrEqual(MIN_EXACT_MATCH);
    // Every question type is asked, and each is answered right at least once.
    const types = new Set(cases.map((c) => c.qa.type));
    for (const type of types) {
      expect(
        cases.some((c) => c.qa.type === type && c.got === c.qa.answer),
        `${type} never right`,
      ).toBe(true);
    }
  }, 120_000);
});
