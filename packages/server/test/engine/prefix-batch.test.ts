import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { PrefixBatch } from '../../src/engine/prefix-batch.js';
import type { PrefixKv } from '../../src/engine/prefix-batch.js';

const HEADS = 2;
const HEAD_DIM = 3;
const COUNT = 4; // tensors per prefix (2 layers x key, value)

/** A prefix whose every value says which prefix, tensor, head, position and element it is. */
function prefix(id: number, length: number): PrefixKv {
  const tensors = Array.from({ length: COUNT }, (_, k) => {
    const data = new Float32Array(HEADS * length * HEAD_DIM);
    data.forEach((_, i) => (data[i] = id * 1000 + k * 100 + i + 1));
    return new ort.Tensor('float32', data, [1, HEADS, length, HEAD_DIM]);
  });
  return { tensors, length };
}

/** What the rows must be: each prefix left-padded with zeros to `width`, built from scratch. */
function expected(sources: readonly (PrefixKv | null)[], width: number, k: number): number[] {
  const out: number[] = [];
  for (const source of sources) {
    for (let h = 0; h < HEADS; h++) {
      const length = source?.length ?? 0;
      for (let j = 0; j < width - length; j++) for (let d = 0; d < HEAD_DIM; d++) out.push(0);
      if (source === null) continue;
      const data = source.tensors[k]!.data as Float32Array;
      out.push(...data.subarray(h * length * HEAD_DIM, (h + 1) * length * HEAD_DIM));
    }
  }
  return out;
}

/** Arranges the rows and checks every row against a fresh left-padded build of its prefix. */
function check(batch: PrefixBatch, sources: readonly (PrefixKv | null)[]) {
  const longest = Math.max(...sources.map((s) => s?.length ?? 0));
  const arranged = batch.arrange(sources, longest);
  const width = arranged.width;
  expect(width).toBeGreaterThanOrEqual(longest);
  // every sequence has exactly one row
  expect([...arranged.order].sort((x, y) => x - y)).toEqual(sources.map((_, i) => i));
  const rows = arranged.order.map((i) => sources[i]!);
  expect(arranged.tensors).toHaveLength(COUNT);
  arranged.tensors.forEach((tensor, k) => {
    expect(tensor.dims).toEqual([sources.length, HEADS, width, HEAD_DIM]);
    expect(Array.from(tensor.data as Float32Array)).toEqual(expected(rows, width, k));
  });
  return { order: arranged.order, rows, tensors: arranged.tensors };
}

describe('PrefixBatch', () => {
  it('keeps every row equal to a fresh left-padded build as sequences leave, join and reorder', () => {
    const batch = new PrefixBatch('float32', COUNT, HEADS, HEAD_DIM);
    const [a, b, c, d, e] = [prefix(1, 5), prefix(2, 3), prefix(3, 5), prefix(4, 4), prefix(5, 2)];
    const first = check(batch, [a, b, c, d]);
    expect(first.rows).toEqual([a, b, c, d]);
    // nothing changed: the same tensors, the same rows
    const again = check(batch, [a, b, c, d]);
    expect(again.tensors).toBe(first.tensors);
    expect(again.order).toEqual([0, 1, 2, 3]);
    // b leaves from the middle: the last row takes its place, the others stay
    expect(check(batch, [a, c, d]).rows).toEqual([a, d, c]);
    // e joins in the free row at the end
    expect(check(batch, [a, c, d, e]).rows).toEqual([a, d, c, e]);
    // the scheduler's rotation changes the caller's order, not the rows
    expect(check(batch, [c, d, e, a]).rows).toEqual([a, d, c, e]);
    // a leaves and b joins: b takes a's row
    expect(check(batch, [c, d, e, b]).rows).toEqual([b, d, c, e]);
    check(batch, [c, null, e, a]); // a row without a prefix is all padding
    check(batch, [d, e]);
    check(batch, [d, e, a, b, c, prefix(6, 1)]); // more rows than ever: the buffers grow
    const wide = check(batch, [prefix(7, 40), e]); // a longer prefix than the buffers hold: wider ones
    expect(wide.tensors[0]!.dims[2]).toBeGreaterThanOrEqual(40);
    // a little shorter: the same buffers, more padding
    expect(check(batch, [prefix(8, 30), e]).tensors[0]!.dims[2]).toBe(wide.tensors[0]!.dims[2]);
    check(batch, [prefix(9, 100), e]);
    // far shorter: narrower buffers again
    expect(check(batch, [b, e]).tensors[0]!.dims[2]).toBeLessThan(100);
  });

  it('writes float16 caches as their bits', () => {
    const batch = new PrefixBatch('float16', 1, 1, 2);
    const bits = (values: number[]) => ({
      tensors: [new ort.Tensor('float16', Uint16Array.from(values), [1, 1, values.length / 2, 2])],
      length: values.length / 2,
    });
    const { tensors, width } = batch.arrange([bits([1, 2, 3, 4]), bits([5, 6])], 2);
    const row = (values: number[]) => [
      ...new Array<number>(2 * width - values.length).fill(0),
      ...values,
    ];
    expect(Array.from(tensors[0]!.data as Uint16Array)).toEqual([
      ...row([1, 2, 3, 4]),
      ...row([5, 6]),
    ]);
  });
});
