import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchItemResult, BatchStatus } from '@magma-som/schemas';
import { MagmaError } from '../src/index.js';
import type { AskInput, MagmaClient } from '../src/index.js';
import { startRedis } from '../../server/test/jobs/redis.js';
import type { TestRedis } from '../../server/test/jobs/redis.js';
import { createClient } from './support/entry.js';
import { smallPng } from './support/images.js';
import { API_KEY, startRealServer } from './support/real-server.js';
import type { RunningServer } from './support/real-server.js';

// client.jobs against the real server (MAGMA_ROLE=all) on a real redis-server and the tiny model.
let redis: TestRedis;
let running: RunningServer;
let plain: RunningServer;
let client: MagmaClient;
let asks: AskInput[];

beforeAll(async () => {
  redis = await startRedis();
  running = await startRealServer({ MAGMA_REDIS_URL: redis.url, MAGMA_JOB_LOCK_MS: '2000' });
  plain = await startRealServer({}, running.server.engine);
  client = createClient({ baseUrl: running.url, apiKey: API_KEY });
  const image = await smallPng(160, 120);
  asks = ['What colour is #1?', 'What is at #2?', 'Is #1 left of #2?'].map((prompt) => ({
    image,
    marks: [
      [10, 10, 60, 50],
      [80, 40, 150, 110],
    ],
    prompt,
    options: { maxTokens: 4 },
  }));
}, 300_000);

afterAll(async () => {
  await client?.close();
  await plain?.close();
  await running?.close();
  await redis?.stop();
});

describe('client.jobs', () => {
  it('creates a batch, reports progress, and yields every result in order', async () => {
    const handle = await client.jobs.create(asks, { idempotencyKey: 'sdk-jobs-1' });
    expect(handle.batchId).toMatch(/^batch_/);
    const seen: BatchStatus[] = [];
    const final = await handle.wait({ onProgress: (s) => seen.push(s), pollIntervalMs: 100 });
    expect(final).toMatchObject({ state: 'completed', total: 3, done: 3, failed: 0 });
    expect(seen.at(-1)).toEqual(final);
    const finished = seen.map((s) => s.done + s.failed);
    expect(finished).toEqual([...finished].sort((a, b) => a - b));

    const results: BatchItemResult[] = [];
    for await (const result of handle.results({ pageSize: 2 })) results.push(result);
    expect(results.map((r) => r.index)).toEqual([0, 1, 2]);
    for (const [index, result] of results.entries()) {
      expect(result.status).toBe('done');
      const direct = await client.ask(asks[index]!);
      if (result.status === 'done') expect(result.response.answer).toBe(direct.answer);
    }

    // Same key, same asks: the same batch (what a resumed run relies on).
    const again = await client.jobs.create(asks, { idempotencyKey: 'sdk-jobs-1' });
    expect(again.batchId).toBe(handle.batchId);
    expect(again.lastStatus.state).toBe('completed');
    await expect(
      client.jobs.create(asks.slice(0, 1), { idempotencyKey: 'sdk-jobs-1' }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', status: 422 });
  }, 120_000);

  it('results() streams while the batch runs', async () => {
    const handle = await client.jobs.create(asks);
    const indices: number[] = [];
    for await (const result of handle.results({ pageSize: 1, pollIntervalMs: 50 })) {
      indices.push(result.index);
    }
    expect(indices).toEqual([0, 1, 2]);
  }, 120_000);

  it('await using cancels a batch that has not finished', async () => {
    const many = Array.from({ length: 12 }, (_, i) => ({
      ...asks[0]!,
      prompt: `What is #1? ${i}`,
    }));
    let batchId = '';
    {
      await using handle = await client.jobs.create(many);
      batchId = handle.batchId;
    }
    const status = await (await client.jobs.get(batchId)).status();
    expect(['cancelled', 'completed']).toContain(status.state);
    expect(status.pending).toBe(0);
    if (status.state === 'cancelled') expect(status.cancelled).toBeGreaterThan(0);
  }, 120_000);

  it('fails locally on a bad item and with JOBS_NOT_ENABLED on a server without Redis', async () => {
    await expect(
      client.jobs.create([{ ...asks[0]!, marks: [[50, 50, 10, 10]] }]),
    ).rejects.toBeInstanceOf(MagmaError);
    await using other = createClient({ baseUrl: plain.url, apiKey: API_KEY });
    await expect(other.jobs.create(asks)).rejects.toMatchObject({
      code: 'JOBS_NOT_ENABLED',
      status: 501,
      retryable: false,
    });
  });
});
