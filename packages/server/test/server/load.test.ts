import { AskResponseSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import {
  GatedEngine,
  askBody,
  expectTrpcError,
  metric,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from './helpers.js';
import type { RunningServer } from './helpers.js';

// The queue, the deadline and client disconnects. The real engine sits behind a gate so the
// test decides how long requests stay "in the engine" instead of racing the clock.

let engine: Engine;
let gated: GatedEngine;
let server: RunningServer;
let png: Buffer;

beforeAll(async () => {
  engine = await startTestEngine();
  gated = new GatedEngine(engine);
  server = await startTestServer(gated, {
    maxConcurrency: 1,
    queueSize: 2,
    requestTimeoutMs: 60_000,
  });
  png = await testImage();
}, 120_000);

afterAll(async () => {
  gated?.open();
  await server?.server.shutdown();
  await engine?.close();
});

/** Fires a request and records when its response has arrived. */
function tracked(promise: Promise<Response>) {
  const entry = { response: undefined as Response | undefined, promise };
  void promise.then(
    (response) => (entry.response = response),
    () => {},
  );
  return entry;
}

describe('bounded queue', () => {
  it('refuses requests beyond queue + concurrency with 503 + Retry-After; the rest succeed', async () => {
    gated.hold();
    const before = gated.calls.length;
    const requests = Array.from({ length: 7 }, () =>
      tracked(postTrpc(server.url, 'ask', askBody(png))),
    );

    // 1 running + 2 queued are admitted; the other 4 are refused at once.
    await vi.waitFor(() => expect(requests.filter((r) => r.response).length).toBe(4), {
      timeout: 20_000,
    });
    await gated.arrived(before + 1);
    expect(await metric(server.url, 'magma_in_flight')).toBe(1);
    expect(await metric(server.url, 'magma_queue_depth')).toBe(2);

    for (const { response } of requests.filter((r) => r.response)) {
      const retryAfter = Number(response!.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      const data = await expectTrpcError(response!, 'OVERLOADED', 503);
      expect(data.retryable).toBe(true);
      expect(data.retryAfterMs).toBeGreaterThanOrEqual(1000);
    }

    gated.open();
    const admitted = requests.filter((r) => !r.response);
    expect(admitted).toHaveLength(3);
    for (const { promise } of admitted) {
      const response = await promise;
      expect(response.status).toBe(200);
      AskResponseSchema.parse(
        ((await response.json()) as { result: { data: unknown } }).result.data,
      );
    }
    expect(gated.calls.length - before).toBe(3);
    expect(await metric(server.url, 'magma_in_flight')).toBe(0);
    expect(await metric(server.url, 'magma_queue_depth')).toBe(0);
    expect(
      await metric(server.url, 'magma_procedure_calls_total{procedure="ask",status="OVERLOADED"}'),
    ).toBe(4);
  }, 60_000);
});

describe('client disconnect', () => {
  it('aborts a request in the engine through its signal and frees the slot', async () => {
    gated.hold();
    const before = gated.calls.length;
    const client = new AbortController();
    const request = postTrpc(server.url, 'ask', askBody(png), { signal: client.signal });
    await gated.arrived(before + 1);
    const call = gated.calls[before]!;
    expect(call.signal!.aborted).toBe(false);

    client.abort();
    await expect(request).rejects.toThrow();
    await vi.waitFor(() => expect(call.signal!.aborted).toBe(true), { timeout: 10_000 });
    expect(call.signal!.reason).toMatchObject({ code: 'CANCELLED' });

    // The real engine now runs an aborted request: it stops and lets go of the slot.
    gated.open();
    await vi.waitFor(async () => expect(await metric(server.url, 'magma_in_flight')).toBe(0), {
      timeout: 10_000,
    });
    expect(
      await metric(server.url, 'magma_procedure_calls_total{procedure="ask",status="CANCELLED"}'),
    ).toBe(1);

    // The server is fine afterwards.
    expect((await postTrpc(server.url, 'ask', askBody(png))).status).toBe(200);
  }, 60_000);

  it('removes a queued request from the queue; the engine never sees it', async () => {
    gated.hold();
    const before = gated.calls.length;
    const first = postTrpc(server.url, 'ask', askBody(png));
    await gated.arrived(before + 1);

    const client = new AbortController();
    const queued = postTrpc(server.url, 'ask', askBody(png), { signal: client.signal });
    await vi.waitFor(async () => expect(await metric(server.url, 'magma_queue_depth')).toBe(1), {
      timeout: 10_000,
    });
    client.abort();
    await expect(queued).rejects.toThrow();
    await vi.waitFor(async () => expect(await metric(server.url, 'magma_queue_depth')).toBe(0), {
      timeout: 10_000,
    });
    expect(await metric(server.url, 'magma_in_flight')).toBe(1);

    gated.open();
    expect((await first).status).toBe(200);
    expect(gated.calls.length - before).toBe(1);
  }, 60_000);
});

describe('streamed ask', () => {
  it('cancels the generation when the client leaves the stream', async () => {
    gated.hold();
    const before = gated.calls.length;
    const client = new AbortController();
    const response = await fetch(`${server.url}/trpc/askStream?batch=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'trpc-accept': 'application/jsonl' },
      body: JSON.stringify({ 0: askBody(png) }),
      signal: client.signal,
    });
    expect(response.status).toBe(200);
    await gated.arrived(before + 1);
    const call = gated.calls[before]!;

    client.abort();
    await vi.waitFor(() => expect(call.signal!.aborted).toBe(true), { timeout: 10_000 });
    gated.open();
    await vi.waitFor(
      async () =>
        expect(
          await metric(
            server.url,
            'magma_procedure_calls_total{procedure="askStream",status="CANCELLED"}',
          ),
        ).toBe(1),
      { timeout: 10_000 },
    );
    expect(await metric(server.url, 'magma_in_flight')).toBe(0);
  }, 60_000);
});

describe('deadline', () => {
  let timed: RunningServer;

  beforeAll(async () => {
    timed = await startTestServer(gated, {
      maxConcurrency: 1,
      queueSize: 4,
      // Long enough for a real 4-token answer on a loaded machine (checked last); the 504s
      // come from the gate holding requests past it, not from slow inference.
      requestTimeoutMs: 10_000,
    });
  });

  afterAll(async () => {
    gated.open();
    await timed?.server.shutdown();
  });

  it('answers 504 at the deadline, in the engine or in the queue, and cancels the work', async () => {
    gated.hold();
    const before = gated.calls.length;
    const running = postTrpc(timed.url, 'ask', askBody(png));
    await gated.arrived(before + 1);
    const queued = postTrpc(timed.url, 'ask', askBody(png));

    const [a, b] = await Promise.all([running, queued]);
    for (const response of [a, b]) {
      const data = await expectTrpcError(response, 'DEADLINE_EXCEEDED', 504);
      expect(data.retryable).toBe(true);
    }
    // The queued one never reached the engine; the running one's signal was aborted.
    expect(gated.calls.length - before).toBe(1);
    expect(gated.calls[before]!.signal!.aborted).toBe(true);
    expect(await metric(timed.url, 'magma_queue_depth')).toBe(0);

    gated.open();
    await vi.waitFor(async () => expect(await metric(timed.url, 'magma_in_flight')).toBe(0), {
      timeout: 10_000,
    });
    // A request that fits in the deadline still succeeds.
    expect((await postTrpc(timed.url, 'ask', askBody(png))).status).toBe(200);
  }, 60_000);
});
