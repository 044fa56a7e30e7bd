import { ReadinessSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { createServer } from '../../src/index.js';
import type { ServingEngine } from '../../src/index.js';
import {
  GatedEngine,
  askBody,
  expectTrpcError,
  metric,
  postTrpc,
  startTestEngine,
  startTestServer,
  testConfig,
  testImage,
} from './helpers.js';

// Start-up (/ready after load and warm-up) and graceful shutdown, with the real tiny model.

let engine: Engine;
let png: Buffer;

beforeAll(async () => {
  engine = await startTestEngine();
  png = await testImage();
}, 120_000);

afterAll(async () => {
  await engine?.close();
});

async function readiness(url: string) {
  const response = await fetch(`${url}/ready`);
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: ReadinessSchema.parse(await response.json()),
  };
}

describe('start-up', () => {
  it('/ready is 503 while the model loads and warms up, 200 after the warm-up inference', async () => {
    let provide!: (engine: ServingEngine) => void;
    const loading = new Promise<ServingEngine>((resolve) => (provide = resolve));
    let warm!: () => void;
    const warmGate = new Promise<void>((resolve) => (warm = resolve));
    let warmups = 0;
    const slowWarmup: ServingEngine = {
      info: engine.info,
      generate: (request) => engine.generate(request),
      close: async () => {},
      warmup: async () => {
        await warmGate;
        warmups++;
        await engine.warmup();
      },
    };

    const server = await createServer(testConfig(), { engine: loading });
    const url = await server.listen();
    try {
      const loadingState = await readiness(url);
      expect(loadingState.status).toBe(503);
      expect(Number(loadingState.retryAfter)).toBeGreaterThan(0);
      expect(loadingState.body).toMatchObject({ ready: false, modelLoaded: false, warm: false });
      expect(loadingState.body.reason).toContain('loading');
      expect((await fetch(`${url}/health`)).status).toBe(200);
      await expectTrpcError(await postTrpc(url, 'ask', askBody(png)), 'MODEL_NOT_READY', 503);
      await expectTrpcError(await fetch(`${url}/trpc/info`), 'MODEL_NOT_READY', 503);

      provide(slowWarmup);
      // Loaded, and held in the warm-up by the gate: wait for the first, not for a fixed time.
      await vi.waitFor(async () => expect((await readiness(url)).body.modelLoaded).toBe(true), {
        timeout: 30_000,
      });
      const warming = await readiness(url);
      expect(warming.status).toBe(503);
      expect(warming.body).toMatchObject({ ready: false, modelLoaded: true, warm: false });
      expect(warming.body.reason).toContain('warming');

      warm();
      await server.whenReady;
      expect(warmups).toBe(1);
      const ready = await readiness(url);
      expect(ready.status).toBe(200);
      expect(ready.body.ready).toBe(true);
      expect((await postTrpc(url, 'ask', askBody(png))).status).toBe(200);
    } finally {
      await server.shutdown();
    }
  }, 60_000);

  it('stays unready, with a reason and no internals, when the model fails to load', async () => {
    const server = await createServer(testConfig({ modelDir: '/nonexistent/model' }));
    const url = await server.listen();
    try {
      await expect(server.whenReady).rejects.toThrow();
      const state = await readiness(url);
      expect(state.status).toBe(503);
      expect(state.body.reason).toBe('the model failed to load; see the server log');
    } finally {
      await server.shutdown();
    }
  }, 60_000);
});

describe('engine restarts', () => {
  it('counts a worker crash in /metrics and keeps answering', async () => {
    const server = await createServer(testConfig({ intraOpThreads: 1, interOpThreads: 1 }));
    const url = await server.listen();
    try {
      await server.whenReady;
      expect(await metric(url, 'magma_engine_restarts_total')).toBe(0);
      (server.engine as Engine).crashWorkerForTest();
      await vi.waitFor(
        async () => expect(await metric(url, 'magma_engine_restarts_total')).toBe(1),
        { timeout: 30_000 },
      );
      expect((await postTrpc(url, 'ask', askBody(png))).status).toBe(200);
    } finally {
      await server.shutdown();
    }
  }, 60_000);
});

describe('graceful shutdown', () => {
  it('finishes running and queued requests, refuses new ones, then closes', async () => {
    const gated = new GatedEngine(engine);
    const { server, url } = await startTestServer(gated, { maxConcurrency: 1, queueSize: 4 });
    gated.hold();
    const inFlight = [1, 2, 3].map(() => postTrpc(url, 'ask', askBody(png)));
    await gated.arrived(1);
    await vi.waitFor(async () => expect(await metric(url, 'magma_queue_depth')).toBe(2), {
      timeout: 30_000, // vi.waitFor's default is 1 s: too short on a loaded machine
    });

    const shutdown = server.shutdown();
    const state = await readiness(url);
    expect(state.status).toBe(503);
    expect(state.body).toMatchObject({ ready: false, shuttingDown: true });
    const refused = await postTrpc(url, 'ask', askBody(png));
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const data = await expectTrpcError(refused, 'MODEL_NOT_READY', 503);
    expect(data.message).toContain('shutting down');

    gated.open();
    for (const response of await Promise.all(inFlight)) expect(response.status).toBe(200);
    await shutdown;
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  }, 60_000);

  it('fails what cannot finish within the grace period with a typed error', async () => {
    const gated = new GatedEngine(engine);
    const { server, url } = await startTestServer(gated, {
      maxConcurrency: 1,
      queueSize: 4,
      shutdownGraceMs: 200,
    });
    gated.hold();
    const running = postTrpc(url, 'ask', askBody(png));
    await gated.arrived(1);
    const queued = postTrpc(url, 'ask', askBody(png));
    await vi.waitFor(async () => expect(await metric(url, 'magma_queue_depth')).toBe(1), {
      timeout: 30_000, // vi.waitFor's default is 1 s: too short on a loaded machine
    });

    const shutdown = server.shutdown();
    for (const response of await Promise.all([running, queued])) {
      const error = await expectTrpcError(response, 'MODEL_NOT_READY', 503);
      expect(error.message).toContain('shut down');
    }
    gated.open();
    await shutdown;
    expect(gated.calls).toHaveLength(1);
  }, 60_000);
});
