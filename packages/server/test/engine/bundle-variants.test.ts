import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/engine/bundle.js';
import { Engine } from '../../src/engine/index.js';
import { MagmaModel, cacheLength } from '../../src/engine/magma-model.js';
import { openModel } from '../../src/engine/model-sessions.js';
import type { ModelSessions } from '../../src/engine/model-sessions.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';
import { noiseImage } from './helpers/tiny-bundle.js';

// Bundles made by tools/reference/make_bundle_variants.py from a freshly exported one, loaded by
// the engine: `_fp16` graphs (float16 at every graph edge, the engine's Uint16Array paths) and
// weights in external `.onnx_data` files (as exports over 2 GB must be), per-graph dtypes, and a
// decoder without prefix inputs (as exported before them). tools/ci/python-checks.sh makes them
// in a temp folder and sets MAGMA_VARIANT_BUNDLES to it (bundle, bundle-fp16, bundle-external,
// bundle-mixed, bundle-legacy); without Python and torch there is nothing to load, so this is
// skipped.
const root = process.env.MAGMA_VARIANT_BUNDLES;
const dirs = root
  ? {
      plain: join(root, 'bundle'),
      fp16: join(root, 'bundle-fp16'),
      external: join(root, 'bundle-external'),
      mixed: join(root, 'bundle-mixed'),
      legacy: join(root, 'bundle-legacy'),
    }
  : undefined;

const QUESTION = 'What color is object #1?';

/** First-step logits of the engine's own pieces on one image and question. */
async function firstLogits(dir: string, dtype: 'fp32' | 'fp16' | 'auto'): Promise<Float32Array> {
  const bundle = loadBundle(dir, { dtype, executionProvider: 'cpu' });
  if (dtype !== 'auto') expect(bundle.dtype).toBe(dtype);
  const sessions: ModelSessions = await openModel(bundle, {
    executionProvider: 'cpu',
    intraOpNumThreads: 1,
  });
  try {
    const model = new MagmaModel(sessions, bundle.config);
    const prompts = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
    const ids = prompts.encodeQuestion(QUESTION);
    const image = await model.encodeImage(noiseImage(200, 150, 3));
    const step = await model.forward(await model.promptEmbeddings(ids, image), {
      past: null,
      pastLength: 0,
    });
    model.release(step.present);
    return Float32Array.from(step.logits);
  } finally {
    await sessions.release();
  }
}

/**
 * The prompt's last logits and one decode step after it, computed twice: the whole prompt at
 * once, and its first `split` positions first, then the rest with those as a prefix.
 */
async function prefixRuns(dir: string, split: number) {
  const bundle = loadBundle(dir, { dtype: 'fp32', executionProvider: 'cpu' });
  const sessions = await openModel(bundle, { executionProvider: 'cpu', intraOpNumThreads: 1 });
  try {
    const model = new MagmaModel(sessions, bundle.config);
    const H = bundle.config.hiddenSize;
    const prompts = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
    const image = await model.encodeImage(noiseImage(200, 150, 3));
    const embeds = await model.promptEmbeddings(prompts.encodeQuestion(QUESTION), image);
    const length = embeds.length / H;
    const next = await model.embed([7], 1);

    const whole = await model.forward(embeds, { past: null, pastLength: 0 });
    const wholeStep = await model.forward(next, { past: whole.present, pastLength: length });

    const head = await model.forward(embeds.subarray(0, split * H), { past: null, pastLength: 0 });
    const prefix = { tensors: head.present.tensors, length: split };
    const rest = await model.forward(embeds.subarray(split * H), {
      prefix,
      past: null,
      pastLength: 0,
    });
    const restStep = await model.forward(next, {
      prefix: rest.prefix,
      past: rest.present,
      pastLength: cacheLength(rest.present),
    });
    return {
      splitsPrefix: model.splitsPrefix,
      keptPrefix: rest.prefix !== null,
      restPositions: cacheLength(rest.present),
      length,
      diffs: [maxAbsDiff(whole.logits, rest.logits), maxAbsDiff(wholeStep.logits, restStep.logits)],
    };
  } finally {
    await sessions.release();
  }
}

