import type { Bundle, BundleDtype, GraphName, ModelConfig } from './bundle.js';
import { GRAPH_NAMES } from './bundle.js';
import { EngineError } from './errors.js';

// What a model needs in (GPU or host) memory: its weights, as the graph files' bytes, and the KV
// cache, which grows by a fixed number of bytes per token per sequence. Checked against
// MAGMA_MEMORY_BUDGET_BYTES before any session is opened, so a deployment that cannot hold its
// worst case fails at start-up with the numbers instead of running out of memory under load.

export interface GraphMemory {
  readonly graph: GraphName;
  /** File name inside the bundle's onnx/ folder. */
  readonly file: string;
  readonly dtype: BundleDtype;
  /** Bytes of the graph file plus its external data: about what its weights take once loaded. */
  readonly bytes: number;
}

export interface MemoryReport {
  readonly graphs: GraphMemory[];
  readonly weightBytes: number;
  /** numLayers x 2 (key and value) x numKeyValueHeads x headDim x bytes per element. */
  readonly kvBytesPerToken: number;
  readonly kvElementBytes: number;
  readonly maxBatchSize: number;
  /** Longest sequence a slot can hold: the model's max_position_embeddings. */
  readonly maxContextTokens: number;
  /** weightBytes + maxBatchSize x maxContextTokens x kvBytesPerToken. */
  readonly worstCaseBytes: number;
}

/** KV-cache bytes one token adds to one sequence. */
export function kvBytesPerToken(
  config: Pick<ModelConfig, 'numLayers' | 'numKeyValueHeads' | 'headDim'>,
  elementBytes: number,
): number {
  return config.numLayers * 2 * config.numKeyValueHeads * config.headDim * elementBytes;
}

/** KV element size the graphs will use: fp16 graphs keep fp16 caches, fp32 and q4/q8 (fp32 edges) fp32. */
export function kvElementBytesFor(dtype: BundleDtype): number {
  return dtype === 'fp16' || dtype.endsWith('f16') ? 2 : 4;
}

export function memoryReport(
  bundle: Pick<Bundle, 'graphFiles' | 'config' | 'dtype'>,
  maxBatchSize: number,
  kvElementBytes = kvElementBytesFor(bundle.dtype),
): MemoryReport {
  const graphs = GRAPH_NAMES.map((graph) => {
    const file = bundle.graphFiles[graph];
    return {
      graph,
      file: file.path.split(/[\\/]/).pop()!,
      dtype: file.dtype,
      bytes: file.bytes,
    };
  });
  const weightBytes = graphs.reduce((sum, g) => sum + g.bytes, 0);
  const perToken = kvBytesPerToken(bundle.config, kvElementBytes);
  const maxContextTokens = bundle.config.maxPositionEmbeddings;
  return {
    graphs,
    weightBytes,
    kvBytesPerToken: perToken,
    kvElementBytes,
    maxBatchSize,
    maxContextTokens,
    worstCaseBytes: weightBytes + maxBatchSize * maxContextTokens * perToken,
  };
}

/** Throws MEMORY_BUDGET_EXCEEDED naming every number when the worst case does not fit; 0 = no budget. */
export function checkMemoryBudget(report: MemoryReport, budgetBytes: number): void {
  if (!(budgetBytes > 0) || report.worstCaseBytes <= budgetBytes) return;
  const kvBytes = report.maxBatchSize * report.maxContextTokens * report.kvBytesPerToken;
  const fitting = Math.floor(
    (budgetBytes - report.weightBytes) / (report.maxContextTokens * report.kvBytesPerToken),
  );
  const hint =
    report.weightBytes >= budgetBytes
      ? 'the weights alone do not fit: use a smaller dtype (q8, q4) or a larger budget'
      : `at most ${fitting} sequence(s) of ${report.maxContextTokens} tokens fit: lower MAGMA_MAX_BATCH_SIZE / MAGMA_MAX_CONCURRENCY or use a smaller dtype`;
  throw new EngineError(
    'MEMORY_BUDGET_EXCEEDED',
    `memory budget exceeded: weights ${report.weightBytes} bytes + KV cache ${report.maxBatchSize} sequences x ` +
      `${report.maxContextTokens} tokens x ${report.kvBytesPerToken} bytes per token (${kvBytes} bytes) = ` +
      `${report.worstCaseBytes} bytes > MAGMA_MEMORY_BUDGET_BYTES ${budgetBytes}; ${hint}`,
  );
}
