import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateResult } from '../../src/engine/index.js';
import type { MagmaModel, StepInput } from '../../src/engine/magma-model.js';
import type { ModelSessions } from '../../src/engine/model-sessions.js';
import { PrefixCache, templatePrefixIds } from '../../src/engine/prefix-cache.js';
import type { PrefixCacheChange } from '../../src/engine/prefix-cache.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { DEFAULT_SCHEDULER_SETTINGS, Scheduler } from '../../src/engine/scheduler.js';
import type { SchedulerSettings } from '../../src/engine/scheduler.js';
import type { SchedulerRequest } from '../../src/engine/sequence.js';
import type { RgbImage } from '../../src/images/types.js';
import { markedScene } from './helpers/marked-scene.js';
import { openTinyModelWithoutStops } from './helpers/open-tiny-model.js';
import { StepOwners } from './helpers/step-owners.js';
import { hasTinyBundle } from './helpers/tiny-bundle.js';

// The prefix cache must not change answers: a question whose image prefix (vision features and
// the keys and values up to the question) comes from the cache gets the same greedy text and
// the same logits at every step as with no cache at all, for every crop grid and question type,
// for entries shared by concurrent hits, after evictions, and after a cancelled hit. The scheduler
// runs in-process on the real tiny model (end ids cleared: every answer runs to maxTokens).

/** Sizes with different crop grids (tiny model: 128 px crops, up to 4). */
const SIZES: ReadonlyArray<readonly [number, number]> = [
  [120, 110], // 1x1
  [230, 120], // 1x2
  [110, 230], // 2x1
  [1024, 768], // 2x2
  [480, 130], // 1x3 or 1x4
  [130, 420], // 3x1 or 4x1
];

/** One question of each type the tiny model was trained on. */
const QUESTIONS = [
  'What colour is mark #1?',
  'What shape is mark #2?',
  'Which mark is the blue circle?',
  'Is mark #1 left of mark #2?',
  'How many marks are there?',
  'Describe the marked objects.',
];

const MAX_TOKENS = 6;
// Cached and uncached runs differ only in fp32 summation order (a hit prefills the question
// alone, or in a batch of another size), so logits agree to a few ulps of their own magnitude:
// within 1e-5 for logits up to 1 in size, and 1e-6 of the largest logit above that (the
// shipped weights reach logits of about 20; a hit that read a wrong entry differs by whole
// units).
const TOLERANCE = 1e-5;
const RELATIVE_TOLERANCE = 1e-6;

