/** Nearest-rank percentile (p in 0..100) of a non-empty list of samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  /** Every sample, in milliseconds, in the order measured. */
  readonly samples: readonly number[];
}

export function summarize(samples: readonly number[]): LatencySummary {
  return { p50: percentile(samples, 50), p95: percentile(samples, 95), samples };
}
