import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { runClosedLoop } from '../load.js';
import { batchingOf } from '../settings.js';
import { median, round, slope } from '../stats.js';
import { createWorkload } from '../workload.js';
import type { Workload } from '../workload.js';

const CONCURRENCY = 8;
const WARMUP_REQUESTS = 100;
const CHECKPOINTS = 10;
const SETTLE_READINGS = 3;
/**
 * Distinct images, questions asked about each before the next (follow-ups, as users ask them),
 * and a prefix-cache budget of about 8 of the images' entries (~0.7 MiB each on the tiny model):
 * the run goes through misses, hits and evictions.
 */
const IMAGES = 12;
const QUESTIONS_PER_IMAGE = 5;
const CACHE_BYTES = 6 * 1024 * 1024;

function followUps(workloads: readonly Workload[]): Workload {
  const first = workloads[0]!;
  const imageOf = (i: number) => workloads[Math.floor(i / QUESTIONS_PER_IMAGE) % workloads.length]!;
  return {
    jpeg: first.jpeg,
    marks: first.marks,
    ask: (i, maxTokens) => imageOf(i).ask(i % QUESTIONS_PER_IMAGE, maxTokens),
  };
}

/** The server's prefix-cache counters, from /metrics. */
async function prefixCacheCounters(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counters: Record<string, number> = {};
  for (const name of ['hits_total', 'misses_total', 'evictions_total', 'bytes', 'budget_bytes']) {
    const match = new RegExp(`^magma_prefix_cache_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    counters[name] = Number(match?.[1] ?? NaN);
  }
  return counters;
}

/**
 * Server RSS (/proc/<pid>/status VmRSS of the child process: main thread, engine worker and
 * native memory) after warm-up and through N more requests at concurrency 8. Each reading
 * follows a full GC in the server's main thread, so that it compares retained memory. The
 * prefix cache is on, with a budget that holds fewer images than the workload goes through, so
 * the run has hits, misses and evictions (its counters are reported).
 */
export async function memory(context: BenchContext) {
  const { settings, log } = context;
  const workload = followUps(
    await Promise.all(Array.from({ length: IMAGES }, (_, j) => createWorkload(3000 + j))),
  );
  const options = {
    batching: batchingOf(settings, true),
    env: { MAGMA_PREFIX_CACHE_BYTES: String(CACHE_BYTES) },
  };
  return withServer(context, options, async (server, client) => {
    const load = (requests: number) =>
      runClosedLoop(client, workload, {
        concurrency: CONCURRENCY,
        requests,
        maxTokens: settings.maxTokens,
      });
    // the median of a few readings after a GC, since RSS moves with allocator timing
    const reading = async (answered: number) => {
      await server.collectGarbage();
      const values: number[] = [];
      for (let i = 0; i < SETTLE_READINGS; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        values.push(server.rssMiB());
      }
      return { answered, rssMiB: round(median(values), 1) };
    };
    const warm = await load(settings.quick ? 10 : WARMUP_REQUESTS);
    const afterWarmup = await reading(0);
    const readings = [afterWarmup];
    let errors = warm.errors;
    const total = settings.memoryRequests;
    const step = Math.ceil(total / CHECKPOINTS);
    for (let done = 0; done < total;) {
      const n = Math.min(step, total - done);
      const run = await load(n);
      errors += run.errors;
      done += n;
      readings.push(await reading(done));
      log(`memory: ${done}/${total} requests, RSS ${readings.at(-1)!.rssMiB} MiB`);
    }
    const final = readings.at(-1)!;
    const prefixCache = await prefixCacheCounters(server.url);
    const growth = (final.rssMiB - afterWarmup.rssMiB) / afterWarmup.rssMiB;
    const result = {
      requests: total,
      concurrency: CONCURRENCY,
      errors,
      rssAfterWarmupMiB: afterWarmup.rssMiB,
      rssFinalMiB: final.rssMiB,
      rssPeakMiB: Math.max(...readings.map((r) => r.rssMiB)),
      growthPercent: round(100 * growth, 2),
      /** Least-squares trend of the readings: a leak shows as a steady positive slope. */
      trendMiBPer1000Requests: round(1000 * slope(readings.map((r) => [r.answered, r.rssMiB])), 2),
      readings,
      prefixCache,
    };
    log(
      `memory: RSS ${result.rssAfterWarmupMiB} MiB after warm-up, ${result.rssFinalMiB} MiB after ${total} requests (${result.growthPercent}%, trend ${result.trendMiBPer1000Requests} MiB per 1000 requests); prefix cache ${JSON.stringify(prefixCache)}`,
    );
    return result;
  });
}
