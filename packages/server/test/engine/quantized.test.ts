import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/engine/bundle.js';
import { fromFloat16Array, toFloat16Array } from '../../src/engine/float16.js';
import { float16Bits, float16Tensor } from '../../src/engine/tensors.js';
import type { BundleDtype } from '../../src/engine/bundle.js';
import { MagmaModel } from '../../src/engine/magma-model.js';
import type { StepOutput } from '../../src/engine/magma-model.js';
import { openModel } from '../../src/engine/model-sessions.js';
import type { ModelSessions } from '../../src/engine/model-sessions.js';
import { PromptTokenizer } from '../../src/engine/prompt.js';

// Weight-only int4/int8 variants (tools/magma_onnx/quantize.py) loaded by the engine's own pieces
// and run on the parity prompts against the same bundle's fp32 graphs: the graph contract holds,
// the greedy tokens are the same, and every step's logits stay within QUANT_LOGIT_TOLERANCE of
// that step's fp32 logit span.
// Variants already beside the bundle are tested as they are (the lead's run on a new revision);
// without any, the shipped bundle is copied to a temp folder and quantized here (needs
// /usr/bin/python3 with numpy and onnx; skipped without). With MAGMA_QUANT_PARITY_DIR holding
// parity_q4.json / parity_q8.json (tools/magma_onnx/quantized_parity.py: PyTorch with the same
// dequantized weights), the engine's tokens and logits are checked against those too.

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../../..');
const sourceDir = process.env.MAGMA_QUANT_MODEL_DIR ?? join(repo, 'models/magma-tiny-som');
const fixturePath =
  process.env.MAGMA_PARITY_FIXTURE ?? join(here, '../fixtures/parity/parity.json');
const referenceDir = process.env.MAGMA_QUANT_PARITY_DIR;
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';

/**
 * Largest |logit(variant) - logit(fp32)| accepted at any greedy step of any parity case, as a
 * share of that step's fp32 logit span (max - min): the error of weight-only quantization grows
 * with the logits, and a more trained revision has larger ones. Measured (worst case of the
 * four): magma-tiny-som 2026-11-22.3, logits spanning about 30: q8 block 32 0.29 (~0.01); q4
 * block 32 symmetric 2.24 (~0.075), block 128 5.25 (~0.18). 2026-12-02.3, spans 19-36: q8
 * 0.006, q4 0.10 (3.16 on a span of 36). The tokens must be equal as well, which is the check
 * that matters for answers.
 */
const QUANT_LOGIT_TOLERANCE: Record<string, number> = { q8: 0.02, q4: 0.15 };

/** Max - min of a step's logits. */
function logitSpan(logits: ArrayLike<number>): number {
  let max = -Infinity;
  let min = Infinity;
  for (let i = 0; i < logits.length; i++) {
    max = Math.max(max, logits[i]!);
    min = Math.min(min, logits[i]!);
  }
  return max - min;
}
/** PyTorch with dequantized weights vs the engine's MatMulNBits graphs: the same arithmetic. */
const REFERENCE_LOGIT_TOLERANCE = 2e-3;
const MAX_NEW = 24;

interface ParityCase {
  readonly question: string;
  readonly width: number;
  readonly height: number;
  readonly rgb_base64: string;
  readonly prompt_ids: number[];
}
interface ReferenceCase {
  readonly greedy_tokens: number[];
  readonly logits: number[][];
}

const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as { cases: ParityCase[] };

function pythonWithOnnx(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import numpy, onnx'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const existing = (['q4', 'q8'] as const).filter((dtype) =>
  existsSync(join(sourceDir, 'onnx', `decoder_model_merged_${dtype}.onnx`)),
);
const canQuantize = existing.length === 0 && pythonWithOnnx();
const runnable = existing.length > 0 || canQuantize;

interface Greedy {
  readonly tokens: number[];
  readonly logits: Float32Array[];
}