function maxAbs(values: Float32Array): number {
  return values.reduce((worst, v) => Math.max(worst, Math.abs(v)), 0);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

describe.skipIf(!dirs)('bundle variants made by make_bundle_variants.py', () => {
  const engines: Engine[] = [];
  let plainLogits: Promise<Float32Array> | undefined;
  const plain = () => (plainLogits ??= firstLogits(dirs!.plain, 'fp32'));
  afterAll(async () => {
    await Promise.all(engines.map((engine) => engine.close()));
  });

  it('has the files each variant is about', () => {
    const fp16 = readdirSync(join(dirs!.fp16, 'onnx'));
    expect(readdirSync(join(dirs!.mixed, 'onnx')).sort()).toEqual([
      'decoder_model_merged_fp16.onnx',
      'embed_tokens_fp16.onnx',
      'vision_encoder.onnx',
    ]);
    for (const graph of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
      expect(fp16).toContain(`${graph}_fp16.onnx`);
      expect(existsSync(join(dirs!.external, 'onnx', `${graph}.onnx_data`))).toBe(true);
    }
  });

  it('external-data graphs give the same logits as the plain ones', async () => {
    const external = await firstLogits(dirs!.external, 'fp32');
    expect(maxAbsDiff(external, await plain())).toBeLessThan(1e-4);
  }, 120_000);

  it('fp16-edge graphs give the fp32 logits up to half-precision rounding', async () => {
    const fp32 = await plain();
    const fp16 = await firstLogits(dirs!.fp16, 'fp16');
    // Inputs and outputs are rounded to float16 (11 significant bits) at each graph edge.
    expect(maxAbsDiff(fp16, fp32)).toBeLessThan(1e-2 * Math.max(1, maxAbs(fp32)));
  }, 120_000);

  it('a mixed-dtype bundle (fp32 vision, fp16 embeddings and decoder) loads as declared and runs', async () => {
    const bundle = loadBundle(dirs!.mixed, { dtype: 'auto', executionProvider: 'cpu' });
    // config.json magma_som: default_dtype fp16, graph_dtypes pins the vision graph to fp32.
    expect(bundle.dtype).toBe('fp16');
    expect(bundle.graphFiles.vision_encoder.dtype).toBe('fp32');
    expect(bundle.graphFiles.embed_tokens.dtype).toBe('fp16');
    expect(bundle.graphFiles.decoder_model_merged.dtype).toBe('fp16');
    const sessions = await openModel(bundle, { executionProvider: 'cpu', intraOpNumThreads: 1 });
    expect([sessions.pixelType, sessions.embedsType, sessions.kvType]).toEqual([
      'float32',
      'float16',
      'float16',
    ]);
    await sessions.release();
    const fp32 = await plain();
    const mixed = await firstLogits(dirs!.mixed, 'auto');
    expect(maxAbsDiff(mixed, fp32)).toBeLessThan(1e-2 * Math.max(1, maxAbs(fp32)));
  }, 120_000);

  it('a decoder without prefix inputs (exported before them) takes a prefix as its past, with the same logits', async () => {
    const split = 20;
    const plainRuns = await prefixRuns(dirs!.plain, split);
    const legacyRuns = await prefixRuns(dirs!.legacy, split);
    // with prefix inputs the prefix stays an input of its own and the present holds the rest
    expect(plainRuns).toMatchObject({ splitsPrefix: true, keptPrefix: true });
    expect(plainRuns.restPositions).toBe(plainRuns.length - split);
    // without them it is fed as the past, and the present holds every position
    expect(legacyRuns).toMatchObject({ splitsPrefix: false, keptPrefix: false });
    expect(legacyRuns.restPositions).toBe(legacyRuns.length);
    for (const diff of [...plainRuns.diffs, ...legacyRuns.diffs]) expect(diff).toBeLessThan(1e-4);
  }, 120_000);

  it('the engine answers prefix-cache hits on a decoder without prefix inputs as on one with them', async () => {
    const answers: Record<string, string[]> = {};
    for (const name of ['plain', 'legacy'] as const) {
      const engine = await Engine.start({
        modelDir: dirs![name],
        dtype: 'fp32',
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        maxBatchSize: 4,
        prefixCacheBytes: 64 << 20,
      });
      engines.push(engine);
      const ask = (prompt: string) =>
        engine.generate({
          image: noiseImage(300, 200, 5),
          prefixKey: 'scene',
          prompt,
          maxTokens: 6,
        });
      const first = await ask(QUESTION);
      expect(first.usage.cachedTokens).toBe(0);
      const hits = await Promise.all(
        ['What shape is object #2?', 'How many objects are marked?', QUESTION].map(ask),
      );
      for (const hit of hits) expect(hit.usage.cachedTokens).toBeGreaterThan(0);
      answers[name] = [first, ...hits].map((r) => r.text);
    }
    expect(answers['legacy']).toEqual(answers['plain']);
    // the hit asking the first question again answers it as the miss did
    expect(answers['plain']![3]).toBe(answers['plain']![0]);
  }, 120_000);

  it.each([
    ['plain', 'fp32'],
    ['fp16', 'fp16'],
    ['external', 'fp32'],
    ['mixed', 'fp16'],
  ] as const)(
    'the worker-thread engine serves the %s bundle (%s)',
    async (name, dtype) => {
      const engine = await Engine.start({
        modelDir: dirs![name],
        dtype,
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
      });
      engines.push(engine);
      expect(engine.info).toMatchObject({ dtype, revision: 'smoke' });
      const result = await engine.generate({
        image: noiseImage(300, 200, 5),
        prompt: QUESTION,
        maxTokens: 6,
      });
      expect(result.usage.completionTokens).toBeGreaterThan(0);
      expect(result.usage.completionTokens).toBeLessThanOrEqual(6);
      expect(result.usage.imageTokens).toBeGreaterThan(0);
      expect(['stop', 'length']).toContain(result.finishReason);
    },
    120_000,
  );
});
