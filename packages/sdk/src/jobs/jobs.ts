import type { BatchCreateRequestInput, BatchStatus } from '../contract/types.js';
import { InvalidInputError } from '../errors.js';
import type { RequestOptions } from '../options.js';
import { prepareAsk } from '../prepare-ask.js';
import type { AskInput } from '../prepare-ask.js';
import type { ReadImageFile } from '../image-source.js';
import { BatchHandle } from './batch-handle.js';
import type { JobsTransport } from './batch-handle.js';

export interface JobsClientTransport extends JobsTransport {
  create(request: BatchCreateRequestInput, options: RequestOptions): Promise<BatchStatus>;
  /** Reads items' images given as file paths (Node entry only). */
  readonly readFile: ReadImageFile;
}

export interface CreateBatchOptions extends RequestOptions {
  /**
   * Makes creating the batch safe to repeat: the same key with the same items answers the batch
   * made the first time (resume after an interruption); with other items it is refused
   * (IDEMPOTENCY_KEY_REUSED). Without one, a retried create may make a second batch only if the
   * first answer was lost (the client's per-call key covers its own retries).
   */
  readonly idempotencyKey?: string;
}

/** Batch jobs: many asks answered by the server's worker processes (needs Redis on the server). */
export class Jobs {
  constructor(private readonly transport: JobsClientTransport) {}

  /**
   * Submits the asks as one batch and answers a handle to it. Each item is checked here as ask()
   * checks it (bad marks or prompts fail before anything is sent); images go inline as base64.
   */
  async create(items: readonly AskInput[], options: CreateBatchOptions = {}): Promise<BatchHandle> {
    if (!Array.isArray(items) || items.length === 0) {
      throw new InvalidInputError('jobs.create() needs a non-empty array of asks');
    }
    const requests = await Promise.all(
      items.map(async (item) => {
        const prepared = await prepareAsk(item, {
          uploadThresholdBytes: Number.POSITIVE_INFINITY,
          allowUpload: false,
          readFile: this.transport.readFile,
        });
        if (prepared.route !== 'json') throw new InvalidInputError('batch items go as JSON');
        return prepared.request;
      }),
    );
    const { idempotencyKey } = options;
    const created = await this.transport.create(
      { items: requests, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}) },
      options,
    );
    return new BatchHandle(this.transport, created);
  }

  /** A handle to a batch created earlier (by id). */
  async get(batchId: string, options: RequestOptions = {}): Promise<BatchHandle> {
    return new BatchHandle(this.transport, await this.transport.status(batchId, options));
  }
}
