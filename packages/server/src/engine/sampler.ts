// Next-token choice: greedy argmax, or temperature + top-p (nucleus) sampling driven by a
// seeded PRNG so that the same seed gives the same text.

export interface SamplingOptions {
  /** 0 = greedy. */
  readonly temperature: number;
  readonly topP: number;
  /** Inclusive id range never chosen (Magma's robot action tokens). */
  readonly suppress?: readonly [number, number];
}

/** mulberry32: small, fast, good enough to draw tokens; same seed, same sequence. */
export function createRng(seed: number): () => number {
  // fold a possibly 53-bit integer seed into 32 bits
  let state = (Math.trunc(seed) ^ Math.trunc(seed / 0x100000000)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

function isSuppressed(id: number, suppress: readonly [number, number] | undefined): boolean {
  return suppress !== undefined && id >= suppress[0] && id <= suppress[1];
}

export function argmax(logits: Float32Array, suppress?: readonly [number, number]): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let id = 0; id < logits.length; id++) {
    const value = logits[id]!;
    if (value > bestValue && !isSuppressed(id, suppress)) {
      best = id;
      bestValue = value;
    }
  }
  // every logit -Infinity or NaN: fall back to the first allowed id rather than -1
  if (best < 0) for (best = 0; isSuppressed(best, suppress); best++);
  return best;
}

export function sampleToken(
  logits: Float32Array,
  options: SamplingOptions,
  random: () => number,
): number {
  if (options.temperature <= 0) return argmax(logits, options.suppress);
  const { suppress } = options;
  let max = -Infinity;
  for (let id = 0; id < logits.length; id++) {
    if (!isSuppressed(id, suppress) && logits[id]! > max) max = logits[id]!;
  }
  if (!Number.isFinite(max)) return argmax(logits, suppress);
  const probs = new Float64Array(logits.length);
  let total = 0;
  for (let id = 0; id < logits.length; id++) {
    if (isSuppressed(id, suppress)) continue;
    const p = Math.exp((logits[id]! - max) / options.temperature);
    probs[id] = p;
    total += p;
  }
  const candidates = nucleus(probs, total, options.topP);
  let mass = 0;
  for (const id of candidates) mass += probs[id]!;
  let draw = random() * mass;
  for (const id of candidates) {
    draw -= probs[id]!;
    if (draw < 0) return id;
  }
  return candidates[candidates.length - 1]!;
}

/**
 * Smallest set of most probable ids whose mass reaches topP. Only ids above a threshold are
 * sorted (lowered until they hold enough mass), which is exact: the nucleus is a prefix of the
 * sorted order, so it lies inside any such set.
 */
function nucleus(probs: Float64Array, total: number, topP: number): number[] {
  const target = Math.min(topP, 1) * total;
  if (topP >= 1) {
    const all: number[] = [];
    for (let id = 0; id < probs.length; id++) if (probs[id]! > 0) all.push(id);
    return all;
  }
  let threshold = 1 / 1024; // the largest p is exp(0) = 1
  for (;;) {
    const selected: number[] = [];
    let mass = 0;
    for (let id = 0; id < probs.length; id++) {
      if (probs[id]! >= threshold) {
        selected.push(id);
        mass += probs[id]!;
      }
    }
    if (mass >= target || threshold < Number.MIN_VALUE * 1024) {
      selected.sort((a, b) => probs[b]! - probs[a]! || a - b);
      const kept: number[] = [];
      let cumulative = 0;
      for (const id of selected) {
        kept.push(id);
        cumulative += probs[id]!;
        if (cumulative >= target) break;
      }
      return kept;
    }
    threshold /= 1024;
  }
}
