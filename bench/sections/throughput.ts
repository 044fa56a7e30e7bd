import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { runClosedLoop } from '../load.js';
import { batchingOf } from '../settings.js';
import { round, summarize } from '../stats.js';

export interface ThroughputPoint {
  readonly concurrency: number;
  readonly requests: number;
  readonly errors: number;
  readonly requestsPerSecond: number;
  readonly tokensPerSecond: number;
  readonly latencyMs: ReturnType<typeof summarize>;
  readonly completionTokensMean: number;
  /** Server main-thread event-loop delay during this point. */
  readonly eventLoopP99Ms: number;
  /** CPU time per answered request: the benchmark's client, the server's main thread, the server's other threads. */
  readonly cpuMsPerRequest: { client: number; serverMain: number; serverOther: number };
}

/** Closed-loop throughput and latency at each concurrency, with batching off (maxBatchSize 1) and on. */
export async function throughput(context: BenchContext) {
  const { settings, log } = context;
  const modes: Record<string, ThroughputPoint[]> = {};
  for (const on of [false, true]) {
    const batching = batchingOf(settings, on);
    const mode = `maxBatchSize ${batching.maxBatchSize}`;
    modes[mode] = await withServer(context, { batching }, async (server, client) => {
      const points: ThroughputPoint[] = [];
      for (const concurrency of settings.concurrency) {
        server.resetLoopDelay();
        const serverCpu = server.cpuMs();
        const clientCpu = process.cpuUsage();
        const run = await runClosedLoop(client, context.workload, {
          concurrency,
          requests: settings.pointRequests(concurrency),
          maxTokens: settings.maxTokens,
        });
        const loop = await server.readLoopDelay();
        const serverUsed = server.cpuMs();
        const clientUsed = process.cpuUsage(clientCpu);
        const perRequest = (ms: number) => round(ms / run.samples.length, 1);
        const tokens = run.samples.reduce((n, s) => n + s.response.usage.completionTokens, 0);
        const point: ThroughputPoint = {
          concurrency,
          requests: run.samples.length,
          errors: run.errors,
          requestsPerSecond: round(run.samples.length / (run.elapsedMs / 1000), 3),
          tokensPerSecond: round(tokens / (run.elapsedMs / 1000), 1),
          latencyMs: summarize(run.samples.map((s) => s.wallMs)),
          completionTokensMean: round(tokens / run.samples.length, 1),
          eventLoopP99Ms: round(loop.p99),
          cpuMsPerRequest: {
            client: perRequest((clientUsed.user + clientUsed.system) / 1000),
            serverMain: perRequest(serverUsed.main - serverCpu.main),
            serverOther: perRequest(serverUsed.other - serverCpu.other),
          },
        };
        points.push(point);
        log(
          `throughput [${mode}] c=${concurrency}: ${point.requestsPerSecond} req/s, p50 ${round(point.latencyMs.p50)} ms, p95 ${round(point.latencyMs.p95)} ms${run.errors ? `, ${run.errors} errors (${run.firstError})` : ''}`,
        );
      }
      return points;
    });
  }
  return { modes, ratios: ratios(modes) };
}

/** Speed-ups measured in this run: each concurrency against 1, and batching on against off. */
function ratios(modes: Record<string, ThroughputPoint[]>) {
  const [off, on] = Object.values(modes) as [ThroughputPoint[], ThroughputPoint[]];
  const rps = (points: ThroughputPoint[], c: number) =>
    points.find((p) => p.concurrency === c)?.requestsPerSecond;
  const out: Record<string, number> = {};
  for (const [name, points] of Object.entries(modes)) {
    const base = rps(points, 1);
    for (const p of points)
      if (base !== undefined && p.concurrency !== 1)
        out[`${name}: c${p.concurrency} / c1`] = round(p.requestsPerSecond / base, 2);
  }
  for (const p of on) {
    const before = rps(off, p.concurrency);
    if (before !== undefined)
      out[`c${p.concurrency}: on / off`] = round(p.requestsPerSecond / before, 2);
  }
  return out;
}