async function greedyAll(dir: string, dtype: BundleDtype | 'auto'): Promise<Greedy[]> {
  const bundle = loadBundle(dir, { dtype, executionProvider: 'cpu' });
  const sessions: ModelSessions = await openModel(bundle, {
    executionProvider: 'cpu',
    intraOpNumThreads: 1,
  });
  try {
    const model = new MagmaModel(sessions, bundle.config);
    const prompts = new PromptTokenizer(bundle.tokenizer, bundle.config.imageTokenId);
    const eos = new Set(bundle.config.eosTokenIds);
    const results: Greedy[] = [];
    for (const c of fixture.cases) {
      const ids = prompts.encodeQuestion(c.question);
      expect(ids).toEqual(c.prompt_ids);
      const rgb = new Uint8Array(Buffer.from(c.rgb_base64, 'base64'));
      const image = await model.encodeImage({ data: rgb, width: c.width, height: c.height });
      const promptLength = ids.length - 1 + image.tokens;
      let step: StepOutput = await model.forward(await model.promptEmbeddings(ids, image), {
        past: null,
        pastLength: 0,
      });
      const tokens: number[] = [];
      const logits: Float32Array[] = [];
      for (let k = 0; k < MAX_NEW; k++) {
        logits.push(Float32Array.from(step.logits));
        const token = argmax(step.logits);
        tokens.push(token);
        if (eos.has(token) || k + 1 === MAX_NEW) break;
        const previous = step.present;
        step = await model.forward(await model.embed([token], 1), {
          past: previous,
          pastLength: promptLength + k,
        });
        model.release(previous);
      }
      model.release(step.present);
      results.push({ tokens, logits });
    }
    return results;
  } finally {
    await sessions.release();
  }
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function maxAbsDiff(a: Float32Array, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** ||a - b|| / ||b||. */
function relativeError(a: Float32Array, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe.skipIf(!runnable)('int4/int8 bundles vs fp32 (MatMulNBits)', () => {
  let dir = sourceDir;
  let temp: string | undefined;
  let variants: readonly ('q4' | 'q8')[] = existing;
  let fp32: Greedy[];
  const runs = new Map<string, Promise<Greedy[]>>();
  /** Each variant's greedy run, once (two tests read it). */
  const quantizedGreedy = (dtype: BundleDtype) => {
    if (!runs.has(dtype)) runs.set(dtype, greedyAll(dir, dtype));
    return runs.get(dtype)!;
  };

  beforeAll(async () => {
    if (canQuantize) {
      temp = mkdtempSync(join(tmpdir(), 'magma-quant-'));
      dir = join(temp, 'bundle');
      cpSync(sourceDir, dir, { recursive: true });
      for (const bits of ['4', '8']) {
        execFileSync(PYTHON, [
          join(repo, 'tools/magma_onnx/quantize.py'),
          '--bundle',
          dir,
          '--bits',
          bits,
          '--block-size',
          '32',
        ]);
      }
      variants = ['q4', 'q8'];
    }
    fp32 = await greedyAll(dir, 'fp32');
  }, 300_000);

  afterAll(() => {
    if (temp !== undefined) rmSync(temp, { recursive: true, force: true });
  });

  it('quantize.py wrote the decoder and projector variants and recorded them', () => {
    const manifest = JSON.parse(readFileSync(join(dir, 'quantization.json'), 'utf8')) as {
      variants: Record<
        string,
        { bits: number; graphs: Record<string, { bytes: number; source_bytes: number }> }
      >;
    };
    for (const dtype of variants) {
      const entry = manifest.variants[dtype]!;
      expect(entry.bits).toBe(Number(dtype.slice(1)));
      const decoder = entry.graphs['decoder_model_merged']!;
      // int4: about 1/8 of the fp32 linear weights plus scales; int8 about 1/4 (plus norms etc.).
      expect(decoder.bytes).toBeLessThan(decoder.source_bytes * (dtype === 'q4' ? 0.25 : 0.4));
      expect(entry.graphs['vision_encoder']).toBeDefined();
    }
  });

  it.skipIf(!canQuantize)(
    'quantize.py --out: a folder with only the int4 variant, loaded by default, runs like it',
    async () => {
      const out = join(temp!, 'q4-only');
      execFileSync(PYTHON, [
        join(repo, 'tools/magma_onnx/quantize.py'),
        '--bundle',
        dir,
        '--bits',
        '4',
        '--out',
        out,
      ]);
      const bundle = loadBundle(out, { executionProvider: 'cpu' }); // auto: config.json says q4
      expect(bundle.dtype).toBe('q4');
      expect(Object.values(bundle.graphFiles).map((g) => g.dtype)).toEqual(['q4', 'fp32', 'q4']);
      expect(() => loadBundle(out, { dtype: 'fp32' })).toThrow(/file is missing \(dtype fp32\)/);
      const standalone = await greedyAll(out, 'auto');
      const inBundle = await quantizedGreedy('q4');
      expect(standalone.map((g) => g.tokens)).toEqual(inBundle.map((g) => g.tokens));
    },
    300_000,
  );

  for (const dtype of ['q4', 'q8'] as const) {
    it(`${dtype}: the loader picks the variant graphs and the contract holds`, async () => {
      if (!variants.includes(dtype)) return;
      const bundle = loadBundle(dir, { dtype, executionProvider: 'cpu' });
      expect(bundle.dtype).toBe(dtype);
      expect(bundle.graphFiles.decoder_model_merged.dtype).toBe(dtype);
      expect(bundle.graphFiles.vision_encoder.dtype).toBe(dtype);
      // No embeddings variant: the fp32 file is loaded for it.
      expect(bundle.graphFiles.embed_tokens.dtype).toBe('fp32');
      expect(bundle.graphs.embed_tokens.endsWith('embed_tokens.onnx')).toBe(true);
      const sessions = await openModel(bundle, { executionProvider: 'cpu', intraOpNumThreads: 1 });
      await sessions.release();
    });

    it(`${dtype}: same greedy tokens as fp32 on the parity prompts, logits within ${QUANT_LOGIT_TOLERANCE[dtype]} of their span`, async () => {
      if (!variants.includes(dtype)) return;
      const quantized = await quantizedGreedy(dtype);
      const worst: number[] = [];
      quantized.forEach((q, i) => {
        const ref = fp32[i]!;
        expect(q.tokens, fixture.cases[i]!.question).toEqual(ref.tokens);
        let caseWorst = 0;
        q.logits.forEach((l, k) => {
          const step = ref.logits[k]!;
          caseWorst = Math.max(caseWorst, maxAbsDiff(l, step) / logitSpan(step));
        });
        worst.push(caseWorst);
      });
      console.log(
        `${dtype}: worst |logit - fp32| / fp32 logit span per case`,
        worst.map((w) => w.toFixed(4)).join(' '),
      );
      for (const w of worst) expect(w).toBeLessThan(QUANT_LOGIT_TOLERANCE[dtype]!);
    }, 300_000);

    const referencePath = referenceDir && join(referenceDir, `parity_${dtype}.json`);
    it.skipIf(!referencePath || !existsSync(referencePath))(
      `${dtype}: same tokens and logits (within ${REFERENCE_LOGIT_TOLERANCE}) as PyTorch with the dequantized weights`,
      async () => {
        if (!variants.includes(dtype)) return;
        const reference = JSON.parse(readFileSync(referencePath!, 'utf8')) as {
          cases: ReferenceCase[];
        };
        const quantized = await quantizedGreedy(dtype);
        quantized.forEach((q, i) => {
          const ref = reference.cases[i]!;
          // Compared up to the reference's length (it stops at MAX_NEW or end of turn too).
          expect(q.tokens).toEqual(ref.greedy_tokens);
          q.logits.forEach((l, k) =>
            expect(maxAbsDiff(l, ref.logits[k]!)).toBeLessThan(REFERENCE_LOGIT_TOLERANCE),
          );
        });
      },
      300_000,
    );
  }
});

// The packing contract on its own: one MatMul rewritten by quantize.py's functions (K not a
// multiple of the block, 4 and 8 bits, with and without zero points, fp32 and fp16 graphs, the
// latter with fp16 scales), run by onnxruntime-node,
// against numpy's product with the weights dequantized from the stored bytes.
describe.skipIf(!pythonWithOnnx())('MatMulNBits packing matches onnxruntime', () => {
  const temp = mkdtempSync(join(tmpdir(), 'magma-nbits-'));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  it('onnxruntime computes A @ dequantize(B) for every layout quantize.py writes', async () => {
    const script = `
import json, sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
sys.path.insert(0, ${JSON.stringify(join(repo, 'tools'))})
from magma_onnx.quantize import quantize_graph, dequantize
rng = np.random.default_rng(7)
K, N, out = 80, 24, ${JSON.stringify(temp)}
cases = []
for bits, sym, half in [(4, True, 0), (4, False, 0), (8, True, 0), (8, False, 0), (4, True, 1), (8, True, 1)]:
        # half: an fp16 graph (as exported for GPUs), so the scales are fp16 too
        ft, nt = (TensorProto.FLOAT16, np.float16) if half else (TensorProto.FLOAT, np.float32)
        W = (rng.standard_normal((K, N)) + (0.0 if sym else 0.3)).astype(nt)
        g = helper.make_graph([helper.make_node('MatMul', ['A', 'W'], ['Y'])], 'g',
            [helper.make_tensor_value_info('A', ft, [None, K])],
            [helper.make_tensor_value_info('Y', ft, [None, N])], [numpy_helper.from_array(W, 'W')])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
        quantize_graph(m, None, bits, 32, sym, 0, rng)
        t = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        node = m.graph.node[0]
        zp = t[node.input[3]] if len(node.input) > 3 else None
        Wd = dequantize(t[node.input[1]], t[node.input[2]], zp, K, N, bits, 32)
        A = rng.standard_normal((3, K)).astype(nt).astype(np.float32)
        name = f'{out}/mm_{bits}_{int(sym)}_{half}.onnx'
        onnx.save(m, name)
        cases.append({'file': name, 'op': node.op_type, 'inputs': len(node.input), 'A': A.ravel().tolist(),
                      'Y': (A @ Wd.T).ravel().tolist(), 'Y32': (A @ W.astype(np.float32)).ravel().tolist(), 'K': K,
                      'half': half, 'scales': str(t[node.input[2]].dtype)})
print(json.dumps(cases))
`;
    const cases = JSON.parse(execFileSync(PYTHON, ['-c', script], { encoding: 'utf8' })) as {
      file: string;
      op: string;
      inputs: number;
      A: number[];
      Y: number[];
      Y32: number[];
      K: number;
      half: number;
      scales: string;
    }[];
    expect(cases.map((c) => c.inputs)).toEqual([3, 4, 3, 4, 3, 3]);
    expect(cases.map((c) => c.scales)).toEqual([...Array(4).fill('float32'), 'float16', 'float16']);
    for (const c of cases) {
      expect(c.op).toBe('MatMulNBits');
      const session = await ort.InferenceSession.create(c.file);
      const a =
        c.half === 1
          ? float16Tensor(toFloat16Array(Float32Array.from(c.A)), [3, c.K])
          : new ort.Tensor('float32', Float32Array.from(c.A), [3, c.K]);
      const out = (await session.run({ A: a })).Y!.data;
      await session.release();
      const y = c.half === 1 ? fromFloat16Array(float16Bits(out)) : (out as Float32Array);
      // fp16 outputs round to about 3 significant digits.
      expect(maxAbsDiff(y, c.Y)).toBeLessThan(c.half === 1 ? 2e-2 : 1e-4);
      // And quantization itself is close to the float product (not a wrong-but-consistent layout,
      // which would err by about the size of Y itself).
      expect(relativeError(y, c.Y32)).toBeLessThan(c.file.includes('mm_4') ? 0.15 : 0.02);
    }
  });
});
