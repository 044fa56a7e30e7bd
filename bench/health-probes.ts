import { round } from './stats.js';

// /health polled while bursts of work run against a server: the large-image measurements of
// the baseline and largeimages sections.

const HEALTH_EVERY_MS = 20;

/**
 * Runs `bursts` bursts one after the other (each `burst()` starts its asks and settles with
 * their outcomes), polling `${url}/health` every 20 ms while each runs: every probe's time,
 * each burst's slowest (a burst now ends within a second, about 30 probes), and the outcomes.
 */
export async function probeHealthDuringBursts<T>(
  url: string,
  bursts: number,
  burst: () => Promise<PromiseSettledResult<T>[]>,
) {
  const healthMs: number[] = [];
  const burstMaxMs: number[] = [];
  const outcomes: PromiseSettledResult<T>[] = [];
  for (let b = 0; b < bursts; b++) {
    let done = false;
    const runs = burst().finally(() => (done = true));
    let slowest = 0;
    while (!done) {
      const probeStarted = performance.now();
      await (await fetch(`${url}/health`)).arrayBuffer();
      const probeMs = performance.now() - probeStarted;
      if (!done) {
        healthMs.push(probeMs);
        slowest = Math.max(slowest, probeMs);
      }
      await new Promise((resolve) => setTimeout(resolve, HEALTH_EVERY_MS));
    }
    outcomes.push(...(await runs));
    burstMaxMs.push(round(slowest));
  }
  return { healthMs, burstMaxMs, outcomes };
}
