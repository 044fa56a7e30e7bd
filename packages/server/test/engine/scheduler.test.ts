import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateResult } from '../../src/engine/index.js';
import type { MagmaModel } from '../../src/engine/magma-model.js';
import type { ModelSessions } from '../../src/engine/model-sessions.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { DEFAULT_SCHEDULER_SETTINGS, Scheduler } from '../../src/engine/scheduler.js';
import type { SequenceRequest } from '../../src/engine/sequence.js';
import { openTinyModelWithoutStops } from './helpers/open-tiny-model.js';
import { hasTinyBundle, noiseImage } from './helpers/tiny-bundle.js';

// The scheduler in-process (no worker), to look at its state between steps. The model's end
// ids are cleared and its special tokens suppressed, so that whatever the weights, every
// sequence runs to maxTokens and produces text.
const settings = { ...DEFAULT_SCHEDULER_SETTINGS, maxBatchSize: 4 };

describe.skipIf(!hasTinyBundle)('Scheduler', () => {
  let sessions: ModelSessions;
  let model: MagmaModel;
  let prompt: PromptTokenizer;

  beforeAll(async () => {
    const opened = await openTinyModelWithoutStops();
    const { bundle } = opened;
    ({ sessions, model } = opened);
    prompt = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
  });
  afterAll(async () => {
    await sessions?.release();
  });

  function request(id: number, overrides: Partial<SequenceRequest> = {}): SequenceRequest {
    return {
      id,
      image: noiseImage(200, 100, id),
      prompt: 'Which mark is the blue circle?',
      maxTokens: 100,
      temperature: 0,
      stop: [],
      suppressActionTokens: true,
      stream: true,
      ...overrides,
    };
  }

  it('frees a cancelled sequence cache at once and keeps the others running', async () => {
    const results = new Map<number, GenerateResult>();
    let cachedAfterCancel = -1;
    let tokensOfFirst = 0;
    const scheduler: Scheduler = new Scheduler(model, prompt, settings, {
      token(id) {
        if (id !== 1 || ++tokensOfFirst !== 3) return;
        const before = scheduler.cachedPositions;
        scheduler.cancel(1);
        cachedAfterCancel = before - scheduler.cachedPositions;
      },
      result: (id, result) => results.set(id, result),
      error: (id, error) => {
        throw error;
      },
    });
    scheduler.submit(request(1));
    scheduler.submit(request(2, { maxTokens: 12 }));
    await scheduler.idle();
    const first = results.get(1)!;
    expect(first.finishReason).toBe('cancelled');
    // token events carry text, and a token may add none yet (held back until it decodes cleanly)
    expect(first.usage.completionTokens).toBeGreaterThanOrEqual(3);
    expect(first.usage.completionTokens).toBeLessThan(100);
    expect(results.get(2)!.finishReason).toBe('length');
    // the cancelled sequence's whole cache was released by the cancel call itself
    expect(cachedAfterCancel).toBe(first.usage.promptTokens + first.usage.completionTokens - 1);
    expect(results.get(2)!.usage.completionTokens).toBeGreaterThan(0);
    expect(scheduler.size).toBe(0);
    expect(scheduler.cachedPositions).toBe(0);
  });

  async function generate(req: SequenceRequest): Promise<GenerateResult> {
    let result: GenerateResult | undefined;
    const scheduler = new Scheduler(model, prompt, settings, {
      token() {},
      result: (_id, r) => (result = r),
      error: (_id, error) => {
        throw error;
      },
    });
    scheduler.submit(req);
    await scheduler.idle();
    return result!;
  }

  it('ends at a stop string and leaves it out of the answer', async () => {
    const full = await generate(request(4, { maxTokens: 16 }));
    expect(full.finishReason).toBe('length');
    expect(full.text.length).toBeGreaterThan(1);
    const at = Math.floor(full.text.length / 2);
    const stop = full.text.slice(at, at + 1);
    const cut = await generate(request(4, { maxTokens: 16, stop: [stop] }));
    expect(cut.finishReason).toBe('stop');
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)).trim());
  });

  it('reports a request that cannot fit as INVALID_INPUT without running the model', async () => {
    const errors: unknown[] = [];
    const scheduler = new Scheduler(model, prompt, settings, {
      token() {},
      result() {},
      error: (_id, error) => errors.push(error),
    });
    scheduler.submit(request(3, { maxTokens: model.config.maxPositionEmbeddings }));
    await scheduler.idle();
    expect(errors).toHaveLength(1);
    expect((errors[0] as { code: string }).code).toBe('INVALID_INPUT');
  });
});
