import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { runClosedLoop } from '../load.js';
import { batchingOf } from '../settings.js';
import { round } from '../stats.js';

const IDLE_MS = 2000;
const SATURATING_CONCURRENCY = 16;

/**
 * The server's main-thread event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution,
 * resolution subtracted), idle and while the engine is saturated by 16 concurrent callers.
 */
export async function eventLoop(context: BenchContext) {
  const { settings, workload, log } = context;
  return withServer(context, { batching: batchingOf(settings, true) }, async (server, client) => {
    server.resetLoopDelay();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const idle = await server.readLoopDelay();

    server.resetLoopDelay();
    const run = await runClosedLoop(client, workload, {
      concurrency: SATURATING_CONCURRENCY,
      requests: settings.eventLoopRequests,
      maxTokens: settings.maxTokens,
    });
    const saturated = await server.readLoopDelay();
    const rounded = (d: typeof idle) => ({
      p50: round(d.p50),
      p99: round(d.p99),
      max: round(d.max),
      mean: round(d.mean),
      samples: d.samples,
    });
    const result = {
      concurrency: SATURATING_CONCURRENCY,
      requests: run.samples.length,
      errors: run.errors,
      seconds: round(run.elapsedMs / 1000, 1),
      idleMs: rounded(idle),
      saturatedMs: rounded(saturated),
    };
    log(
      `event loop: p99 ${result.saturatedMs.p99} ms (max ${result.saturatedMs.max} ms) saturated at c=${SATURATING_CONCURRENCY}; idle p99 ${result.idleMs.p99} ms`,
    );
    return result;
  });
}
