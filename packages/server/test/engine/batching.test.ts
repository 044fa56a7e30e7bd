import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import type { GenerateRequest, GenerateResult } from '../../src/engine/index.js';
import type { MagmaModel, StepInput } from '../../src/engine/magma-model.js';
import type { ModelSessions } from '../../src/engine/model-sessions.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { DEFAULT_SCHEDULER_SETTINGS, Scheduler } from '../../src/engine/scheduler.js';
import type { SchedulerSettings } from '../../src/engine/scheduler.js';
import type { SequenceRequest } from '../../src/engine/sequence.js';
import type { RgbImage } from '../../src/images/types.js';
import { markedScene } from './helpers/marked-scene.js';
import { openTinyModelWithoutStops } from './helpers/open-tiny-model.js';
import { StepOwners } from './helpers/step-owners.js';
import { TINY_BUNDLE, hasTinyBundle } from './helpers/tiny-bundle.js';

// Continuous batching must not change answers: every greedy answer is the same alone and inside
// a batch of 8 requests with different crop grids, prompt lengths and answer lengths, while
// sequences leave and join the batch. The model's end ids are cleared so that each sequence
// runs exactly to its own maxTokens, which makes them finish at different steps. Besides the
// text, every step's logits are compared, which catches a mixed-up cache even when a partly
// trained model would give the same words.

/** Sizes that give different crop grids (tiny model: S=128, up to 4 crops), so different prompt lengths. */
const SIZES: ReadonlyArray<readonly [number, number]> = [
  [120, 110], // 1x1
  [1024, 768], // 2x2
  [230, 120], // 1x2
  [110, 230], // 2x1
  [200, 200], // 2x2
  [480, 130], // wide: 1x3 or 1x4
  [130, 420], // tall: 3x1 or 4x1
  [128, 128], // 1x1
];

const PROMPTS = [
  'What colour is mark #1?',
  'Which mark is the blue circle?',
  'What shape is mark #2?',
  'How many marks are there?',
  'Which mark is left of mark #2?',
  'What colour is mark #3?',
  'What shape is mark #1?',
  'Which mark is the red square?',
];

