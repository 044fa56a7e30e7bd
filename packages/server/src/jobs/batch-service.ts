import { createHash, randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import { isImageId } from '@magma-som/schemas';
import type {
  AskRequest,
  BatchCreateRequest,
  BatchResultsPage,
  BatchStatus,
} from '@magma-som/schemas';
import { ApiError } from '../errors/api-error.js';
import type { BatchMeta, BatchStore } from './batch-store.js';
import { statusOf } from './batch-store.js';
import { jobIdOf } from './connection.js';
import type { AskJobData } from './connection.js';
import type { JobMetrics } from './job-metrics.js';
import type { JobsApi } from './jobs-api.js';

export interface BatchServiceOptions {
  readonly queue: Queue<AskJobData>;
  readonly store: BatchStore;
  readonly metrics: JobMetrics;
  readonly maxItems: number;
  readonly maxQueued: number;
  /** The bytes of an upload (images.upload) this process holds, to inline them in the items. */
  readonly uploadedImage: (imageId: string) => Uint8Array | undefined;
}

/** Items added to BullMQ per round trip. */
const ADD_CHUNK = 500;
/** How long a client is told to wait when the queue is full. */
const QUEUE_FULL_RETRY_MS = 10_000;

/** The API side of batch jobs: creates batches on the queue and reads their progress and results. */
export class BatchService implements JobsApi {
  constructor(private readonly options: BatchServiceOptions) {}

  async create(request: BatchCreateRequest): Promise<BatchStatus> {
    const { store, maxItems } = this.options;
    if (request.items.length > maxItems) {
      throw new ApiError(
        'PAYLOAD_TOO_LARGE',
        `a batch holds at most ${maxItems} items on this server; this one has ${request.items.length}`,
        { issues: [{ path: ['items'], message: `at most ${maxItems} items` }] },
      );
    }
    const items = request.items.map((item, index) => this.inlineImage(item, index));
    const fingerprint = createHash('sha256').update(JSON.stringify(items)).digest('base64url');
    const key = request.idempotencyKey;

    const batchId = `batch_${randomBytes(16).toString('base64url')}`;
    // A replay of a known key adds nothing to the queue, so it is let through when it is full.
    if (key === undefined || !(await store.holdsKey(key))) await this.checkRoom(items.length);
    const created = await store.create(batchId, items.length, fingerprint, key);
    if (!created.created) return this.replay(created.batchId, fingerprint, items);

    await this.enqueue(batchId, items, new Set());
    await store.markEnqueued(batchId);
    this.options.metrics.batchesCreated.inc();
    this.options.metrics.itemsQueued.inc(items.length);
    return this.status(batchId);
  }

  async status(batchId: string): Promise<BatchStatus> {
    return statusOf(batchId, await this.metaOf(batchId));
  }

  async results(batchId: string, cursor: number, limit: number): Promise<BatchResultsPage> {
    const meta = await this.metaOf(batchId);
    const count = Math.max(0, Math.min(limit, meta.total - cursor));
    const { items, pending } = await this.options.store.results(batchId, cursor, count);
    const next = cursor + limit;
    return { batchId, items, pending, ...(next < meta.total ? { nextCursor: next } : {}) };
  }

  async cancel(batchId: string): Promise<BatchStatus> {
    const cancelled = await this.options.store.cancel(batchId);
    if (cancelled === undefined) throw batchNotFound(batchId);
    // Items still queued are not removed one by one: workers see the batch is cancelled and
    // drop each without running it.
    return this.status(batchId);
  }

  private async metaOf(batchId: string): Promise<BatchMeta> {
    const meta = await this.options.store.meta(batchId);
    if (meta === undefined) throw batchNotFound(batchId);
    return meta;
  }

  /** Same key, same items: the first batch (and enqueue what a crash may have left out). */
  private async replay(
    batchId: string,
    fingerprint: string,
    items: readonly AskRequest[],
  ): Promise<BatchStatus> {
    const meta = await this.metaOf(batchId);
    if (meta.fingerprint !== fingerprint) {
      throw new ApiError(
        'IDEMPOTENCY_KEY_REUSED',
        'this idempotencyKey was already used for a batch with other items; a new batch needs a new key',
        { issues: [{ path: ['idempotencyKey'], message: 'already used for other items' }] },
      );
    }
    if (!meta.enqueued && meta.finishedAt === undefined) {
      await this.enqueue(batchId, items, await this.options.store.finishedIndices(batchId));
      await this.options.store.markEnqueued(batchId);
    }
    return statusOf(batchId, meta);
  }

  private async enqueue(
    batchId: string,
    items: readonly AskRequest[],
    skip: ReadonlySet<number>,
  ): Promise<void> {
    const jobs = items
      .map((request, index) => ({ request, index }))
      .filter(({ index }) => !skip.has(index))
      .map(({ request, index }) => ({
        name: 'ask',
        data: { batchId, index, request },
        opts: { jobId: jobIdOf(batchId, index) },
      }));
    for (let start = 0; start < jobs.length; start += ADD_CHUNK) {
      await this.options.queue.addBulk(jobs.slice(start, start + ADD_CHUNK));
    }
  }

  /** Backpressure: items waiting or running across all batches stay under maxQueued. */
  private async checkRoom(adding: number): Promise<void> {
    const counts = await this.options.queue.getJobCounts(
      'waiting',
      'active',
      'delayed',
      'prioritized',
    );
    const queued = Object.values(counts).reduce((sum, n) => sum + n, 0);
    if (queued + adding > this.options.maxQueued) {
      throw new ApiError(
        'OVERLOADED',
        `the job queue holds ${queued} items and takes at most ${this.options.maxQueued}; try again later`,
        { retryAfterMs: QUEUE_FULL_RETRY_MS },
      );
    }
  }

  /**
   * Workers run elsewhere and cannot see this process's uploads: an item naming an upload gets
   * its bytes inline.
   */
  private inlineImage(item: AskRequest, index: number): AskRequest {
    if (!isImageId(item.image)) return item;
    const bytes = this.options.uploadedImage(item.image);
    if (bytes === undefined) {
      throw new ApiError(
        'IMAGE_NOT_FOUND',
        `items[${index}].image names an upload this server does not hold (unknown or expired)`,
        { issues: [{ path: ['items', index, 'image'], message: 'unknown or expired image id' }] },
      );
    }
    return { ...item, image: Buffer.from(bytes).toString('base64') };
  }
}

function batchNotFound(batchId: string): ApiError {
  return new ApiError('NOT_FOUND', `no batch ${batchId}: the id is unknown or its results expired`);
}
