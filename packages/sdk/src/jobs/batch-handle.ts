import type { BatchItemResult, BatchResultsPage, BatchStatus } from '../contract/types.js';
import type { RequestOptions } from '../options.js';

/** The calls a batch handle makes; the client supplies them with its retries and timeouts. */
export interface JobsTransport {
  status(batchId: string, options: RequestOptions): Promise<BatchStatus>;
  results(
    batchId: string,
    cursor: number,
    limit: number,
    options: RequestOptions,
  ): Promise<BatchResultsPage>;
  cancel(batchId: string, options: RequestOptions): Promise<BatchStatus>;
}

export interface WaitOptions {
  /** Called with each new status while waiting (progress: done + failed of total). */
  readonly onProgress?: (status: BatchStatus) => void;
  /** Time between polls; default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Stops waiting (not the batch) with the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface ResultsOptions {
  /** Results per page; default 100. */
  readonly pageSize?: number;
  /** Time between polls for items not finished yet; default 1000 ms. */
  readonly pollIntervalMs?: number;
  readonly signal?: AbortSignal;
}

const DEFAULT_POLL_MS = 1_000;

/**
 * A batch on the server. Its items run on worker processes whether or not this handle is used;
 * the handle polls for progress and reads results. Disposing it (`await using`) cancels the
 * batch if it has not finished: leaving its scope means its answers are no longer wanted.
 */
export class BatchHandle implements AsyncDisposable {
  #last: BatchStatus;

  constructor(
    private readonly transport: JobsTransport,
    created: BatchStatus,
  ) {
    this.#last = created;
  }

  get batchId(): string {
    return this.#last.batchId;
  }

  /** The status seen last (at creation, or by the latest status()/wait() poll). */
  get lastStatus(): BatchStatus {
    return this.#last;
  }

  async status(options: RequestOptions = {}): Promise<BatchStatus> {
    this.#last = await this.transport.status(this.batchId, options);
    return this.#last;
  }

  /** Cancels what has not run yet; those items get a CANCELLED error result. */
  async cancel(options: RequestOptions = {}): Promise<BatchStatus> {
    this.#last = await this.transport.cancel(this.batchId, options);
    return this.#last;
  }

  /** Polls until every item has a result (or the batch was cancelled); answers the last status. */
  async wait(options: WaitOptions = {}): Promise<BatchStatus> {
    const interval = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    let reported = '';
    for (;;) {
      const status = await this.status({ signal: options.signal });
      const progress = `${status.done}/${status.failed}/${status.cancelled}/${status.state}`;
      if (progress !== reported) {
        reported = progress;
        options.onProgress?.(status);
      }
      if (isFinished(status)) return status;
      await sleep(interval, options.signal);
    }
  }

  /**
   * Every item's result in index order, as they become available: each page is read once its
   * items have finished, so the loop can start while the batch is still running.
   */
  async *results(options: ResultsOptions = {}): AsyncGenerator<BatchItemResult, void, undefined> {
    const limit = options.pageSize ?? 100;
    const interval = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    let cursor: number | undefined = 0;
    while (cursor !== undefined) {
      const read = (at: number) =>
        this.transport.results(this.batchId, at, limit, { signal: options.signal });
      let page = await read(cursor);
      if (page.pending > 0) {
        // Not all of this page has finished: wait for it, unless nothing more will come.
        if (!isFinished(await this.status({ signal: options.signal }))) {
          await sleep(interval, options.signal);
          continue;
        }
        // The batch may have finished after the page was read: read it again, now final
        // (what is still pending then was cancelled).
        page = await read(cursor);
      }
      yield* page.items;
      cursor = page.nextCursor;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (isFinished(this.#last)) return;
    const status = await this.status().catch(() => undefined);
    if (status !== undefined && !isFinished(status)) await this.cancel().catch(() => undefined);
  }
}

function isFinished(status: BatchStatus): boolean {
  return status.state === 'completed' || status.state === 'cancelled';
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