function mixedRequest(i: number): Omit<SequenceRequest, 'id'> {
  const [width, height] = SIZES[i]!;
  return {
    image: markedScene(width, height, 100 + i).image,
    prompt: PROMPTS[i]!,
    maxTokens: 6 + 3 * i, // 6..27: sequences leave the batch at different steps
    temperature: 0,
    stop: [],
    suppressActionTokens: true,
    stream: true,
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe.skipIf(!hasTinyBundle)('continuous batching on magma-tiny-som', () => {
  let sessions: ModelSessions;
  let model: MagmaModel;
  let prompt: PromptTokenizer;
  /** One entry per decoder run: 'P' for a prefill, else the number of sequences decoded together. */
  let runs: Array<'P' | number> = [];
  /** Logits of every step of every sequence, by request number (prefills run first come first served). */
  let logits = new Map<number, Float32Array[]>();
  let owners = new StepOwners();

  beforeAll(async () => {
    const opened = await openTinyModelWithoutStops();
    const { bundle } = opened;
    ({ sessions, model } = opened);
    // Calls through to the real decoder and records each run and each sequence's logits: a
    // cache's owner is known from the run that made it.
    const forwardBatch = model.forwardBatch.bind(model);
    model.forwardBatch = async (embeds, inputs: readonly StepInput[]) => {
      const outputs = await forwardBatch(embeds, inputs);
      runs.push(owners.startsSequence(inputs[0]!) ? 'P' : inputs.length);
      owners.record(inputs, outputs).forEach((owner, b) => {
        logits.set(owner, [...(logits.get(owner) ?? []), outputs[b]!.logits]);
      });
      return outputs;
    };
    prompt = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
  });
  afterAll(async () => {
    await sessions?.release();
  });

  interface Outcome {
    readonly results: Map<number, GenerateResult>;
    readonly streamed: Map<number, string>;
    readonly logits: Map<number, Float32Array[]>;
  }

  /** Every step's logits match those of the request run alone (up to float reassociation). */
  function expectAloneLogits(got: Map<number, Float32Array[]>, cancelled: number[] = []): void {
    aloneLogits.forEach((expected, i) => {
      const steps = got.get(i + 1)!;
      if (cancelled.includes(i + 1)) expect(steps.length).toBeLessThan(expected.length);
      else expect(steps.length).toBe(expected.length);
      steps.forEach((step, k) => expect(maxAbsDiff(step, expected[k]!)).toBeLessThan(1e-4));
    });
  }

  /** Submits all requests at once to one scheduler and waits until every one has settled. */
  async function runAll(
    requests: ReadonlyArray<Omit<SequenceRequest, 'id'>>,
    settings: Partial<SchedulerSettings>,
    onToken?: (scheduler: Scheduler, id: number, count: number) => void,
  ): Promise<Outcome> {
    logits = new Map();
    owners = new StepOwners();
    const results = new Map<number, GenerateResult>();
    const streamed = new Map<number, string>();
    const counts = new Map<number, number>();
    const scheduler: Scheduler = new Scheduler(
      model,
      prompt,
      { ...DEFAULT_SCHEDULER_SETTINGS, ...settings },
      {
        token(id, text) {
          streamed.set(id, (streamed.get(id) ?? '') + text);
          const count = (counts.get(id) ?? 0) + 1;
          counts.set(id, count);
          onToken?.(scheduler, id, count);
        },
        result: (id, result) => results.set(id, result),
        error: (_id, error) => {
          throw error;
        },
      },
    );
    requests.forEach((request, i) => scheduler.submit({ ...request, id: i + 1 }));
    await scheduler.idle();
    expect(scheduler.size).toBe(0);
    expect(scheduler.cachedPositions).toBe(0);
    return { results, streamed, logits };
  }

  const requests = SIZES.map((_, i) => mixedRequest(i));
  let alone: GenerateResult[] = [];
  let aloneLogits: Float32Array[][] = [];

  beforeAll(async () => {
    alone = [];
    aloneLogits = [];
    for (const request of requests) {
      const { results, logits } = await runAll([request], { maxBatchSize: 1 });
      alone.push(results.get(1)!);
      aloneLogits.push(logits.get(1)!);
    }
  });

  it('the eight requests differ in grid, prompt length and answer length', () => {
    expect(new Set(alone.map((r) => `${r.grid.rows}x${r.grid.cols}`)).size).toBeGreaterThanOrEqual(
      5,
    );
    expect(new Set(alone.map((r) => r.usage.promptTokens)).size).toBeGreaterThanOrEqual(6);
    alone.forEach((r, i) => {
      expect(r.finishReason).toBe('length');
      expect(r.usage.completionTokens).toBe(requests[i]!.maxTokens);
      expect(r.text.length).toBeGreaterThan(0);
    });
  });

  it('gives every request its alone answer inside a batch of 8', async () => {
    runs = [];
    const { results, streamed, logits } = await runAll(requests, {
      maxBatchSize: 8,
      prefillPolicy: 'prefill-first',
    });
    expectAloneLogits(logits);
    expect([...results.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    alone.forEach((expected, i) => {
      const got = results.get(i + 1)!;
      expect(got.text).toBe(expected.text);
      expect(got.usage).toEqual(expected.usage);
      expect(streamed.get(i + 1)).toBe(got.text);
    });
    // all eight were prefilled before the first decode step, which then ran them together
    expect(runs.slice(0, 9)).toEqual(['P', 'P', 'P', 'P', 'P', 'P', 'P', 'P', 8]);
    // and the batch shrank as sequences finished
    expect(runs.filter((r) => r !== 'P').at(-1)).toBe(1);
  });

  it('gives the same answers when requests join a full batch as others leave', async () => {
    runs = [];
    const { results, logits } = await runAll(requests, { maxBatchSize: 3 });
    expectAloneLogits(logits);
    alone.forEach((expected, i) => expect(results.get(i + 1)!.text).toBe(expected.text));
    const decodes = runs.filter((r): r is number => r !== 'P');
    expect(Math.max(...decodes)).toBe(3);
    // a prefill happened after decoding had started: a waiting request joined a running batch
    expect(runs.lastIndexOf('P')).toBeGreaterThan(runs.indexOf(3));
  });

  it('keeps the other answers when one sequence of the batch is cancelled', async () => {
    const { results, logits } = await runAll(
      requests,
      { maxBatchSize: 8 },
      (scheduler, id, count) => {
        if (id === 8 && count === 4) scheduler.cancel(8);
      },
    );
    expectAloneLogits(logits, [8]);
    expect(results.get(8)!.finishReason).toBe('cancelled');
    expect(results.get(8)!.usage.completionTokens).toBeGreaterThanOrEqual(4);
    expect(results.get(8)!.usage.completionTokens).toBeLessThan(requests[7]!.maxTokens);
    expect(alone[7]!.text.startsWith(results.get(8)!.text)).toBe(true);
    for (let i = 0; i < 7; i++) expect(results.get(i + 1)!.text).toBe(alone[i]!.text);
  });

  it("'interleave' prefills at most maxPrefillTokens between two decode steps", async () => {
    runs = [];
    const four = requests.slice(0, 4).map((r) => ({ ...r, maxTokens: 12 }));
    // a budget smaller than any prompt: one prefill per decode step
    await runAll(four, { maxBatchSize: 4, prefillPolicy: 'interleave', maxPrefillTokens: 1 });
    expect(runs.slice(0, 8)).toEqual(['P', 1, 'P', 2, 'P', 3, 'P', 4]);

    runs = [];
    // a budget that fits the first two prompts (1x1 and 2x2), but not the third as well
    const budget = alone[0]!.usage.promptTokens + alone[1]!.usage.promptTokens;
    await runAll(four, { maxBatchSize: 4, maxPrefillTokens: budget });
    expect(runs.slice(0, 6)).toEqual(['P', 'P', 2, 'P', 'P', 4]);
  });

  it("'prefill-first' fills the batch before decoding", async () => {
    runs = [];
    const four = requests.slice(0, 4).map((r) => ({ ...r, maxTokens: 5 }));
    await runAll(four, { maxBatchSize: 4, prefillPolicy: 'prefill-first', maxPrefillTokens: 1 });
    expect(runs).toEqual(['P', 'P', 'P', 'P', 4, 4, 4, 4]);
  });
});

describe.skipIf(!hasTinyBundle)('Engine batching options', () => {
  it('rejects bad batching options before starting a worker', async () => {
    await expect(Engine.start({ modelDir: TINY_BUNDLE, maxBatchSize: 0 })).rejects.toThrow(
      RangeError,
    );
    await expect(Engine.start({ modelDir: TINY_BUNDLE, maxPrefillTokens: 1.5 })).rejects.toThrow(
      /maxPrefillTokens/,
    );
    await expect(
      Engine.start({
        modelDir: TINY_BUNDLE,
        prefillPolicy: 'fifo' as unknown as 'interleave',
      }),
    ).rejects.toThrow(/prefillPolicy/);
  });

  it('answers 8 concurrent mixed requests as it answers each alone (worker, real end ids)', async () => {
    const engine = await Engine.start({
      modelDir: TINY_BUNDLE,
      maxBatchSize: 8,
      prefillPolicy: 'prefill-first',
    });
    try {
      const asks: GenerateRequest[] = SIZES.map((_, i) => {
        const r = mixedRequest(i);
        return { image: r.image, prompt: r.prompt, maxTokens: r.maxTokens };
      });
      const copy = (r: GenerateRequest): GenerateRequest => ({
        ...r,
        image: { ...(r.image as RgbImage), data: (r.image as RgbImage).data.slice() },
      });
      const alone: string[] = [];
      for (const ask of asks) alone.push((await engine.generate(copy(ask))).text);
      const together = await Promise.all(asks.map((ask) => engine.generate(ask)));
      expect(together.map((r) => r.text)).toEqual(alone);
    } finally {
      await engine.close();
    }
  });

  it('answers the same with spinning onnxruntime threads (spinWait) as without', async () => {
    const ask = (): GenerateRequest => {
      const r = mixedRequest(2);
      return { image: r.image, prompt: r.prompt, maxTokens: 8 };
    };
    const answers: string[] = [];
    for (const spinWait of [false, true]) {
      const engine = await Engine.start({ modelDir: TINY_BUNDLE, spinWait });
      try {
        answers.push((await engine.generate(ask())).text);
      } finally {
        await engine.close();
      }
    }
    expect(answers[0]!.length).toBeGreaterThan(0);
    expect(answers[1]).toBe(answers[0]);
  });
});
