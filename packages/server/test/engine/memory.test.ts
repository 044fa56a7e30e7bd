import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DOC_PATH,
  KV_BYTES_PER_TOKEN,
  magmaParams,
  sizingTable,
  tableInDoc,
  weightBytes,
} from '../../../../tools/sizing/memory-table.js';
import { loadBundle } from '../../src/engine/bundle.js';
import { EngineError } from '../../src/engine/errors.js';
import { Engine } from '../../src/engine/index.js';
import { checkMemoryBudget, kvBytesPerToken, memoryReport } from '../../src/engine/memory.js';
import { MODEL_DIR } from '../server/helpers.js';

// Memory accounting on the real bundle: bytes per graph, KV bytes per token from config.json,
// the start-up budget check (a real engine refusing to open the model), and docs/MEMORY.md's
// Magma-8B table recomputed from the shapes.

describe('memory accounting', () => {
  const bundle = loadBundle(MODEL_DIR, { dtype: 'fp32' });

  it('KV bytes per token: layers x 2 x kv heads x head_dim x element bytes', () => {
    // magma-tiny-som: 4 layers, 2 KV heads, head_dim 32, fp32.
    expect(kvBytesPerToken(bundle.config, 4)).toBe(4 * 2 * 2 * 32 * 4);
    // Magma-8B in fp16: 128 KiB, as MAGMA-REFERENCE.md works out.
    expect(KV_BYTES_PER_TOKEN).toBe(131_072);
  });

  it('reports each graph file with its dtype and bytes on disk', () => {
    const report = memoryReport(bundle, 4);
    expect(report.graphs.map((g) => [g.graph, g.file, g.dtype])).toEqual([
      ['vision_encoder', 'vision_encoder.onnx', 'fp32'],
      ['embed_tokens', 'embed_tokens.onnx', 'fp32'],
      ['decoder_model_merged', 'decoder_model_merged.onnx', 'fp32'],
    ]);
    for (const g of report.graphs)
      expect(g.bytes).toBe(statSync(join(MODEL_DIR, 'onnx', g.file)).size);
    expect(report.weightBytes).toBe(report.graphs.reduce((s, g) => s + g.bytes, 0));
    expect(report.kvBytesPerToken).toBe(2048);
    expect(report.maxContextTokens).toBe(bundle.config.maxPositionEmbeddings);
    expect(report.worstCaseBytes).toBe(report.weightBytes + 4 * 1024 * 2048);
  });

  it('the budget check passes at the worst case and refuses one byte less, naming the numbers', () => {
    const report = memoryReport(bundle, 4);
    expect(() => checkMemoryBudget(report, 0)).not.toThrow();
    expect(() => checkMemoryBudget(report, report.worstCaseBytes)).not.toThrow();
    let error: unknown;
    try {
      checkMemoryBudget(report, report.worstCaseBytes - 1);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('MEMORY_BUDGET_EXCEEDED');
    const message = (error as EngineError).message;
    expect(message).toContain(`weights ${report.weightBytes} bytes`);
    expect(message).toContain('4 sequences x 1024 tokens x 2048 bytes per token');
    expect(message).toContain(`= ${report.worstCaseBytes} bytes > MAGMA_MEMORY_BUDGET_BYTES`);
    // One sequence less would fit: the hint says how many do.
    expect(message).toContain('at most 3 sequence(s)');
  });

  it('a real engine refuses to start over budget and reports its memory when it fits', async () => {
    const report = memoryReport(bundle, 2);
    await expect(
      Engine.start({
        modelDir: MODEL_DIR,
        maxBatchSize: 2,
        memoryBudgetBytes: report.worstCaseBytes - 1,
        intraOpNumThreads: 1,
      }),
    ).rejects.toMatchObject({ code: 'MEMORY_BUDGET_EXCEEDED' });

    const engine = await Engine.start({
      modelDir: MODEL_DIR,
      maxBatchSize: 2,
      memoryBudgetBytes: report.worstCaseBytes,
      intraOpNumThreads: 1,
    });
    try {
      expect(engine.info.memory).toEqual(report);
    } finally {
      await engine.close();
    }
  });
});

describe('docs/MEMORY.md Magma-8B table', () => {
  it('is what tools/sizing/memory-table.ts computes', () => {
    const doc = readFileSync(DOC_PATH, 'utf8');
    expect(tableInDoc(doc), 'run: node --import tsx tools/sizing/memory-table.ts --write').toBe(
      sizingTable(),
    );
  });

  it('the parameter count matches the Hub checkpoint (17.8 GB of 16-bit shards)', () => {
    const p = magmaParams();
    expect((p.quantizableParams + p.otherParams) / 1e9).toBeCloseTo(8.9, 1);
    expect(weightBytes('fp16') / 1e9).toBeCloseTo(17.8, 1);
    expect(weightBytes('int4')).toBeLessThan(weightBytes('int8'));
  });
});
