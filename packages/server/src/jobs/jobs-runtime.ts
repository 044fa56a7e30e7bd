import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AskResponse } from '@magma-som/schemas';
import type { ServerConfig } from '../config/config.js';
import type { AskCall } from '../trpc/context.js';
import type { Registry } from 'prom-client';
import { BatchService } from './batch-service.js';
import { BatchStore } from './batch-store.js';
import { BatchWorker } from './batch-worker.js';
import { BULL_PREFIX, QUEUE_NAME, connectRedis } from './connection.js';
import type { AskJobData } from './connection.js';
import { JobMetrics } from './job-metrics.js';
import type { JobsApi } from './jobs-api.js';

export interface JobsRuntimeDeps {
  readonly config: ServerConfig;
  readonly registry: Registry;
  readonly ask: (call: AskCall) => Promise<AskResponse>;
  readonly uploadedImage: (imageId: string) => Uint8Array | undefined;
  readonly log: { warn(details: object, message: string): void };
}

/** Batch jobs of one process: the API side (api, all) and the worker (worker, all). */
export interface JobsRuntime {
  readonly api: JobsApi;
  /** Resolves once Redis answers; rejects when it cannot be reached at start-up. */
  readonly connected: Promise<void>;
  /** Starts consuming items (worker and all roles; call once the model is warm). */
  startWorker(): void;
  /** Stops the worker (running items get graceMs), then closes the connections. */
  close(graceMs: number): Promise<void>;
}

/** Connects to MAGMA_REDIS_URL and sets up what the process's role needs. */
export function startJobs(deps: JobsRuntimeDeps): JobsRuntime {
  const { config } = deps;
  const redis = connectRedis(config.redisUrl, 'api');
  const connections: Redis[] = [redis];
  const store = new BatchStore(redis, config.jobResultTtlMs);
  const queue = new Queue<AskJobData>(QUEUE_NAME, {
    connection: redis,
    prefix: BULL_PREFIX,
    defaultJobOptions: {
      attempts: config.jobAttempts,
      backoff: { type: 'exponential', delay: 1_000 },
      // Results live in the batch store; BullMQ's finished jobs would only hold images.
      removeOnComplete: true,
      removeOnFail: true,
    },
  });
  const metrics = new JobMetrics(deps.registry, config.role, () =>
    queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed'),
  );
  const api = new BatchService({
    queue,
    store,
    metrics,
    maxItems: config.jobMaxItems,
    maxQueued: config.jobMaxQueued,
    uploadedImage: deps.uploadedImage,
  });

  let worker: BatchWorker | undefined;
  if (config.role !== 'api') {
    const workerConnection = connectRedis(config.redisUrl, 'worker');
    connections.push(workerConnection);
    worker = new BatchWorker({
      connection: workerConnection,
      store: new BatchStore(workerConnection, config.jobResultTtlMs),
      metrics,
      ask: deps.ask,
      concurrency: config.jobConcurrency > 0 ? config.jobConcurrency : config.maxConcurrency,
      attempts: config.jobAttempts,
      lockMs: config.jobLockMs,
      log: deps.log,
    });
  }

  const connected = redis.ping().then(() => undefined);
  connected.catch(() => {});
  let closing: Promise<void> | undefined;
  return {
    api,
    connected,
    startWorker: () => worker?.start(),
    close(graceMs) {
      closing ??= (async () => {
        await worker?.close(graceMs);
        await queue.close();
        await Promise.all(connections.map((connection) => connection.quit().catch(() => {})));
      })();
      return closing;
    },
  };
}
