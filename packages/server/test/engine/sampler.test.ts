import { describe, expect, it } from 'vitest';
import { argmax, createRng, sampleToken } from '../../src/engine/sampler.js';

describe('argmax', () => {
  it('picks the largest logit, the first on a tie', () => {
    expect(argmax(Float32Array.from([0.1, 3, -1, 3]))).toBe(1);
  });

  it('skips a suppressed range', () => {
    expect(argmax(Float32Array.from([0, 9, 8, 1]), [1, 2])).toBe(3);
  });
});

describe('createRng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const first = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(first);
    expect(Array.from({ length: 5 }, () => c())).not.toEqual(first);
    for (const x of first) expect(x >= 0 && x < 1).toBe(true);
  });
});

describe('sampleToken', () => {
  const logits = Float32Array.from([2, 1, 0.5, 0, -1, -3]);

  it('is greedy at temperature 0', () => {
    expect(sampleToken(logits, { temperature: 0, topP: 1 }, createRng(1))).toBe(0);
  });

  it('is reproducible with a seed and explores without one fixed', () => {
    const draw = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 50 }, () =>
        sampleToken(logits, { temperature: 1, topP: 1 }, rng),
      );
    };
    expect(draw(7)).toEqual(draw(7));
    expect(new Set(draw(7)).size).toBeGreaterThan(2);
  });

  it('follows the softmax distribution', () => {
    const rng = createRng(123);
    const counts = new Array<number>(logits.length).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1, topP: 1 }, rng)]!++;
    const exp = Array.from(logits, (l) => Math.exp(l));
    const total = exp.reduce((s, x) => s + x, 0);
    exp.forEach((e, id) => expect(Math.abs(counts[id]! / n - e / total)).toBeLessThan(0.015));
  });

  it('keeps only the nucleus with top-p', () => {
    // probabilities at T=1: ~0.56, 0.21, 0.13, 0.08, ...; top-p 0.7 keeps ids 0 and 1 only
    const rng = createRng(5);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++)
      seen.add(sampleToken(logits, { temperature: 1, topP: 0.7 }, rng));
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it('never samples a suppressed id', () => {
    const rng = createRng(9);
    for (let i = 0; i < 500; i++) {
      const id = sampleToken(logits, { temperature: 2, topP: 1, suppress: [0, 2] }, rng);
      expect(id).toBeGreaterThan(2);
    }
  });

  it('handles a large vocabulary with a sharp top-p', () => {
    const big = new Float32Array(130000).fill(-5);
    big[777] = 10;
    big[4242] = 9.5;
    const rng = createRng(11);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(sampleToken(big, { temperature: 1, topP: 0.9 }, rng));
    expect([...seen].sort((a, b) => a - b)).toEqual([777, 4242]);
  });
});
