import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { AskRequestInput, BatchStatus } from '@magma-som/schemas';
import { BatchStatusSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import {
  MODEL_DIR,
  askBody,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { startRedis } from './redis.js';
import type { TestRedis } from './redis.js';
import { expectAnswersOfDirectAsks, readAllResults } from './batch-results.js';

// The fault test of issue 21: one API process and two worker processes (the real server
// command with MAGMA_ROLE) on one redis-server; one worker is killed with SIGKILL while it holds
// an item. Every item must end with exactly one result, each answer the same as a direct ask.
// 500 items, the figure (MAGMA_FAULT_TEST_ITEMS sets another): 12 distinct asks
// (3 images x 4 questions) repeated. On 2 cores at load average 18 it took 99 s: 40 s for the
// three processes to start under tsx and warm up, 4 s to create the batch, 30 s for the 500
// items (about 60 ms each), 18 s for the in-process engine of the direct asks. The long
// timeouts are for machines busier still.

const ITEMS = Number(process.env.MAGMA_FAULT_TEST_ITEMS ?? 500);
const LOCK_MS = 2_000;
const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(packageDir, 'src', 'cli.ts');

interface Proc {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exit: Promise<number | null>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

function startServerProcess(env: Record<string, string>): Proc {
  const child = spawn(
    process.execPath,
    ['--conditions=@magma-som/source', '--import', 'tsx', CLI],
    {
      cwd: packageDir,
      env: {
        ...process.env,
        MAGMA_PORT: '0',
        MAGMA_LOG_LEVEL: 'info',
        MAGMA_MODEL_DIR: MODEL_DIR,
        MAGMA_INTRA_OP_THREADS: '1',
        MAGMA_INTER_OP_THREADS: '1',
        MAGMA_GPU_METRICS_INTERVAL_MS: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  let buffered = '';
  const onData = (chunk: Buffer): void => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts.filter(Boolean));
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exit,
    async waitFor(pattern, timeoutMs = 400_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`no line matching ${pattern}:\n${lines.slice(-40).join('\n')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: TestRedis;
let db: Redis;
const procs: Proc[] = [];

beforeAll(async () => {
  redis = await startRedis();
  db = new Redis(redis.url);
});

afterAll(async () => {
  for (const proc of procs) if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  await Promise.all(procs.map((proc) => proc.exit));
  db?.disconnect();
  await redis?.stop();
});

async function statusOf(apiUrl: string, batchId: string): Promise<BatchStatus> {
  const response = await fetch(`${apiUrl}/v1/som/batches/${batchId}`);
  expect(response.status).toBe(200);
  return BatchStatusSchema.parse(await response.json());
}

/** Worker names (host:pid) that hold an item right now, from BullMQ's active list. */
async function holders(): Promise<string[]> {
  const active = await db.lrange('magma:bull:asks:active', 0, -1);
  const names = await Promise.all(active.map((id) => db.hget(`magma:bull:asks:${id}`, 'pb')));
  return names.filter((name): name is string => name !== null);
}

describe('batch jobs across processes', () => {
  it(`completes ${ITEMS} items exactly once with a worker killed mid-batch`, async () => {
    const workerEnv = {
      MAGMA_ROLE: 'worker',
      MAGMA_REDIS_URL: redis.url,
      MAGMA_JOB_LOCK_MS: String(LOCK_MS),
      MAGMA_MAX_CONCURRENCY: '2',
      MAGMA_MAX_TOKENS: '16',
    };
    const api = startServerProcess({ MAGMA_ROLE: 'api', MAGMA_REDIS_URL: redis.url });
    const doomed = startServerProcess(workerEnv);
    const survivor = startServerProcess(workerEnv);
    procs.push(api, doomed, survivor);
    const apiUrl = (JSON.parse(await api.waitFor(/listening on/)) as { url: string }).url;
    const survivorUrl = (JSON.parse(await survivor.waitFor(/listening on/)) as { url: string }).url;
    await Promise.all([api, doomed, survivor].map((proc) => proc.waitFor(/"msg":"ready"/)));

    // An api process is ready without a model; a worker serves no ask routes.
    expect((await fetch(`${apiUrl}/ready`)).status).toBe(200);
    const noAsks = await postTrpc(survivorUrl, 'ask', {});
    expect([404, 405]).toContain(noAsks.status);

    const images = await Promise.all([
      testImage(160, 120),
      testImage(200, 150),
      testImage(224, 168),
    ]);
    const prompts = [
      'What colour is the shape in #1?',
      'Is there an object at #1?',
      'What is at #1?',
      'Describe #1.',
    ];
    const distinct: AskRequestInput[] = images.flatMap((image) =>
      prompts.map((prompt) => askBody(image, { prompt })),
    );
    const items = Array.from({ length: ITEMS }, (_, i) => distinct[i % distinct.length]!);

    const created = await fetch(`${apiUrl}/v1/som/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items, idempotencyKey: 'fault-test' }),
    });
    expect(created.status).toBe(202);
    const { batchId } = BatchStatusSchema.parse(await created.json());

    // Kill the doomed worker while it holds an item, once the batch is under way.
    const doomedName = `${(await import('node:os')).hostname()}:${doomed.child.pid}`;
    for (;;) {
      const status = await statusOf(apiUrl, batchId);
      expect(status.state).not.toBe('completed');
      if (status.done >= 5 && (await holders()).includes(doomedName)) break;
      await sleep(20);
    }
    doomed.child.kill('SIGKILL');
    expect(await doomed.exit).toBeNull();
    const atKill = await statusOf(apiUrl, batchId);
    expect(atKill.pending).toBeGreaterThan(0);

    let status = atKill;
    while (status.state !== 'completed') {
      await sleep(250);
      status = await statusOf(apiUrl, batchId);
    }
    expect(status).toMatchObject({ total: ITEMS, done: ITEMS, failed: 0, cancelled: 0 });

    // One stored result per item: the results hash, and the pages a client reads.
    expect(await db.hlen(`magma:batch:${batchId}:results`)).toBe(ITEMS);
    const results = await readAllResults(apiUrl, batchId, 50);
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: ITEMS }, (_, i) => i));
    // The items the killed worker held were run again by the survivor.
    expect(results.some((r) => r.attempts > 1)).toBe(true);

    // Graceful exits for the rest.
    survivor.child.kill('SIGTERM');
    api.child.kill('SIGTERM');
    expect(await survivor.exit).toBe(0);
    expect(await api.exit).toBe(0);

    // Every answer equals a direct ask of the same item, on a fresh in-process server.
    let engine: Engine | undefined;
    let direct: RunningServer | undefined;
    try {
      engine = await startTestEngine();
      direct = await startTestServer(engine, { maxTokens: 16 });
      await expectAnswersOfDirectAsks(direct.url, distinct, results);
    } finally {
      await direct?.server.shutdown();
      await engine?.close();
    }
  }, 1_500_000);
});
