import sharp from 'sharp';
import {
  AskResponseSchema,
  AskStreamEventSchema,
  HealthSchema,
  ReadinessSchema,
  ServerInfoSchema,
} from '@magma-som/schemas';
import type { AskResponse } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import {
  askBody,
  expectNoInternals,
  expectTrpcError,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from './helpers.js';
import type { RunningServer } from './helpers.js';

// Every procedure and plain route against one real server running the real tiny model.

let engine: Engine;
let running: RunningServer;
let url: string;
let png: Buffer;

beforeAll(async () => {
  engine = await startTestEngine();
  running = await startTestServer(engine, { maxTokens: 8 });
  url = running.url;
  png = await testImage();
}, 120_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
});

async function trpcResult<T>(response: Response): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return (JSON.parse(text) as { result: { data: T } }).result.data;
}

describe('ask', () => {
  it('answers a marked image in the AskResponse shape and echoes the request id', async () => {
    const response = await postTrpc(url, 'ask', askBody(png), {
      headers: { 'x-request-id': 'test-ask-1' },
    });
    expect(response.headers.get('x-request-id')).toBe('test-ask-1');
    const data = AskResponseSchema.parse(await trpcResult<AskResponse>(response));
    expect(data.requestId).toBe('test-ask-1');
    expect(data.model).toEqual({ id: engine.info.name, revision: engine.info.revision });
    expect(data.usage.completionTokens).toBeGreaterThan(0);
    expect(data.usage.completionTokens).toBeLessThanOrEqual(4);
    expect(data.usage.totalTokens).toBe(data.usage.promptTokens + data.usage.completionTokens);
    expect(data.usage.imageTokens).toBeGreaterThan(0);
    expect(data.usage.promptTokens).toBeGreaterThan(data.usage.imageTokens);
    expect(['stop', 'length']).toContain(data.finishReason);
    expect(data.grid.rows * data.grid.cols).toBeGreaterThanOrEqual(1);
    expect(data.timings.totalMs).toBeGreaterThan(0);
    expect(data.timings.totalMs).toBeGreaterThanOrEqual(data.timings.decodeMs);
    expect(data.markedImage).toBeUndefined();
  });

  it('refuses an explicit maxTokens above the cap with a typed 400 naming the cap', async () => {
    const response = await postTrpc(url, 'ask', askBody(png, { options: { maxTokens: 9 } }));
    const error = await expectTrpcError(response, 'INVALID_INPUT', 400);
    expect(error.message).toContain('8');
    expect(error.issues?.[0]?.path).toEqual(['options', 'maxTokens']);
  });

  it('caps the default maxTokens (left out by the client) at the configured limit', async () => {
    const response = await postTrpc(url, 'ask', askBody(png, { options: {} }));
    const data = await trpcResult<AskResponse>(response);
    expect(data.usage.completionTokens).toBeLessThanOrEqual(8);
  });

  it('generates a fresh request id when the header is unsafe, and uses it everywhere', async () => {
    const response = await postTrpc(url, 'ask', askBody(png), {
      headers: { 'x-request-id': 'bad id\twith spaces' },
    });
    const id = response.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await trpcResult<AskResponse>(response)).requestId).toBe(id);
  });

  it('returns the image exactly as the model saw it, marks drawn', async () => {
    const response = await postTrpc(
      url,
      'ask',
      askBody(png, { returnMarkedImage: true, markedImageFormat: 'png' }),
    );
    const data = await trpcResult<AskResponse>(response);
    const marked = data.markedImage!;
    expect(marked).toMatchObject({ format: 'png', width: 160, height: 120 });
    const { data: pixels, info } = await sharp(Buffer.from(marked.data, 'base64'))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 160, height: 120 });
    // The box (15,15)-(65,65) has a 2 px outline of Magma's pure red; its left edge is never
    // under a label. Far from the mark the background is untouched.
    const at = (x: number, y: number) => [
      ...pixels.subarray((y * 160 + x) * info.channels, (y * 160 + x) * info.channels + 3),
    ];
    expect(at(15, 45)).toEqual([255, 0, 0]);
    expect(at(16, 45)).toEqual([255, 0, 0]);
    expect(at(150, 110)).toEqual([220, 230, 240]);
  });

  it('sizes marks for the model on a large image, or by Magma plain rule when asked', async () => {
    // 1024x768 reaches the tiny model as a 2x2 grid of 128 px crops: a quarter of its size. The
    // bundle declares 2 px outlines in model pixels, so the server draws 8 image pixels; Magma's
    // own rule draws 2, which the model would see as half a pixel.
    const big = await testImage(1024, 768);
    const redRun = async (markSizing?: 'model' | 'magma') => {
      const response = await postTrpc(
        url,
        'ask',
        askBody(big, {
          returnMarkedImage: true,
          markedImageFormat: 'png',
          ...(markSizing ? { markSizing } : {}),
        }),
      );
      const marked = (await trpcResult<AskResponse>(response)).markedImage!;
      expect(marked).toMatchObject({ width: 1024, height: 768 });
      const { data: pixels, info } = await sharp(Buffer.from(marked.data, 'base64'))
        .raw()
        .toBuffer({ resolveWithObject: true });
      // Red pixels from the box's left edge (x = 15) inwards, at mid-height.
      let run = 0;
      for (let x = 15; x < 60; x++) {
        const i = (45 * 1024 + x) * info.channels;
        if (pixels[i] === 255 && pixels[i + 1] === 0 && pixels[i + 2] === 0) run++;
        else break;
      }
      return run;
    };
    expect(await redRun()).toBe(8);
    expect(await redRun('model')).toBe(8);
    expect(await redRun('magma')).toBe(2);
  });

  it('returns a JPEG marked image when asked', async () => {
    const response = await postTrpc(
      url,
      'ask',
      askBody(png, { returnMarkedImage: true, markedImageFormat: 'jpeg' }),
    );
    const marked = (await trpcResult<AskResponse>(response)).markedImage!;
    expect(marked.format).toBe('jpeg');
    expect((await sharp(Buffer.from(marked.data, 'base64')).metadata()).format).toBe('jpeg');
  });

  it('accepts data URLs and every supported format', async () => {
    for (const format of ['jpeg', 'webp', 'gif'] as const) {
      const image = await testImage(96, 96, format);
      const response = await postTrpc(url, 'ask', {
        ...askBody(image),
        image: `data:image/${format};base64,${image.toString('base64')}`,
      });
      expect((await trpcResult<AskResponse>(response)).usage.imageTokens).toBeGreaterThan(0);
    }
  });
});

