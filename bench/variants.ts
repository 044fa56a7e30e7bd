import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_DTYPES, loadBundle } from '../packages/server/src/engine/bundle.js';
import type { BundleDtype } from '../packages/server/src/engine/bundle.js';
import { MagmaModel } from '../packages/server/src/engine/magma-model.js';
import { memoryReport } from '../packages/server/src/engine/memory.js';
import { openModel } from '../packages/server/src/engine/model-sessions.js';
import { PromptTokenizer } from '../packages/server/src/engine/prompt.js';

// Size and CPU speed of each dtype variant in one bundle (fp32 and whatever tools/magma_onnx/
// quantize.py wrote beside it), measured with the engine's own pieces in this process:
//
//   node --import tsx bench/variants.ts [--model DIR] [--threads N] [--runs N] [--dtypes q4,fp32]
//
// Per variant: bytes per graph, session load time, vision encode of a 2x2-crop image, prefill of
// the prompt (image tokens included), and greedy decode ms per token (batch 1, KV cache), each the
// median of --runs, taken round-robin across the variants. Answers are not compared here (packages/server/test/engine/quantized.test.ts
// does that); quality per variant: `npm run eval -- --model DIR` with MAGMA_DTYPE.

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const modelDir = resolve(arg('model', join(ROOT, 'models', 'magma-tiny-som')));
const threads = Number(arg('threads', '1'));
const runs = Number(arg('runs', '5'));
const DECODE_STEPS = 32;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** A deterministic 256x256 RGB image (2x2 crops of the tiny model's 128 px). */
function testImage(side: number): { data: Uint8Array; width: number; height: number } {
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  return { data, width: side, height: side };
}

interface Row {
  dtype: BundleDtype;
  graphs: string;
  totalBytes: number;
  loadMs: number;
  visionMs: number;
  prefillMs: number;
  decodeMsPerToken: number;
}

interface Variant {
  readonly dtype: BundleDtype;
  readonly report: ReturnType<typeof memoryReport>;
  readonly loadMs: number;
  readonly sessions: Awaited<ReturnType<typeof openModel>>;
  readonly model: MagmaModel;
  readonly ids: number[];
  readonly image: ReturnType<typeof testImage>;
  readonly times: { vision: number[]; prefill: number[]; decode: number[] };
}

async function open(dtype: BundleDtype): Promise<Variant> {
  const bundle = loadBundle(modelDir, { dtype, executionProvider: 'cpu' });
  const t0 = performance.now();
  const sessions = await openModel(bundle, {
    executionProvider: 'cpu',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const loadMs = performance.now() - t0;
  const prompts = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
  return {
    dtype,
    report: memoryReport(bundle, 1),
    loadMs,
    sessions,
    model: new MagmaModel(sessions, bundle.config),
    ids: [...prompts.encodeQuestion('Describe the marked objects.')],
    image: testImage(bundle.config.cropSize * 2),
    times: { vision: [], prefill: [], decode: [] },
  };
}

/** One image + prefill + DECODE_STEPS greedy steps; records the times unless it is a warm-up. */
async function runOnce(v: Variant, record: boolean): Promise<void> {
  const { model, ids } = v;
  let t = performance.now();
  const encoded = await model.encodeImage(v.image);
  const visionMs = performance.now() - t;
  const embeds = await model.promptEmbeddings(ids, encoded);
  t = performance.now();
  let step = await model.forward(embeds, { past: null, pastLength: 0 });
  const prefillMs = performance.now() - t;
  const promptLength = ids.length - 1 + encoded.tokens;
  t = performance.now();
  for (let k = 0; k < DECODE_STEPS; k++) {
    // Greedy without stopping: a fixed number of steps, so every variant does the same work.
    let best = 0;
    for (let i = 1; i < step.logits.length; i++) if (step.logits[i]! > step.logits[best]!) best = i;
    const previous = step.present;
    step = await model.forward(await model.embed([best], 1), {
      past: previous,
      pastLength: promptLength + k,
    });
    model.release(previous);
  }
  const decodeMs = (performance.now() - t) / DECODE_STEPS;
  model.release(step.present);
  if (!record) return;
  v.times.vision.push(visionMs);
  v.times.prefill.push(prefillMs);
  v.times.decode.push(decodeMs);
}

function row(v: Variant): Row {
  return {
    dtype: v.dtype,
    graphs: v.report.graphs.map((g) => `${g.file} ${(g.bytes / 1e6).toFixed(2)}`).join(', '),
    totalBytes: v.report.weightBytes,
    loadMs: v.loadMs,
    visionMs: median(v.times.vision),
    prefillMs: median(v.times.prefill),
    decodeMsPerToken: median(v.times.decode),
  };
}

async function main(): Promise<void> {
  const present = BUNDLE_DTYPES.filter((d) =>
    existsSync(join(modelDir, 'onnx', `decoder_model_merged${d === 'fp32' ? '' : `_${d}`}.onnx`)),
  );
  // --dtypes q8,q4,fp32 picks and orders them (on a busy machine, order shifts the numbers).
  const wanted = arg('dtypes', '');
  const dtypes =
    wanted === ''
      ? present
      : (wanted.split(',') as BundleDtype[]).filter((d) => present.includes(d));
  console.log(
    `bundle ${modelDir}: ${dtypes.join(', ')}; ${threads} intra-op thread(s), median of ${runs}`,
  );
  const variants: Variant[] = [];
  for (const dtype of dtypes) variants.push(await open(dtype));
  // Round-robin over the variants, so a change in machine load hits them all alike.
  for (let r = 0; r <= runs; r++) for (const v of variants) await runOnce(v, r > 0);
  const rows = variants.map(row);
  await Promise.all(variants.map((v) => v.sessions.release()));
  console.log(
    '\n| dtype | weights MB | load ms | vision ms (2x2) | prefill ms | decode ms/token | graphs (MB) |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.dtype} | ${(r.totalBytes / 1e6).toFixed(2)} | ${r.loadMs.toFixed(0)} | ${r.visionMs.toFixed(1)} | ${r.prefillMs.toFixed(1)} | ${r.decodeMsPerToken.toFixed(2)} | ${r.graphs} |`,
    );
  }
}

await main();