function tolerance(expected: Float32Array): number {
  let scale = 0;
  for (const value of expected) scale = Math.max(scale, Math.abs(value));
  return Math.max(TOLERANCE, RELATIVE_TOLERANCE * scale);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function copyImage(image: RgbImage): RgbImage {
  return { ...image, data: image.data.slice() };
}

describe.skipIf(!hasTinyBundle)('prefix cache on magma-tiny-som', () => {
  let sessions: ModelSessions;
  let model: MagmaModel;
  let prompt: PromptTokenizer;
  const scenes = SIZES.map(([w, h], i) => markedScene(w, h, 300 + i).image);
  /** Logits of every decoder output, by the cache (present) it produced, to follow sequences. */
  let stepLogits = new Map<number, Float32Array[]>();
  let owners = new StepOwners();
  /** The new-position counts (StepInput.newLength) of each run that started sequences. */
  let prefillRuns: (number | undefined)[][] = [];

  beforeAll(async () => {
    const opened = await openTinyModelWithoutStops();
    ({ sessions, model } = opened);
    prompt = new PromptTokenizer(opened.bundle.tokenizer, opened.bundle.config.imageTokenId);
    // Records every sequence's logits: a prefill (no cache, or a prefix from the prefix cache)
    // starts a new owner; a decode step continues the sequence whose cache it feeds back.
    const forwardBatch = model.forwardBatch.bind(model);
    model.forwardBatch = async (embeds, inputs: readonly StepInput[]) => {
      if (inputs.some((input) => owners.startsSequence(input)))
        prefillRuns.push(inputs.map((input) => input.newLength));
      const outputs = await forwardBatch(embeds, inputs);
      owners.record(inputs, outputs).forEach((owner, b) => {
        stepLogits.set(owner, [...(stepLogits.get(owner) ?? []), outputs[b]!.logits]);
      });
      return outputs;
    };
  });
  afterAll(async () => {
    await sessions?.release();
  });

  interface Run {
    readonly results: Map<number, GenerateResult>;
    readonly logits: Map<number, Float32Array[]>;
    readonly misses: number[];
    readonly changes: PrefixCacheChange[];
  }

  function request(
    id: number,
    image: RgbImage | undefined,
    question: string,
    key?: string,
  ): SchedulerRequest {
    return {
      id,
      ...(image !== undefined ? { image: copyImage(image) } : {}),
      ...(key !== undefined ? { prefixKey: key } : {}),
      prompt: question,
      maxTokens: MAX_TOKENS,
      temperature: 0,
      stop: [],
      suppressActionTokens: true,
      stream: false,
    };
  }

  /** Submits requests at once to one scheduler (sharing `cache`) and waits until all settled. */
  async function run(
    requests: readonly SchedulerRequest[],
    cache?: PrefixCache,
    settings: Partial<SchedulerSettings> = {},
    onToken?: (scheduler: Scheduler, id: number) => void,
  ): Promise<Run> {
    stepLogits = new Map();
    owners = new StepOwners();
    prefillRuns = [];
    const results = new Map<number, GenerateResult>();
    const misses: number[] = [];
    const changes: PrefixCacheChange[] = [];
    const scheduler: Scheduler = new Scheduler(
      model,
      prompt,
      { ...DEFAULT_SCHEDULER_SETTINGS, ...settings },
      {
        token: (id) => onToken?.(scheduler, id),
        result: (id, result) => results.set(id, result),
        error: (_id, error) => {
          throw error;
        },
        prefixMiss: (id) => misses.push(id),
        prefixCache: (change) => changes.push(change),
      },
      cache,
    );
    for (const r of requests) scheduler.submit(r);
    await scheduler.idle();
    expect(scheduler.size).toBe(0);
    // prefills run first come first served, so owner n is the n-th request admitted
    const logits = new Map<number, Float32Array[]>();
    const admitted = requests.filter((r) => !misses.includes(r.id));
    admitted.forEach((r, n) => logits.set(r.id, stepLogits.get(n + 1) ?? []));
    return { results, logits, misses, changes };
  }

  /** The answer and logits with no cache, one request alone. */
  const uncached = new Map<string, { result: GenerateResult; logits: Float32Array[] }>();
  async function reference(scene: number, question: string) {
    const name = `${scene}:${question}`;
    if (!uncached.has(name)) {
      const r = await run([request(1, scenes[scene], question)]);
      uncached.set(name, { result: r.results.get(1)!, logits: r.logits.get(1)! });
    }
    return uncached.get(name)!;
  }

  async function expectSameAsUncached(
    scene: number,
    question: string,
    result: GenerateResult,
    logits: Float32Array[],
  ): Promise<void> {
    const expected = await reference(scene, question);
    expect(result.text).toBe(expected.result.text);
    expect(result.grid).toEqual(expected.result.grid);
    expect(result.usage.promptTokens).toBe(expected.result.usage.promptTokens);
    expect(result.usage.completionTokens).toBe(expected.result.usage.completionTokens);
    expect(logits.length).toBe(expected.logits.length);
    logits.forEach((step, k) =>
      expect(maxAbsDiff(step, expected.logits[k]!)).toBeLessThanOrEqual(
        tolerance(expected.logits[k]!),
      ),
    );
  }

  it('the prompt prefix ends after "<image_end>\\n", before the question', () => {
    const prefix = templatePrefixIds(prompt, model.config.imageTokenId)!;
    const ids = prompt.encodeUserQuestion(QUESTIONS[0]!);
    expect(ids.slice(0, prefix.length)).toEqual(prefix);
    expect(prefix).toContain(model.config.imageTokenId);
    expect(prompt.decode(ids.slice(prefix.length))).toMatch(/^What colour is mark #1\?/);
  });

  it('gives every question type on every crop grid the uncached answer and logits', async () => {
    const cache = new PrefixCache(256 * 1024 * 1024);
    const grids = new Set<string>();
    for (let scene = 0; scene < scenes.length; scene++) {
      for (const [q, question] of QUESTIONS.entries()) {
        const r = await run([request(1, scenes[scene], question, `scene-${scene}`)], cache);
        const result = r.results.get(1)!;
        grids.add(`${result.grid.rows}x${result.grid.cols}`);
        // the first question stores the prefix, the others read it
        if (q === 0) expect(result.usage.cachedTokens).toBe(0);
        else expect(result.usage.cachedTokens).toBeGreaterThan(result.usage.imageTokens);
        await expectSameAsUncached(scene, question, result, r.logits.get(1)!);
      }
    }
    expect(grids.size).toBeGreaterThanOrEqual(5);
    const stats = cache.stats();
    expect(stats).toMatchObject({ entries: scenes.length, misses: scenes.length });
    expect(stats.hits).toBe(scenes.length * (QUESTIONS.length - 1));
  });

  it('serves concurrent hits of one entry in one batch, without changing the entry', async () => {
    const cache = new PrefixCache(256 * 1024 * 1024);
    const scene = 3; // 2x2
    await run([request(1, scenes[scene], QUESTIONS[0]!, 'shared')], cache);
    const entry = cache.acquire('shared')!;
    cache.unpin(entry);
    const before = entry.kv!.map((t) => Float32Array.from(t.data as Float32Array));
    // no pixels at all: every one of them must be a hit
    const asks = QUESTIONS.slice(1, 5).map((q, i) => request(i + 1, undefined, q, 'shared'));
    const r = await run(asks, cache, { maxBatchSize: 4, prefillPolicy: 'prefill-first' });
    expect(r.misses).toEqual([]);
    // the questions were prefilled in order, each its own length (the rest left padding), the
    // ones that arrived while the first ran sharing one run
    const prefix = templatePrefixIds(prompt, model.config.imageTokenId)!;
    const questionLengths = asks.map(
      (ask) => prompt.encodeUserQuestion(ask.prompt).length - prefix.length,
    );
    expect(new Set(questionLengths).size).toBeGreaterThan(1);
    expect(prefillRuns.flat()).toEqual(questionLengths);
    expect(Math.max(...prefillRuns.map((rows) => new Set(rows).size))).toBeGreaterThan(1);
    for (const [i, ask] of asks.entries()) {
      const result = r.results.get(ask.id)!;
      expect(result.usage.cachedTokens).toBe(entry.positions);
      await expectSameAsUncached(scene, QUESTIONS[i + 1]!, result, r.logits.get(ask.id)!);
    }
    entry.kv!.forEach((t, k) => expect(t.data).toEqual(before[k]));
  });

  it('recomputes an evicted entry with the same answer, and hands back a pixel-less ask', async () => {
    // room for one 2x2 entry only
    const probe = new PrefixCache(256 * 1024 * 1024);
    await run([request(1, scenes[3], QUESTIONS[0]!, 'a')], probe);
    const budget = Math.floor(probe.stats().bytes * 1.5);
    const cache = new PrefixCache(budget);

    await run([request(1, scenes[3], QUESTIONS[0]!, 'a')], cache);
    const evicting = await run([request(1, scenes[4], QUESTIONS[0]!, 'b')], cache);
    expect(evicting.changes.at(-1)).toMatchObject({ added: ['b'], evicted: ['a'] });
    expect(cache.has('a')).toBe(false);

    // an ask sent without pixels for the evicted key goes back to the engine, untouched
    const gone = await run([request(7, undefined, QUESTIONS[1]!, 'a')], cache);
    expect(gone.misses).toEqual([7]);
    expect(gone.results.size).toBe(0);

    // with its pixels it is a miss, recomputed, stored again, and answers as before
    const again = await run([request(1, scenes[3], QUESTIONS[1]!, 'a')], cache);
    const result = again.results.get(1)!;
    expect(result.usage.cachedTokens).toBe(0);
    await expectSameAsUncached(3, QUESTIONS[1]!, result, again.logits.get(1)!);
    const hit = await run([request(1, undefined, QUESTIONS[2]!, 'a')], cache);
    expect(hit.results.get(1)!.usage.cachedTokens).toBeGreaterThan(0);
    await expectSameAsUncached(3, QUESTIONS[2]!, hit.results.get(1)!, hit.logits.get(1)!);
    expect(cache.stats().evictions).toBe(2);
  });

  it('never holds more bytes than its budget', async () => {
    const probe = new PrefixCache(256 * 1024 * 1024);
    await run([request(1, scenes[3], QUESTIONS[0]!, 'p')], probe);
    const budget = Math.floor(probe.stats().bytes * 2.5);
    const cache = new PrefixCache(budget);
    // twelve keys over six scenes of different sizes, in a mixed order, two at a time
    const order = [0, 3, 5, 1, 3, 4, 2, 0, 5, 3, 1, 4];
    for (let i = 0; i < order.length; i += 2) {
      const r = await run(
        [
          request(1, scenes[order[i]!], QUESTIONS[i % 6]!, `k${i}`),
          request(2, scenes[order[i + 1]!], QUESTIONS[(i + 1) % 6]!, `k${i + 1}`),
        ],
        cache,
        { maxBatchSize: 2 },
      );
      for (const change of r.changes) expect(change.stats.bytes).toBeLessThanOrEqual(budget);
      expect(cache.bytes).toBeLessThanOrEqual(budget);
    }
    expect(cache.stats().evictions).toBeGreaterThan(0);
    // an entry bigger than the whole budget is not stored at all
    const tiny = new PrefixCache(1024);
    const r = await run([request(1, scenes[0], QUESTIONS[0]!, 'big')], tiny);
    expect(r.changes.at(-1)!.added).toEqual([]);
    expect(tiny.stats()).toMatchObject({ bytes: 0, entries: 0 });
  });

  it('keeps an entry usable after a hit reading it is cancelled', async () => {
    const cache = new PrefixCache(256 * 1024 * 1024);
    await run([request(1, scenes[1], QUESTIONS[0]!, 'c')], cache);
    const cancelled = await run(
      [{ ...request(1, undefined, QUESTIONS[1]!, 'c'), maxTokens: 50, stream: true }],
      cache,
      {},
      (scheduler, id) => scheduler.cancel(id),
    );
    expect(cancelled.results.get(1)!.finishReason).toBe('cancelled');
    const after = await run([request(1, undefined, QUESTIONS[2]!, 'c')], cache);
    expect(after.results.get(1)!.usage.cachedTokens).toBeGreaterThan(0);
    await expectSameAsUncached(1, QUESTIONS[2]!, after.results.get(1)!, after.logits.get(1)!);
  });

  it('reuses only the vision features when the question does not tokenize after the prefix', async () => {
    const cache = new PrefixCache(256 * 1024 * 1024);
    await run([request(1, scenes[2], QUESTIONS[0]!, 'n')], cache);
    // a leading newline merges with the template's "\n": the prompt does not start with the prefix
    const question = '\nWhat shape is mark #2?';
    const r = await run([request(1, undefined, question, 'n')], cache);
    const result = r.results.get(1)!;
    expect(result.usage.cachedTokens).toBe(0);
    expect(result.timings.visionMs).toBe(0);
    await expectSameAsUncached(2, question, result, r.logits.get(1)!);
  });
});
