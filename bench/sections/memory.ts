import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { runClosedLoop } from '../load.js';
import { batchingOf } from '../settings.js';
import { median, round, slope } from '../stats.js';

const CONCURRENCY = 8;
const WARMUP_REQUESTS = 100;
const CHECKPOINTS = 10;
const SETTLE_READINGS = 3;

/**
 * Server RSS (/proc/<pid>/status VmRSS of the child process: main thread, engine worker and
 * native memory) after warm-up and through N more requests at concurrency 8. Each reading
 * follows a full GC in the server's main thread, so that it compares retained memory.
 */
export async function memory(context: BenchContext) {
  const { settings, workload, log } = context;
  return withServer(context, { batching: batchingOf(settings, true) }, async (server, client) => {
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
    };
    log(
      `memory: RSS ${result.rssAfterWarmupMiB} MiB after warm-up, ${result.rssFinalMiB} MiB after ${total} requests (${result.growthPercent}%, trend ${result.trendMiBPer1000Requests} MiB per 1000 requests)`,
    );
    return result;
  });
}
