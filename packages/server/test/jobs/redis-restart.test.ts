import { Redis } from 'ioredis';
import type { AskRequestInput, BatchStatus } from '@magma-som/schemas';
import { BatchStatusSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { askBody, startTestEngine, startTestServer, testImage } from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { startRedis } from './redis.js';
import type { TestRedis } from './redis.js';
import { expectAnswersOfDirectAsks, readAllResults } from './batch-results.js';

// Redis with persistence on (append-only file, fsync per write) is killed with SIGKILL in the
// middle of a batch and started again on the same port and folder. The server (role all: API
// and worker) reconnects by itself; the batch resumes and every item ends with exactly one
// result, each answer the same as a direct ask.

const ITEMS = 60;

let redis: TestRedis;
let engine: Engine;
let running: RunningServer;
let db: Redis;

beforeAll(async () => {
  [redis, engine] = await Promise.all([startRedis({ persistent: true }), startTestEngine()]);
  running = await startTestServer(engine, {
    redisUrl: redis.url,
    jobLockMs: 2_000,
    maxConcurrency: 2,
    maxTokens: 16,
  });
  db = new Redis(redis.url, { maxRetriesPerRequest: null });
  db.on('error', () => {}); // refused while Redis restarts; it reconnects by itself
}, 300_000);

afterAll(async () => {
  await running?.server.shutdown();
  db?.disconnect();
  await engine?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The batch's status; undefined while the server cannot reach Redis (it answers an error). */
async function statusOf(batchId: string): Promise<BatchStatus | undefined> {
  const response = await fetch(`${running.url}/v1/som/batches/${batchId}`);
  // 5xx while Redis is away; a 404 would mean the batch was lost with it.
  expect(response.status).not.toBe(404);
  if (response.status !== 200) return undefined;
  return BatchStatusSchema.parse(await response.json());
}

describe('batch jobs across a Redis restart', () => {
  it('resume after redis-server is killed and restarted mid-batch, each item once', async () => {
    const images = await Promise.all([testImage(160, 120), testImage(224, 168)]);
    const prompts = [
      'What colour is the shape in #1?',
      'Is there an object at #1?',
      'Describe #1.',
    ];
    const distinct: AskRequestInput[] = images.flatMap((image) =>
      prompts.map((prompt) => askBody(image, { prompt })),
    );
    const items = Array.from({ length: ITEMS }, (_, i) => distinct[i % distinct.length]!);

    const created = await fetch(`${running.url}/v1/som/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items, idempotencyKey: 'redis-restart' }),
    });
    expect(created.status).toBe(202);
    const { batchId } = BatchStatusSchema.parse(await created.json());

    let before: BatchStatus | undefined;
    for (;;) {
      before = await statusOf(batchId);
      expect(before?.state).not.toBe('completed');
      if (before !== undefined && before.done >= 5) break;
      await sleep(20);
    }
    await redis.restart();

    // What was acknowledged before the kill is still there (the append-only file).
    let after: BatchStatus | undefined;
    while ((after = await statusOf(batchId)) === undefined) await sleep(100);
    expect(after.done).toBeGreaterThanOrEqual(before.done);
    expect(after.total).toBe(ITEMS);

    let status = after;
    while (status.state !== 'completed') {
      await sleep(250);
      status = (await statusOf(batchId)) ?? status;
    }
    expect(status).toMatchObject({ total: ITEMS, done: ITEMS, failed: 0, cancelled: 0 });
    expect(await db.hlen(`magma:batch:${batchId}:results`)).toBe(ITEMS);

    const results = await readAllResults(running.url, batchId, 25);
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: ITEMS }, (_, i) => i));
    await expectAnswersOfDirectAsks(running.url, distinct, results);

    // The same key after the restart answers the same batch: the key survived too.
    const again = await fetch(`${running.url}/v1/som/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items, idempotencyKey: 'redis-restart' }),
    });
    expect(again.status).toBe(202);
    expect(BatchStatusSchema.parse(await again.json()).batchId).toBe(batchId);
  }, 600_000);
});
