import { describe, expect, it } from 'vitest';
import {
  float16BitsToFloat32,
  float32ToFloat16Bits,
  fromFloat16Array,
  toFloat16Array,
} from '../../src/engine/float16.js';

describe('float16 conversion', () => {
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite half
    [70000, 0x7c00], // overflows to Infinity
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -14, 0x0400], // smallest normal
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: ties to even
    [1 + 3 * 2 ** -11, 0x3c02], // halfway, rounds up to even
  ])('%d <-> 0x%s', (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
    if (Math.abs(value) <= 65504 && value !== 1 + 2 ** -11 && value !== 1 + 3 * 2 ** -11) {
      expect(Object.is(float16BitsToFloat32(bits), value)).toBe(true);
    }
  });

  it('maps NaN to a half NaN', () => {
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
  });

  it('round-trips arrays within half precision', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 100);
    const back = fromFloat16Array(toFloat16Array(values));
    for (let i = 0; i < values.length; i++) {
      expect(Math.abs(back[i]! - values[i]!)).toBeLessThanOrEqual(
        Math.abs(values[i]!) * 2 ** -11 + 1e-7,
      );
    }
  });
});
