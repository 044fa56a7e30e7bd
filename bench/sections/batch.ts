import type { MagmaClient } from '@magma-som/sdk';
import { startRedis } from '../../packages/server/test/jobs/redis.js';
import type { BenchContext } from '../context.js';
import { benchClient, runClosedLoop } from '../load.js';
import { ServerHandle } from '../server-handle.js';
import { median, round } from '../stats.js';

/** Items of the warm-up asks and batches, per process. */
const WARM_ITEMS = 8;
/** Items (or asks) in flight per process: the server's default MAGMA_MAX_CONCURRENCY. */
const CONCURRENCY = 4;
const POLL_MS = 20;

/**
 * Batch jobs through BullMQ on one redis-server: the same asks as one batch, worked by 1 and by
 * 2 worker processes behind an API process, against the same asks sent directly (`ask`, closed
 * loop) to one server with the same concurrency. Every process runs as users get it (its own
 * engine from its config) with CONCURRENCY items or asks in flight. Each is measured over
 * `batchRounds` rounds; medians are reported.
 * Queue overhead per item = (median batch time with 1 worker - median direct time) / items.
 */
export async function batch(context: BenchContext) {
  const { settings, workload, log } = context;
  const { batchItems: items, batchRounds: rounds } = settings;
  const baseEnv = {
    MAGMA_RATE_LIMIT_MAX: '0',
    MAGMA_LOG_LEVEL: 'warn',
    MAGMA_MAX_CONCURRENCY: String(CONCURRENCY),
  };

  // Direct: one server, no Redis.
  const directSeconds: number[] = [];
  const direct = await ServerHandle.start({ batching: {}, shippedDefaults: true, env: baseEnv });
  const directClient = benchClient(direct.url);
  try {
    const ask = (requests: number) =>
      runClosedLoop(directClient, workload, {
        concurrency: CONCURRENCY,
        requests,
        maxTokens: settings.maxTokens,
      });
    await ask(WARM_ITEMS);
    for (let round = 0; round < rounds; round++) {
      const run = await ask(items);
      if (run.errors > 0) throw new Error(`direct asks failed: ${run.firstError}`);
      directSeconds.push(run.elapsedMs / 1000);
    }
  } finally {
    await directClient.close();
    await direct.stop();
  }
  log(`batch: direct ${items} asks in ${directSeconds.map((s) => round(s, 2)).join(', ')} s`);

  const redis = await startRedis();
  const start = (role: string) =>
    ServerHandle.start({
      batching: {},
      shippedDefaults: true,
      env: { ...baseEnv, MAGMA_ROLE: role, MAGMA_REDIS_URL: redis.url },
    });
  const workers: ServerHandle[] = [];
  let api: ServerHandle | undefined;
  let client: MagmaClient | undefined;
  try {
    api = await start('api');
    client = benchClient(api.url);
    const runs: Record<number, BatchRun[]> = { 1: [], 2: [] };
    for (const count of [1, 2]) {
      while (workers.length < count) workers.push(await start('worker'));
      // Warm every worker's engine and the queue before measuring.
      await runBatch(client, context, WARM_ITEMS * count);
      for (let round = 0; round < rounds; round++) {
        runs[count]!.push(await runBatch(client, context, items));
      }
      log(
        `batch: ${count} worker(s): ${items} items in ${runs[count]!.map((r) => round(r.seconds, 2)).join(', ')} s`,
      );
    }

    const summary = (seconds: number[], creates?: number[]) => {
      const s = median(seconds);
      return {
        seconds: round(s, 2),
        itemsPerSecond: round(items / s, 2),
        msPerItem: round((1000 * s) / items, 1),
        rounds: seconds.map((v) => round(v, 2)),
        ...(creates ? { createSeconds: round(median(creates), 2) } : {}),
      };
    };
    const batchSummary = (count: number) =>
      summary(
        runs[count]!.map((r) => r.seconds),
        runs[count]!.map((r) => r.createSeconds),
      );
    const one = batchSummary(1);
    const two = batchSummary(2);
    const directMedian = median(directSeconds);
    return {
      items,
      rounds,
      concurrencyPerProcess: CONCURRENCY,
      maxTokens: settings.maxTokens,
      image: `${workload.marks.length} marks on a 1024x768 JPEG (${workload.jpeg.length} bytes), inline base64`,
      direct: summary(directSeconds),
      workers1: one,
      workers2: two,
      queueOverheadMsPerItem: round((1000 * (one.seconds - directMedian)) / items, 1),
      ratios: {
        workers2OverWorkers1: round(one.seconds / two.seconds, 2),
        workers1OverDirect: round(directMedian / one.seconds, 2),
      },
    };
  } finally {
    await client?.close();
    await Promise.all(workers.map((worker) => worker.stop()));
    await api?.stop();
    await redis.stop();
  }
}

interface BatchRun {
  /** From the create call to the poll that saw the batch completed. */
  readonly seconds: number;
  /** The create call alone (items sent inline and queued). */
  readonly createSeconds: number;
}

let batchCount = 0;

/** One batch of the workload's asks, created and polled until it completes. */
async function runBatch(
  client: MagmaClient,
  context: BenchContext,
  items: number,
): Promise<BatchRun> {
  const asks = Array.from({ length: items }, (_, i) =>
    context.workload.ask(i, context.settings.maxTokens),
  );
  const started = performance.now();
  // A new key each time: the same asks again must make a new batch, not answer the last one.
  const handle = await client.jobs.create(asks, {
    idempotencyKey: `bench-${process.pid}-${Date.now()}-${++batchCount}`,
  });
  const createSeconds = (performance.now() - started) / 1000;
  const status = await handle.wait({ pollIntervalMs: POLL_MS });
  const seconds = (performance.now() - started) / 1000;
  if (status.failed > 0 || status.done !== items) {
    throw new Error(`batch: ${status.done} done, ${status.failed} failed of ${items}`);
  }
  return { seconds, createSeconds };
}
