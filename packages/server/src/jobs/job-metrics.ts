import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** What the queue-depth gauge reads at scrape time (BullMQ's job counts by state). */
export type QueueCounts = () => Promise<Readonly<Record<string, number>>>;

const ITEM_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * Batch-job metrics on the server's registry. Counters count what this process did (a worker
 * its items, an API process its batches); the queue gauge reads Redis, so every role reports
 * the same shared depth.
 */
export class JobMetrics {
  readonly batchesCreated: Counter;
  readonly itemsQueued: Counter;
  readonly itemsCompleted: Counter;
  readonly itemsFailed: Counter<'code'>;
  readonly itemsRetried: Counter;
  /** From the item's enqueueing to its stored result. */
  readonly itemLatency: Histogram;
  /** Running the item (the ask itself), once picked up. */
  readonly itemRunTime: Histogram;

  constructor(registry: Registry, role: string, counts: QueueCounts | undefined) {
    const registers = [registry];
    this.batchesCreated = new Counter({
      name: 'magma_jobs_batches_created_total',
      help: 'Batches created through this process.',
      registers,
    });
    this.itemsQueued = new Counter({
      name: 'magma_jobs_items_queued_total',
      help: 'Batch items added to the queue by this process.',
      registers,
    });
    this.itemsCompleted = new Counter({
      name: 'magma_jobs_items_completed_total',
      help: 'Batch items this worker answered (stored results only; a duplicate run is not counted).',
      registers,
    });
    this.itemsFailed = new Counter({
      name: 'magma_jobs_items_failed_total',
      help: 'Batch items this worker failed for good, by error code.',
      labelNames: ['code'],
      registers,
    });
    this.itemsRetried = new Counter({
      name: 'magma_jobs_items_retried_total',
      help: 'Batch item runs that failed with a retryable error and were put back on the queue.',
      registers,
    });
    this.itemLatency = new Histogram({
      name: 'magma_jobs_item_latency_seconds',
      help: 'Time from an item being queued to its result being stored.',
      buckets: ITEM_BUCKETS,
      registers,
    });
    this.itemRunTime = new Histogram({
      name: 'magma_jobs_item_run_seconds',
      help: 'Time a worker spent running an item.',
      buckets: ITEM_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'magma_jobs_role',
      help: 'The role of this process (MAGMA_ROLE), as a label; always 1.',
      labelNames: ['role'],
      registers,
    }).set({ role }, 1);
    if (counts !== undefined) {
      new Gauge({
        name: 'magma_jobs_queue_items',
        help: 'Batch items in the shared queue by state (waiting, active, delayed, ...).',
        labelNames: ['state'],
        registers,
        async collect() {
          // Redis away: no sample rather than a failed scrape.
          const byState = await counts().catch(() => undefined);
          if (byState === undefined) return;
          for (const [state, value] of Object.entries(byState)) this.set({ state }, value);
        },
      });
    }
  }
}
