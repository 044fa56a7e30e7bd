import * as ort from 'onnxruntime-node';
import { fromFloat16Array, toFloat16Array } from './float16.js';
import type { FloatType } from './model-sessions.js';

// Small helpers to build and read tensors whatever float type a graph edge uses.

export function floatTensor(
  type: FloatType,
  values: Float32Array,
  dims: readonly number[],
): ort.Tensor {
  return type === 'float16'
    ? new ort.Tensor('float16', toFloat16Array(values), dims)
    : new ort.Tensor('float32', values, dims);
}

export function readFloats(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') return fromFloat16Array(tensor.data as Uint16Array);
  throw new TypeError(`expected a float tensor, got ${tensor.type}`);
}

export function int64Tensor(values: readonly number[], dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(
    'int64',
    BigInt64Array.from(values, (v) => BigInt(v)),
    dims,
  );
}

export function emptyKv(
  type: FloatType,
  batch: number,
  heads: number,
  headDim: number,
): ort.Tensor {
  const data = type === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  return new ort.Tensor(type, data, [batch, heads, 0, headDim]);
}

/** A tensor whose data lives in GPU memory must be released explicitly. */
export function disposeTensor(tensor: ort.Tensor): void {
  if (tensor.location === 'gpu-buffer') tensor.dispose();
}
