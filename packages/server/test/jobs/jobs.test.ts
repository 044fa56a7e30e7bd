import type { BatchResultsPage, BatchStatus, ErrorData } from '@magma-som/schemas';
import { BatchResultsPageSchema, BatchStatusSchema, ErrorDataSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import {
  askBody,
  expectTrpcError,
  metric,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { startRedis } from './redis.js';
import type { TestRedis } from './redis.js';

// Batch jobs in one process (MAGMA_ROLE=all) against a real redis-server and the real tiny
// model: create, progress, pages of results, idempotency, limits, poison items, cancel.

let redis: TestRedis;
let engine: Engine;
let running: RunningServer;
let plain: RunningServer;

beforeAll(async () => {
  [redis, engine] = await Promise.all([startRedis(), startTestEngine()]);
  running = await startTestServer(engine, {
    redisUrl: redis.url,
    jobMaxItems: 20,
    jobLockMs: 2_000,
    maxConcurrency: 2,
  });
  plain = await startTestServer(engine);
}, 300_000);

afterAll(async () => {
  await running?.server.shutdown();
  await plain?.server.shutdown();
  await engine?.close();
  await redis?.stop();
});

async function trpcResult<T>(response: Response): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return (JSON.parse(text) as { result: { data: T } }).result.data;
}

function getTrpc(url: string, procedure: string, input: unknown): Promise<Response> {
  return fetch(`${url}/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify(input))}`);
}

async function waitFinished(url: string, batchId: string): Promise<BatchStatus> {
  for (;;) {
    const status = BatchStatusSchema.parse(
      await trpcResult(await getTrpc(url, 'jobs.status', { batchId })),
    );
    if (status.state === 'completed' || status.state === 'cancelled') return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function allResults(url: string, batchId: string): Promise<BatchResultsPage['items']> {
  const items: BatchResultsPage['items'] = [];
  let cursor: number | undefined = 0;
  while (cursor !== undefined) {
    const page: BatchResultsPage = BatchResultsPageSchema.parse(
      await trpcResult(await getTrpc(url, 'jobs.results', { batchId, cursor, limit: 3 })),
    );
    items.push(...page.items);
    cursor = page.nextCursor;
  }
  return items;
}

describe('batch jobs', () => {
  it('answers every item as a direct ask does, with progress and pages of results', async () => {
    const images = await Promise.all([testImage(160, 120), testImage(200, 150)]);
    const prompts = ['What colour is the shape in #1?', 'Is there an object at #1?'];
    const items = [0, 1, 2, 3, 4, 5, 6].map((i) =>
      askBody(images[i % 2]!, { prompt: prompts[Math.floor(i / 2) % 2]! }),
    );
    const created = BatchStatusSchema.parse(
      await trpcResult(await postTrpc(running.url, 'jobs.create', { items })),
    );
    expect(created).toMatchObject({ total: 7, done: 0, failed: 0, pending: 7 });
    expect(['queued', 'running']).toContain(created.state);

    const finished = await waitFinished(running.url, created.batchId);
    expect(finished).toMatchObject({ state: 'completed', total: 7, done: 7, pending: 0 });
    expect(Date.parse(finished.expiresAt!)).toBeGreaterThan(Date.parse(finished.finishedAt!));

    const results = await allResults(running.url, created.batchId);
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const result of results) {
      expect(result.status).toBe('done');
      const direct = await trpcResult<{ answer: string }>(
        await postTrpc(plain.url, 'ask', items[result.index]),
      );
      if (result.status === 'done') expect(result.response.answer).toBe(direct.answer);
    }
    expect(await metric(running.url, 'magma_jobs_items_completed_total')).toBeGreaterThanOrEqual(7);
  }, 120_000);

  it('creates a batch once per idempotency key and refuses the key for other items', async () => {
    const image = await testImage();
    const items = [askBody(image), askBody(image, { prompt: 'Is there an object at #1?' })];
    const idempotencyKey = `test-${Date.now()}`;
    const first = BatchStatusSchema.parse(
      await trpcResult(await postTrpc(running.url, 'jobs.create', { items, idempotencyKey })),
    );
    const again = BatchStatusSchema.parse(
      await trpcResult(await postTrpc(running.url, 'jobs.create', { items, idempotencyKey })),
    );
    expect(again.batchId).toBe(first.batchId);
    expect(again.idempotencyKey).toBe(idempotencyKey);
    const other = await postTrpc(running.url, 'jobs.create', {
      items: [items[0]],
      idempotencyKey,
    });
    await expectTrpcError(other, 'IDEMPOTENCY_KEY_REUSED', 422);
    expect((await waitFinished(running.url, first.batchId)).done).toBe(2);
  }, 60_000);

  it('fails a poison item with its typed error, once, without holding up the others', async () => {
    const image = await testImage();
    const items = [
      askBody(image),
      // A mark outside the 160x120 image: INVALID_MARKS when the worker decodes it.
      askBody(image, { marks: [{ label: 1, x1: 100, y1: 100, x2: 400, y2: 400 }] }),
      askBody(image),
    ];
    const created = BatchStatusSchema.parse(
      await trpcResult(await postTrpc(running.url, 'jobs.create', { items })),
    );
    const finished = await waitFinished(running.url, created.batchId);
    expect(finished).toMatchObject({ state: 'completed', done: 2, failed: 1 });
    const results = await allResults(running.url, created.batchId);
    const poison = results[1]!;
    expect(poison.status).toBe('failed');
    if (poison.status === 'failed') {
      expect(poison.error.code).toBe('INVALID_MARKS');
      // A client error fails at once: it would fail the same way again.
      expect(poison.attempts).toBe(1);
    }
  }, 60_000);

  it('refuses batches over the item limit and unknown batch ids with typed errors', async () => {
    const image = await testImage();
    const items = Array.from({ length: 21 }, () => askBody(image));
    const data = await expectTrpcError(
      await postTrpc(running.url, 'jobs.create', { items }),
      'PAYLOAD_TOO_LARGE',
      413,
    );
    expect(data.message).toMatch(/at most 20 items/);
    await expectTrpcError(
      await getTrpc(running.url, 'jobs.status', { batchId: `batch_${'x'.repeat(22)}` }),
      'NOT_FOUND',
      404,
    );
    await expectTrpcError(
      await getTrpc(running.url, 'jobs.status', { batchId: 'nope' }),
      'INVALID_INPUT',
      400,
    );
  });

  it('cancels: items without a result get CANCELLED and the batch stops', async () => {
    const image = await testImage();
    const items = Array.from({ length: 20 }, (_, i) =>
      askBody(image, { prompt: `What colour is the shape in #1? (${i})` }),
    );
    const created = BatchStatusSchema.parse(
      await trpcResult(await postTrpc(running.url, 'jobs.create', { items })),
    );
    const cancelled = BatchStatusSchema.parse(
      await trpcResult(await postTrpc(running.url, 'jobs.cancel', { batchId: created.batchId })),
    );
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.pending).toBe(0);
    expect(cancelled.done + cancelled.failed + cancelled.cancelled).toBe(20);
    expect(cancelled.cancelled).toBeGreaterThan(0);
    const results = await allResults(running.url, created.batchId);
    expect(results).toHaveLength(20);
    const codes = results.flatMap((r) => (r.status === 'failed' ? [r.error.code] : []));
    expect(codes.filter((c) => c === 'CANCELLED')).toHaveLength(cancelled.cancelled);
  }, 60_000);

  it('serves the same over REST', async () => {
    const image = await testImage();
    const response = await fetch(`${running.url}/v1/som/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: [askBody(image)] }),
    });
    expect(response.status).toBe(202);
    const created = BatchStatusSchema.parse(await response.json());
    await waitFinished(running.url, created.batchId);
    const status = BatchStatusSchema.parse(
      await (await fetch(`${running.url}/v1/som/batches/${created.batchId}`)).json(),
    );
    expect(status).toMatchObject({ state: 'completed', done: 1 });
    const page = BatchResultsPageSchema.parse(
      await (
        await fetch(`${running.url}/v1/som/batches/${created.batchId}/results?cursor=0&limit=10`)
      ).json(),
    );
    expect(page.items).toHaveLength(1);
    expect(page.nextCursor).toBeUndefined();
    const bad = await fetch(`${running.url}/v1/som/batches/${created.batchId}/results?limit=x`);
    expect(bad.status).toBe(400);
    const wrongMethod = await fetch(`${running.url}/v1/som/batches/${created.batchId}/cancel`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  }, 60_000);

  it('answers JOBS_NOT_ENABLED without Redis, on tRPC and REST', async () => {
    const image = await testImage();
    await expectTrpcError(
      await postTrpc(plain.url, 'jobs.create', { items: [askBody(image)] }),
      'JOBS_NOT_ENABLED',
      501,
    );
    const response = await fetch(`${plain.url}/v1/som/batches/batch_${'a'.repeat(22)}`);
    expect(response.status).toBe(501);
    const data: ErrorData = ErrorDataSchema.parse(await response.json());
    expect(data.code).toBe('JOBS_NOT_ENABLED');
    expect(data.message).toMatch(/MAGMA_REDIS_URL/);
  });
});
