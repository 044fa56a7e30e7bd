import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ERROR_CATALOG } from '@magma-som/schemas';
import type { AskResponse, BatchItemResult } from '@magma-som/schemas';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/to-api-error.js';
import type { AskCall } from '../trpc/context.js';
import type { BatchStore } from './batch-store.js';
import { BULL_PREFIX, QUEUE_NAME } from './connection.js';
import type { AskJobData } from './connection.js';
import type { JobMetrics } from './job-metrics.js';

export interface BatchWorkerOptions {
  readonly connection: Redis;
  readonly store: BatchStore;
  readonly metrics: JobMetrics;
  /** The shared ask pipeline (limits, decode, marks, engine): the same as an HTTP ask. */
  readonly ask: (call: AskCall) => Promise<AskResponse>;
  readonly concurrency: number;
  /** Runs of one item before it fails for good. */
  readonly attempts: number;
  readonly lockMs: number;
  readonly log: { warn(details: object, message: string): void };
}

/**
 * Consumes batch items from BullMQ and runs each through the ask pipeline. BullMQ gives
 * at-least-once execution (a dead worker's lock expires and another worker takes its items);
 * the store keeps exactly one result per item whatever runs twice.
 */
export class BatchWorker {
  private readonly worker: Worker<AskJobData>;
  private readonly stopping = new AbortController();

  constructor(private readonly options: BatchWorkerOptions) {
    this.worker = new Worker<AskJobData>(QUEUE_NAME, (job) => this.run(job), {
      connection: options.connection,
      prefix: BULL_PREFIX,
      // Stored on each job it takes (BullMQ's processedBy): which process holds an item.
      name: workerName(),
      concurrency: options.concurrency,
      autorun: false,
      lockDuration: options.lockMs,
      // Check for other workers' expired locks as often as a lock lasts.
      stalledInterval: options.lockMs,
      // Worker deaths are counted against `attempts` in run(); BullMQ must not fail the item
      // first (it would do so without a result being stored).
      maxStalledCount: options.attempts + 1,
    });
    this.worker.on('error', (error) => options.log.warn({ err: error }, 'job worker error'));
  }

  /** Starts taking items (once the model is warm). */
  start(): void {
    void this.worker.run().catch((error: unknown) => {
      this.options.log.warn({ err: error }, 'job worker stopped');
    });
  }

  /** Stops taking items; waits up to graceMs for running ones, then leaves them to other workers. */
  async close(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const graceful = this.worker.close();
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const outcome = await Promise.race([graceful, late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      // Their locks expire and other workers run them again; their results are stored once.
      this.stopping.abort();
      await this.worker.close(true);
    }
  }

  private async run(job: Job<AskJobData>): Promise<void> {
    const { batchId, index, request } = job.data;
    const { store, metrics, attempts } = this.options;
    // Cancelled or expired: dropped without running.
    if (!(await store.isOpen(batchId))) return;
    const requestId = job.id ?? `${batchId}.${index}`;

    // Started more often than allowed: earlier runs died with their worker (a poison item that
    // crashes the process, or a lock lost to a stall). It fails instead of killing more workers.
    if (job.attemptsStarted > attempts) {
      const error = new ApiError(
        'INFERENCE_FAILED',
        `the item was started ${job.attemptsStarted - 1} times and its worker never finished it`,
      );
      await this.store(job, { index, status: 'failed', error: error.toData(requestId), attempts });
      return;
    }

    const started = performance.now();
    const { image, ...fields } = request;
    try {
      const response = await this.options.ask({
        fields,
        image: { kind: 'base64', value: image },
        requestId,
        signal: this.stopping.signal,
      });
      metrics.itemRunTime.observe((performance.now() - started) / 1000);
      await this.store(job, {
        index,
        status: 'done',
        response,
        attempts: Math.max(1, job.attemptsStarted),
      });
    } catch (thrown) {
      const error = toApiError(thrown);
      // BullMQ retries with backoff while attempts remain; client errors would fail again.
      if (ERROR_CATALOG[error.code].retryable && job.attemptsMade + 1 < attempts) {
        metrics.itemsRetried.inc();
        throw error;
      }
      await this.store(job, {
        index,
        status: 'failed',
        error: error.toData(requestId),
        attempts: job.attemptsMade + 1,
      });
    }
  }

  private async store(job: Job<AskJobData>, result: BatchItemResult): Promise<void> {
    const stored = await this.options.store.record(job.data.batchId, result);
    if (!stored) return;
    const { metrics } = this.options;
    if (result.status === 'done') metrics.itemsCompleted.inc();
    else metrics.itemsFailed.inc({ code: result.error.code });
    metrics.itemLatency.observe((Date.now() - job.timestamp) / 1000);
  }
}

/** host:pid, the name this process's worker leaves on the items it takes. */
export function workerName(): string {
  return `${hostname()}:${process.pid}`;
}
