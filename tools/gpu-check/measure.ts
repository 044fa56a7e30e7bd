/**
 * Decode and prefill timings of a bundle on one execution provider, with the engine's own pieces
 * (bundle loader, graph contract, MagmaModel: the same code the server runs), and the ratio of a
 * decode step to its HBM floor (decoder weight bytes + the KV cache read, over --hbm-gbps).
 *
 *   node --import tsx tools/gpu-check/measure.ts --model DIR --provider cuda|webgpu|cpu \
 *     [--contexts 1024,4096] [--steps 16] [--hbm-gbps 4800] [--json OUT.json]
 *
 * Prints one line per measurement; exits 3 (after printing why) when the provider cannot start,
 * so run.sh can go on with the next one.
 */
import { writeFileSync } from 'node:fs';
import { loadBundle } from '../../packages/server/src/engine/bundle.js';
import { EngineError } from '../../packages/server/src/engine/errors.js';
import { MagmaModel } from '../../packages/server/src/engine/magma-model.js';
import type { StepOutput } from '../../packages/server/src/engine/magma-model.js';
import { openModel } from '../../packages/server/src/engine/model-sessions.js';
import { PromptTokenizer } from '../../packages/server/src/engine/prompt.js';
import type { ExecutionProviderName } from '../../packages/server/src/engine/types.js';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

const modelDir = arg('model');
const provider = arg('provider', 'cpu') as ExecutionProviderName;
const contexts = arg('contexts', '1024,4096').split(',').map(Number);
const steps = Number(arg('steps', '16'));
const hbmGbps = Number(arg('hbm-gbps', '4800'));
const jsonOut = process.argv.includes('--json') ? arg('json') : undefined;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

async function main(): Promise<void> {
  const bundle = loadBundle(modelDir, { dtype: 'auto', executionProvider: provider });
  let sessions;
  const loadStart = performance.now();
  try {
    sessions = await openModel(bundle, { executionProvider: provider });
  } catch (error) {
    if (error instanceof EngineError && error.code === 'PROVIDER_UNAVAILABLE') {
      console.log(`${provider}: unavailable: ${error.message}`);
      process.exit(3);
    }
    throw error;
  }
  const loadMs = performance.now() - loadStart;
  const { config } = bundle;
  const model = new MagmaModel(sessions, config);
  const prompts = new PromptTokenizer(bundle.tokenizer, config.imageTokenId);
  const kvBytesPerToken =
    config.numLayers *
    2 *
    config.numKeyValueHeads *
    config.headDim *
    (sessions.kvType === 'float16' ? 2 : 4);
  const decoderBytes = bundle.graphFiles.decoder_model_merged.bytes;
  const results: Record<string, unknown>[] = [];
  const report = (row: Record<string, unknown>) => {
    results.push(row);
    console.log(
      Object.entries(row)
        .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(3) : String(v)}`)
        .join(' '),
    );
  };
  report({
    provider,
    what: 'load',
    dtype: bundle.dtype,
    load_ms: loadMs,
    decoder_bytes: decoderBytes,
  });

  // Prefill of a real prompt: a 2x2-crop image (the usual screenshot grid) and a question.
  const side = config.cropSize * 2;
  const image = {
    data: new Uint8Array(side * side * 3).map((_, i) => (i * 2654435761) >>> 24),
    width: side,
    height: side,
  };
  const ids = prompts.encodeQuestion('Describe the marked objects.');
  for (let run = 0; run < 2; run++) {
    const t0 = performance.now();
    const encoded = await model.encodeImage(image);
    const t1 = performance.now();
    const step = await model.forward(await model.promptEmbeddings(ids, encoded), {
      past: null,
      pastLength: 0,
    });
    const t2 = performance.now();
    model.release(step.present);
    if (run === 1) {
      report({
        provider,
        what: 'image prompt',
        tokens: ids.length - 1 + encoded.tokens,
        vision_ms: t1 - t0,
        prefill_ms: t2 - t1,
      });
    }
  }

  for (const context of contexts) {
    if (context + steps > config.maxPositionEmbeddings) {
      report({
        provider,
        what: 'decode',
        context,
        skipped: `beyond max_position_embeddings ${config.maxPositionEmbeddings}`,
      });
      continue;
    }
    const promptIds = Array.from({ length: context }, (_, i) => (i * 7919 + 13) % config.vocabSize);
    const t0 = performance.now();
    let step: StepOutput = await model.forward(await model.embed(promptIds, 1), {
      past: null,
      pastLength: 0,
    });
    const prefillMs = performance.now() - t0;
    const times: number[] = [];
    for (let k = 0; k < steps; k++) {
      const next = await model.embed([argmax(step.logits)], 1);
      const previous = step.present;
      const s0 = performance.now();
      step = await model.forward(next, { past: previous, pastLength: context + k });
      times.push(performance.now() - s0);
      model.release(previous);
    }
    model.release(step.present);
    const floorMs = ((decoderBytes + kvBytesPerToken * context) / (hbmGbps * 1e9)) * 1e3;
    const decodeMs = median(times.slice(1)); // the first step after a prefill pays one-off allocations
    report({
      provider,
      what: 'decode',
      context,
      prefill_ms: prefillMs,
      decode_ms_per_token: decodeMs,
      hbm_floor_ms: floorMs,
      ratio_to_floor: decodeMs / floorMs,
      // past in + present out through host memory, unless the provider keeps them on the device
      kv_host_mib_per_step: sessions.kvOnDevice ? 0 : (2 * kvBytesPerToken * context) / 2 ** 20,
    });
  }
  await sessions.release();
  if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify(results, null, 2) + '\n');
}

await main();