describe("plain asks, answered without tRPC's Fetch adapter", () => {
  // POST /trpc/ask is answered by trpc/direct-call.ts; the same call as a batch of one still goes
  // through tRPC's handler. Both must give the same status, headers and body.
  async function both(body: unknown, requestId: string) {
    const headers = { 'x-request-id': requestId };
    const direct = await postTrpc(url, 'ask', body, { headers });
    // an empty body is no input; in a batch that is a missing entry
    const batch = body === '' ? {} : { 0: body };
    const batched = await postTrpc(url, 'ask?batch=1', batch, { headers });
    const directJson = (await direct.json()) as Record<string, unknown>;
    const [batchedJson] = (await batched.json()) as Record<string, unknown>[];
    for (const name of ['content-type', 'vary', 'retry-after', 'x-request-id'])
      expect(direct.headers.get(name), name).toBe(batched.headers.get(name));
    expect(direct.status).toBe(batched.status);
    return { status: direct.status, direct: directJson, batched: batchedJson! };
  }

  /** An answer without what differs from call to call (timings). */
  const withoutTimings = (json: Record<string, unknown>) => {
    const data = (json['result'] as { data: Record<string, unknown> }).data;
    return { ...data, timings: undefined };
  };

  it('an answer: same status, headers and body but for timings', async () => {
    const body = askBody(png, { cache: false });
    const { status, direct, batched } = await both(body, 'direct-ok');
    expect(status).toBe(200);
    expect(Object.keys(direct)).toEqual(['result']);
    expect(withoutTimings(direct)).toEqual(withoutTimings(batched));
    expect(AskResponseSchema.parse((direct['result'] as { data: unknown }).data).requestId).toBe(
      'direct-ok',
    );
  });

  it.each([
    ['bad marks', () => askBody(png, { marks: [{ label: 1, x1: 50, y1: 50, x2: 10, y2: 10 }] })],
    ['an unknown image id', () => askBody(png, { image: `sha256:${'0'.repeat(64)}` })],
    ['a missing prompt', () => ({ image: png.toString('base64') })],
    ['no input at all', () => ''],
    ['not an object', () => 42],
  ])('an error (%s): the same status, headers and body', async (_name, body) => {
    const { status, direct, batched } = await both(body(), 'direct-error');
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(direct).toEqual(batched);
    expect(direct['error']).toMatchObject({ data: { requestId: 'direct-error' } });
  });
});

