import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ReadinessSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { createServer } from '../../src/index.js';
import type { MagmaServer } from '../../src/index.js';
import { copyTinyBundle } from '../engine/helpers/tiny-bundle.js';
import { askBody, expectTrpcError, metric, postTrpc, testConfig, testImage } from './helpers.js';

// /ready after the engine's worker crashes: 200 again once the worker is restarted, 503 for
// good when it cannot be (here: its bundle was damaged after start-up, so the restarted worker
// fails to load it). A load balancer must stop routing to a server that can no longer answer.

let bundleDir: string;
let server: MagmaServer;
let url: string;
let png: Buffer;

beforeAll(async () => {
  bundleDir = copyTinyBundle();
  // The server starts and owns its engine, as in production.
  server = await createServer(
    testConfig({ modelDir: bundleDir, intraOpThreads: 1, interOpThreads: 1 }),
  );
  url = await server.listen();
  await server.whenReady;
  png = await testImage();
});

afterAll(async () => {
  await server?.shutdown();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

async function readiness() {
  const response = await fetch(`${url}/ready`);
  return { status: response.status, body: ReadinessSchema.parse(await response.json()) };
}

describe('readiness after an engine crash', () => {
  it('stays 200 when the worker is restarted, and the server answers again', async () => {
    const engine = server.engine as Engine;
    engine.crashWorkerForTest();
    await vi.waitFor(() => expect(engine.restarts).toBe(1), { timeout: 30_000 });
    // Requests wait for the restarted worker; the answer proves it is serving.
    const response = await postTrpc(url, 'ask', askBody(png));
    expect(response.status).toBe(200);
    expect((await readiness()).status).toBe(200);
    expect(await metric(url, 'magma_ready')).toBe(1);
  });

  it('turns 503 (and asks MODEL_NOT_READY) when the worker cannot be restarted', async () => {
    const engine = server.engine as Engine;
    rmSync(join(bundleDir, 'onnx', 'decoder_model_merged.onnx'));
    engine.crashWorkerForTest();
    await vi.waitFor(() => expect(engine.restarts).toBe(2), { timeout: 30_000 });
    await vi.waitFor(
      async () => {
        const { status, body } = await readiness();
        expect(status).toBe(503);
        expect(body).toMatchObject({ ready: false, modelLoaded: true, shuttingDown: false });
        expect(body.reason).toMatch(/could not be restarted/);
      },
      { timeout: 60_000, interval: 200 },
    );
    await expectTrpcError(await postTrpc(url, 'ask', askBody(png)), 'MODEL_NOT_READY', 503);
    expect(await metric(url, 'magma_ready')).toBe(0);
  }, 90_000);
});
