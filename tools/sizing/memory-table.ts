// Memory sizing of microsoft/Magma-8B served from this project's bundle layout: weights per dtype,
// KV cache per token, and which GPUs hold which (context, batch). Writes the table in
// docs/MEMORY.md between its markers; packages/server/test/engine/memory.test.ts recomputes it
// and fails when the doc is stale.
//
//   node --import tsx tools/sizing/memory-table.ts          # print the table
//   node --import tsx tools/sizing/memory-table.ts --write  # update docs/MEMORY.md
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kvBytesPerToken } from '../../packages/server/src/engine/memory.js';

/** Magma-8B's shapes (config.json on the Hub; /work/shared/MAGMA-REFERENCE.md has the sources). */
export const MAGMA_8B = {
  hiddenSize: 4096,
  numLayers: 32,
  numAttentionHeads: 32,
  numKeyValueHeads: 8,
  headDim: 128,
  intermediateSize: 14336,
  // 128256 Llama-3 ids plus Magma's added tokens (<pad>, <image>, ...), padded to a multiple of 64
  // by Magma's conversion script; the exporter reads the real row count from the weights.
  vocabRows: 128320,
  // ConvNeXt-XXLarge trunk (depths [3,4,30,3], dims up to 3072): about 0.85 B parameters.
  visionTrunkParams: 850_000_000,
  mmHiddenSize: 3072,
} as const;

export type SizingDtype = 'fp16' | 'int8' | 'int4';
/** Scales: one fp16 per block of 32 weights (quantize.py --base fp16 --block-size 32). */
const BLOCK = 32;
const SCALE_BYTES = 2;

/** Bytes per weight of the quantized linear layers; everything else stays fp16. */
function linearBytesPerWeight(dtype: SizingDtype): number {
  if (dtype === 'fp16') return 2;
  return (dtype === 'int8' ? 1 : 0.5) + SCALE_BYTES / BLOCK;
}

export interface WeightBreakdown {
  /** Decoder q/k/v/o + gate/up/down, lm_head, projector: what quantize.py rewrites. */
  readonly quantizableParams: number;
  /** Vision trunk, embeddings, norms, biases, row separator: kept at fp16. */
  readonly otherParams: number;
}

export function magmaParams(m = MAGMA_8B): WeightBreakdown {
  const h = m.hiddenSize;
  const kv = m.numKeyValueHeads * m.headDim;
  const attn = h * (m.numAttentionHeads * m.headDim) * 2 + h * kv * 2; // q, o + k, v
  const mlp = 3 * h * m.intermediateSize;
  const decoderLinear = m.numLayers * (attn + mlp);
  const lmHead = h * m.vocabRows;
  const projector = m.mmHiddenSize * h + h * h;
  const norms = m.numLayers * 2 * h + h;
  const projectorBias = 2 * h;
  const rowSeparator = h;
  const embeddings = h * m.vocabRows;
  return {
    quantizableParams: decoderLinear + lmHead + projector,
    otherParams: m.visionTrunkParams + embeddings + norms + projectorBias + rowSeparator,
  };
}

export function weightBytes(dtype: SizingDtype, m = MAGMA_8B): number {
  const p = magmaParams(m);
  return Math.round(p.quantizableParams * linearBytesPerWeight(dtype) + p.otherParams * 2);
}

/** fp16 KV cache (the fp16, q4f16 and q8f16 graphs keep fp16 edges). */
export const KV_BYTES_PER_TOKEN = kvBytesPerToken(MAGMA_8B, 2);

export const GPUS_GB = [24, 48, 80, 141] as const;
export const CONTEXTS = [1024, 4096] as const;
export const BATCHES = [1, 4, 8] as const;
/**
 * Share of a GPU's memory left for what the table does not count: CUDA context, onnxruntime's
 * arena and workspaces, activations (the vision encoder's 4 crops of 512x512 at ConvNeXt-XXL
 * widths above all), fragmentation. A row "fits" when weights + KV <= 90 % of the GPU.
 */
export const HEADROOM = 0.1;
const GB = 1e9;

function gb(bytes: number): string {
  return (bytes / GB).toFixed(1);
}

/** The markdown table docs/MEMORY.md carries between its markers. */
export function sizingTable(): string {
  const lines: string[] = [];
  lines.push(
    `| dtype | weights GB | context | batch | KV GB | total GB | ${GPUS_GB.map((g) => `${g} GB`).join(' | ')} |`,
  );
  lines.push(`|---|---|---|---|---|---|${GPUS_GB.map(() => '---').join('|')}|`);
  for (const dtype of ['fp16', 'int8', 'int4'] as const) {
    const weights = weightBytes(dtype);
    for (const context of CONTEXTS) {
      for (const batch of BATCHES) {
        const kv = batch * context * KV_BYTES_PER_TOKEN;
        const total = weights + kv;
        const fits = GPUS_GB.map((g) => (total <= g * GB * (1 - HEADROOM) ? 'yes' : 'no'));
        lines.push(
          `| ${dtype} | ${gb(weights)} | ${context} | ${batch} | ${gb(kv)} | ${gb(total)} | ${fits.join(' | ')} |`,
        );
      }
    }
  }
  // The same budget read the other way: how many sequences of each context fit beside the weights.
  lines.push('');
  lines.push(`| dtype | context | ${GPUS_GB.map((g) => `max batch, ${g} GB`).join(' | ')} |`);
  lines.push(`|---|---|${GPUS_GB.map(() => '---').join('|')}|`);
  for (const dtype of ['fp16', 'int8', 'int4'] as const) {
    const weights = weightBytes(dtype);
    for (const context of CONTEXTS) {
      const maxBatch = GPUS_GB.map((g) =>
        Math.max(
          0,
          Math.floor((g * GB * (1 - HEADROOM) - weights) / (context * KV_BYTES_PER_TOKEN)),
        ),
      );
      lines.push(`| ${dtype} | ${context} | ${maxBatch.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

export const BEGIN = '<!-- memory-table:begin (tools/sizing/memory-table.ts --write) -->';
export const END = '<!-- memory-table:end -->';

export function tableInDoc(doc: string): string | undefined {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) return undefined;
  return doc.slice(start + BEGIN.length, end).trim();
}

const here = dirname(fileURLToPath(import.meta.url));
export const DOC_PATH = join(here, '../../docs/MEMORY.md');

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const table = sizingTable();
  if (process.argv.includes('--write')) {
    const doc = readFileSync(DOC_PATH, 'utf8');
    if (tableInDoc(doc) === undefined) throw new Error(`${DOC_PATH} has no ${BEGIN} ... ${END}`);
    const start = doc.indexOf(BEGIN) + BEGIN.length;
    writeFileSync(DOC_PATH, `${doc.slice(0, start)}\n${table}\n${doc.slice(doc.indexOf(END))}`);
    console.log(`updated ${DOC_PATH}`);
  } else {
    console.log(table);
  }
  const p = magmaParams();
  console.log(
    `\nparams: quantizable ${p.quantizableParams}, other ${p.otherParams}, total ${p.quantizableParams + p.otherParams}; KV ${KV_BYTES_PER_TOKEN} bytes/token (fp16)`,
  );
}