describe('askStream', () => {
  it('streams token events and then one done event over httpBatchStreamLink framing', async () => {
    const response = await fetch(`${url}/trpc/askStream?batch=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'trpc-accept': 'application/jsonl' },
      // Sampled, so even an untrained model produces visible text to stream.
      body: JSON.stringify({
        0: askBody(png, { options: { maxTokens: 8, temperature: 1, seed: 7 } }),
      }),
    });
    expect(response.status).toBe(200);
    const text = await response.text();
    expectNoInternals(text);
    // The JSONL stream carries the generator's values as [index, kind, [[value]]] chunks.
    const events = text
      .split('\n')
      .filter((line) => line.includes('"type"'))
      .flatMap((line) => findEvents(JSON.parse(line)));
    const parsed = events.map((event) => AskStreamEventSchema.parse(event));
    const done = parsed.filter((event) => event.type === 'done');
    expect(done).toHaveLength(1);
    expect(parsed.at(-1)!.type).toBe('done');
    const response0 = (done[0] as { response: AskResponse }).response;
    const tokens = parsed.filter((event) => event.type === 'token').map((event) => event.text);
    expect(tokens.join('')).toBe(response0.answer);
    expect(tokens.length).toBeGreaterThan(0);
  });
});

/** Stream events anywhere inside a JSONL chunk. */
function findEvents(value: unknown): unknown[] {
  if (Array.isArray(value)) return value.flatMap(findEvents);
  if (value && typeof value === 'object') {
    const type = (value as { type?: unknown }).type;
    if (type === 'token' || type === 'done') return [value];
    return Object.values(value).flatMap(findEvents);
  }
  return [];
}

describe('askUpload', () => {
  it('takes the raw image bytes and JSON fields as multipart form data', async () => {
    const form = new FormData();
    form.set('image', new Blob([png], { type: 'image/png' }), 'shot.png');
    const { image: _image, ...fields } = askBody(png);
    form.set('request', JSON.stringify(fields));
    const response = await fetch(`${url}/trpc/askUpload`, { method: 'POST', body: form });
    const data = AskResponseSchema.parse(await trpcResult<AskResponse>(response));
    expect(data.usage.imageTokens).toBeGreaterThan(0);
    expect(data.requestId).toBe(response.headers.get('x-request-id'));
  });
});

describe('info and plain routes', () => {
  it('info reports the model, readiness, queue and limits', async () => {
    const response = await fetch(`${url}/trpc/info`);
    const info = ServerInfoSchema.parse(await trpcResult(response));
    expect(info.model.id).toBe(engine.info.name);
    expect(info.model.cropSize).toBe(engine.info.cropSize);
    expect(info.ready.ready).toBe(true);
    expect(info.limits.maxTokens).toBe(8);
    expect(info.queue.capacity).toBe(
      running.server.config.queueSize + running.server.config.maxConcurrency,
    );
  });

  it('GET /health', async () => {
    const response = await fetch(`${url}/health`);
    expect(response.status).toBe(200);
    const health = HealthSchema.parse(await response.json());
    expect(health.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('GET /ready is 200 once warm', async () => {
    const response = await fetch(`${url}/ready`);
    expect(response.status).toBe(200);
    expect(ReadinessSchema.parse(await response.json())).toEqual({
      ready: true,
      modelLoaded: true,
      warm: true,
      shuttingDown: false,
      // Bytes per graph and dtype, KV per token: checked in memory.test.ts.
      memory: expect.objectContaining({ kvBytesPerToken: expect.any(Number) }),
    });
  });

  it('GET /metrics exposes request, token, stage, queue and event-loop metrics', async () => {
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(/magma_procedure_calls_total\{procedure="ask",status="ok"\} [1-9]/);
    expect(text).toMatch(/magma_procedure_calls_total\{procedure="askStream",status="ok"\} [1-9]/);
    expect(text).toMatch(/magma_http_requests_total\{route="trpc\.ask",status="200"\} [1-9]/);
    expect(text).toMatch(
      /magma_http_request_duration_seconds_bucket\{le="[^"]+",route="trpc\.ask"/,
    );
    expect(text).toMatch(/magma_tokens_generated_total [1-9]/);
    expect(text).toMatch(/magma_decode_tokens_per_second_count [1-9]/);
    for (const stage of ['queue', 'image', 'preprocess', 'vision', 'prefill', 'decode']) {
      expect(text).toMatch(
        new RegExp(`magma_stage_duration_seconds_count\\{stage="${stage}"\\} [1-9]`),
      );
    }
    expect(text).toMatch(/magma_queue_depth 0/);
    expect(text).toMatch(/magma_in_flight 0/);
    expect(text).toMatch(/magma_engine_restarts_total 0/);
    expect(text).toMatch(/magma_ready 1/);
    expect(text).toMatch(/nodejs_eventloop_lag_p99_seconds \d/);
  });
});
