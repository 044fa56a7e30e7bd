import { describe, expect, it } from 'vitest';
import type { BatchItemResult, BatchResultsPage, BatchStatus } from '../src/contract/types.js';
import { BatchHandle } from '../src/jobs/batch-handle.js';
import type { JobsTransport } from '../src/jobs/batch-handle.js';

// A race the real server produces only now and then on a loaded machine (test/jobs.test.ts
// caught it): a page is read while its item still runs, and the batch finishes before the
// status check that follows. A transport replaying that order makes it happen every time.

const status = (state: BatchStatus['state'], done: number): BatchStatus => ({
  batchId: 'batch_aaaaaaaaaaaaaaaaaaaaaa',
  state,
  total: 1,
  done,
  failed: 0,
  cancelled: 0,
  pending: 1 - done,
  createdAt: new Date(0).toISOString(),
});

const result = {
  index: 0,
  status: 'failed',
  error: { code: 'INTERNAL', message: 'x', httpStatus: 500, retryable: false },
  attempts: 1,
} satisfies BatchItemResult;

describe('BatchHandle.results()', () => {
  it('yields an item that finished between reading its page and checking the batch', async () => {
    const pages: BatchResultsPage[] = [
      { batchId: 'batch_aaaaaaaaaaaaaaaaaaaaaa', items: [], pending: 1 },
      { batchId: 'batch_aaaaaaaaaaaaaaaaaaaaaa', items: [result], pending: 0 },
    ];
    const transport: JobsTransport = {
      results: () => Promise.resolve(pages.shift()!),
      // by the time the handle asks, the batch has completed
      status: () => Promise.resolve(status('completed', 1)),
      cancel: () => Promise.reject(new Error('not called')),
    };
    const handle = new BatchHandle(transport, status('running', 0));
    const yielded: BatchItemResult[] = [];
    for await (const item of handle.results({ pollIntervalMs: 1 })) yielded.push(item);
    expect(yielded).toEqual([result]);
  });
});
