import * as ort from 'onnxruntime-node';
import { fromFloat16Array, toFloat16Array } from './float16.js';
import type { FloatType } from './model-sessions.js';

// Small helpers to build and read tensors whatever float type a graph edge uses.

/**
 * A float16 tensor over raw half-precision bits. Where the runtime has a built-in Float16Array
 * (Node 24), onnxruntime-common re-wraps Uint16Array data as one, and onnxruntime-node 1.30's
 * addon then reads zero bytes from it ("not enough space: expected N, got 0"); handing the
 * tensor its Uint16Array back keeps the bits where the addon looks.
 */
export function float16Tensor(bits: Uint16Array, dims: readonly number[]): ort.Tensor {
  const tensor = new ort.Tensor('float16', bits, dims);
  if (!(tensor.data instanceof Uint16Array)) {
    (tensor as unknown as { cpuData: Uint16Array }).cpuData = bits;
  }
  return tensor;
}

export function floatTensor(
  type: FloatType,
  values: Float32Array,
  dims: readonly number[],
): ort.Tensor {
  return type === 'float16'
    ? float16Tensor(toFloat16Array(values), dims)
    : new ort.Tensor('float32', values, dims);
}

/**
 * The raw half-precision bits of a float16 tensor's data: a Uint16Array, or (Node 24, where
 * onnxruntime-common wraps them as Float16Array) a Uint16Array view of the same bytes.
 */
export function float16Bits(data: unknown): Uint16Array {
  if (data instanceof Uint16Array) return data;
  const view = data as ArrayBufferView & { length: number };
  return new Uint16Array(view.buffer, view.byteOffset, view.length);
}

/** The data of a float tensor as bits (float16) or floats (float32), ready to copy. */
export function tensorValues(tensor: ort.Tensor): Float32Array | Uint16Array {
  return tensor.type === 'float16' ? float16Bits(tensor.data) : (tensor.data as Float32Array);
}

/** A float16 (bits) or float32 tensor over `values`. */
export function tensorOf(
  type: FloatType,
  values: Float32Array | Uint16Array,
  dims: readonly number[],
): ort.Tensor {
  return type === 'float16'
    ? float16Tensor(values as Uint16Array, dims)
    : new ort.Tensor('float32', values as Float32Array, dims);
}

export function readFloats(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') return fromFloat16Array(float16Bits(tensor.data));
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
  const dims = [batch, heads, 0, headDim];
  return type === 'float16'
    ? float16Tensor(new Uint16Array(0), dims)
    : new ort.Tensor(type, new Float32Array(0), dims);
}

/** A tensor whose data lives in GPU memory must be released explicitly. */
export function disposeTensor(tensor: ort.Tensor): void {
  if (tensor.location === 'gpu-buffer') tensor.dispose();
}
