import type * as ort from 'onnxruntime-node';
import type { FloatType } from './model-sessions.js';
import { tensorOf, tensorValues } from './tensors.js';

/**
 * Keys and values of positions before a sequence's own cache, which the decoder reads in place
 * (prefix_key_values.*): a cached image prompt, or the sequence's own prompt once prefilled. One
 * sequence's, unpadded: per layer [1, kv_heads, length, head_dim], in graph input order. Never
 * written to, so sequences and the prefix cache share them.
 */
export interface PrefixKv {
  readonly tensors: readonly ort.Tensor[];
  readonly length: number;
}

type KvData = Float32Array | Uint16Array;

export interface ArrangedPrefixes {
  /** For each row of the run, the index of its sequence in the caller's list. */
  readonly order: readonly number[];
  readonly tensors: readonly ort.Tensor[];
  /** Positions per row, padding included: at least the longest prefix (the attention mask's prefix width). */
  readonly width: number;
}

/** Buffers are this many positions wider than asked, so prompts of slightly different lengths do not rebuild them. */
const WIDTH_STEP = 32;

/**
 * The prefix inputs of batched decoder runs: every row's prefix left-padded to one width, in
 * buffers kept between runs. Short answers make sequences leave and join a running batch every
 * token or two; rebuilding [B, kv_heads, width, head_dim] for each change would copy every
 * prefix again (9.6 MB per change at batch 16 on magma-tiny-som). Here rows keep their place:
 * a joining prefix is copied into a free row, and a leaving one's row is taken by a joiner or by
 * the last row, so a change copies one row per sequence that came or went. The run takes its
 * rows in this order (`order`); the other inputs follow it.
 */
export class PrefixBatch {
  /** The prefix in each row of the buffers. */
  private rows: (PrefixKv | null)[] = [];
  private width = 0;
  private capacity = 0;
  private buffers: KvData[] = [];
  /** Views of the buffers' first rows, kept while the buffers and the batch size stay the same. */
  private views: readonly ort.Tensor[] = [];

  constructor(
    private readonly type: FloatType,
    /** Tensors per prefix (2 x layers). */
    private readonly count: number,
    private readonly heads: number,
    private readonly headDim: number,
  ) {}

  /**
   * Rows for these prefixes, `longest` the longest of them; the same tensors while the batch
   * size and width stay the same. The buffers are rebuilt only when they lack positions or rows,
   * or are more than twice as wide as needed; capacity grows by doubling, up to twice the
   * largest batch seen.
   */
  arrange(sources: readonly (PrefixKv | null)[], longest: number): ArrangedPrefixes {
    const batch = sources.length;
    const needed = Math.ceil(longest / WIDTH_STEP) * WIDTH_STEP;
    if (longest > this.width || this.width > 2 * needed || batch > this.capacity) {
      this.allocate(
        batch > this.capacity ? Math.max(batch, 2 * this.capacity) : this.capacity,
        needed,
      );
    }
    const width = this.width;
    // sequences still here keep their row when it is among the first `batch`
    const waiting = new Map<PrefixKv | null, number[]>();
    sources.forEach((source, i) => waiting.set(source, [...(waiting.get(source) ?? []), i]));
    const order: (number | undefined)[] = new Array<number | undefined>(batch).fill(undefined);
    const movers: Array<{ from: number; index: number }> = [];
    this.rows.forEach((source, row) => {
      const index = waiting.get(source)?.shift();
      if (index === undefined) return;
      if (row < batch) order[row] = index;
      else movers.push({ from: row, index });
    });
    const joiners = [...waiting.values()].flat();
    const rows = this.rows.slice(0, batch);
    const rowSize = this.heads * width * this.headDim;
    for (let row = 0; row < batch; row++) {
      if (order[row] !== undefined) continue;
      const mover = movers.shift();
      // rows at or past `batch` are not written in this pass, so a mover's row is still intact
      if (mover !== undefined) {
        for (const buffer of this.buffers)
          buffer.copyWithin(row * rowSize, mover.from * rowSize, (mover.from + 1) * rowSize);
        order[row] = mover.index;
      } else {
        const index = joiners.shift()!;
        const source = sources[index]!;
        this.buffers.forEach((buffer, k) => this.writeRow(buffer, row, source, k));
        order[row] = index;
      }
      rows[row] = sources[order[row]!] ?? null;
    }
    this.rows = rows;
    if (this.views[0]?.dims[0] !== batch) {
      const dims = [batch, this.heads, width, this.headDim];
      this.views = this.buffers.map((buffer) =>
        tensorOf(this.type, buffer.subarray(0, batch * rowSize), dims),
      );
    }
    return { order: order as number[], tensors: this.views, width };
  }

  private allocate(rows: number, width: number): void {
    const size = rows * this.heads * width * this.headDim;
    this.buffers = Array.from({ length: this.count }, () =>
      this.type === 'float16' ? new Uint16Array(size) : new Float32Array(size),
    );
    this.capacity = rows;
    this.width = width;
    // new buffers hold no rows yet, and the old views do not see them
    this.rows = [];
    this.views = [];
  }

  /** Row `row` of buffer k: per head, zeros, then the prefix's positions at the end of its span. */
  private writeRow(buffer: KvData, row: number, source: PrefixKv | null, k: number): void {
    const { heads, headDim, width } = this;
    const length = source?.length ?? 0;
    const values = source === null ? null : tensorValues(source.tensors[k]!);
    for (let h = 0; h < heads; h++) {
      const span = (row * heads + h) * width * headDim;
      const padding = (width - length) * headDim;
      buffer.fill(0, span, span + padding);
      if (values !== null) {
        const from = h * length * headDim;
        buffer.set(values.subarray(from, from + length * headDim), span + padding);
      }
    }
  }
}
