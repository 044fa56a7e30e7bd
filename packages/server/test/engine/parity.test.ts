import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/engine/bundle.js';
import type { Bundle } from '../../src/engine/bundle.js';
import { MagmaModel } from '../../src/engine/magma-model.js';
import type { StepOutput } from '../../src/engine/magma-model.js';
import { openModel } from '../../src/engine/model-sessions.js';
import type { ModelSessions } from '../../src/engine/model-sessions.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';

// PyTorch (tools/tiny-model/make_parity_fixtures.py) against the exported bundle run by the
// engine's own pieces: same prompt ids, crop grid, visual token count, greedy tokens, and logits
// within the fixture's tolerance at the prefill and at every KV-cached decode step.

const here = dirname(fileURLToPath(import.meta.url));
// tools/ci/python-checks.sh points these at a bundle it just exported and its own fixtures, to
// check the exporter end to end; by default, the shipped bundle and its committed fixtures.
const override = process.env.MAGMA_PARITY_MODEL_DIR;
const modelDir = override ?? resolve(here, '../../../../models/magma-tiny-som');
const fixturePath =
  process.env.MAGMA_PARITY_FIXTURE ?? join(here, '../fixtures/parity/parity.json');

interface ParityCase {
  readonly question: string;
  readonly width: number;
  readonly height: number;
  readonly grid: { readonly rows: number; readonly cols: number };
  readonly image_tokens: number;
  readonly rgb_base64: string;
  readonly prompt_ids: number[];
  readonly greedy_tokens: number[];
  readonly logits: number[][];
}

interface ParityFixture {
  readonly revision: string;
  readonly logit_tolerance: number;
  readonly cases: ParityCase[];
}

const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as ParityFixture;

function maxAbsDiff(a: Float32Array, b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

describe('magma-tiny-som: PyTorch vs ONNX in Node', () => {
  let bundle: Bundle;
  let sessions: ModelSessions;
  let model: MagmaModel;
  let prompts: PromptTokenizer;

  beforeAll(async () => {
    bundle = loadBundle(modelDir, { dtype: 'fp32', executionProvider: 'cpu' });
    sessions = await openModel(bundle, { executionProvider: 'cpu', intraOpNumThreads: 1 });
    model = new MagmaModel(sessions, bundle.config);
    prompts = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
  });

  afterAll(async () => {
    await sessions?.release();
  });

  it('fixtures were made from the shipped weights', () => {
    expect(fixture.revision).toBe(bundle.config.revision);
    const grids = fixture.cases.map((c) => `${c.grid.rows}x${c.grid.cols}`).sort();
    // A smoke run's few held-out scenes need not cover every crop grid; one case per grid.
    if (override === undefined) expect(grids).toEqual(['1x1', '1x2', '2x1', '2x2']);
    else expect(grids.length).toBeGreaterThan(0);
    expect(new Set(grids).size).toBe(grids.length);
  });

  for (const c of fixture.cases) {
    it(`${c.grid.rows}x${c.grid.cols}: "${c.question}"`, async () => {
      const ids = prompts.encodeQuestion(c.question);
      expect(ids).toEqual(c.prompt_ids);

      const rgb = new Uint8Array(Buffer.from(c.rgb_base64, 'base64'));
      const image = await model.encodeImage({ data: rgb, width: c.width, height: c.height });
      expect(image.grid).toEqual(c.grid);
      expect(image.tokens).toBe(c.image_tokens);

      const embeds = await model.promptEmbeddings(ids, image);
      const promptLength = ids.length - 1 + image.tokens;
      let step: StepOutput = await model.forward(embeds, { past: null, pastLength: 0 });
      const generated: number[] = [];
      for (let k = 0; k < c.greedy_tokens.length; k++) {
        expect(maxAbsDiff(step.logits, c.logits[k]!)).toBeLessThan(fixture.logit_tolerance);
        const token = argmax(step.logits);
        generated.push(token);
        if (k + 1 === c.greedy_tokens.length) break;
        const next = await model.embed([token], 1);
        const previous = step.present;
        step = await model.forward(next, { past: previous, pastLength: promptLength + k });
        model.release(previous);
      }
      model.release(step.present);
      expect(generated).toEqual(c.greedy_tokens);
    });
  }
});
