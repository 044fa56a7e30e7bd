import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errorData } from '@magma-som/schemas';
import type { AskStreamEvent } from '@magma-som/schemas';
import {
  APITimeoutError,
  APIUserAbortError,
  CancelledError,
  ClientClosedError,
  InferenceFailedError,
  InternalServerError,
  MagmaError,
  ModelNotReadyError,
  OverloadedError,
} from '../src/index.js';
import type { MagmaClient, RetryEvent } from '../src/index.js';
import { createClient } from './support/entry.js';
import { ContractError } from './support/contract-router.js';
import {
  FaultServer,
  hang,
  jsonResponse,
  sampleResponse,
  trpcError,
} from './support/fault-server.js';
import { smallPng } from './support/images.js';

// The client against a stand-in tRPC server that misbehaves on purpose: retries, stream
// errors, timeouts, closing. Every happy path runs against the real server in real-paths.test.ts.

let server: FaultServer;
let client: MagmaClient;
let retries: RetryEvent[];
let image: Buffer;

beforeAll(async () => {
  image = await smallPng();
});

beforeEach(async () => {
  server = await FaultServer.start();
  retries = [];
  client = createClient({
    baseUrl: `${server.url}/`,
    apiKey: 'secret-key',
    headers: { 'x-team': 'vision' },
    retry: { initialDelayMs: 10, jitter: 0, onRetry: (event) => retries.push(event) },
  });
});

afterEach(async () => {
  await client.close();
  await server.close();
});

describe('ask', () => {
  it('sends the same upload again on a retry', async () => {
    const local = createClient({
      baseUrl: server.url,
      uploadThresholdBytes: 100,
      retry: { initialDelayMs: 5 },
    });
    const sizes: number[] = [];
    server.handlers.askUpload = async (blob) => {
      sizes.push(blob.size);
      return sampleResponse();
    };
    server.fail(trpcError('OVERLOADED'));
    await local.ask({ image, prompt: 'Where is #1?' });
    await local.close();
    expect(server.requests.map((r) => r.path)).toEqual(['/trpc/askUpload', '/trpc/askUpload']);
    expect(sizes).toEqual([image.byteLength]);
  });
});

describe('askStream', () => {
  it('retries a failure before the first event', async () => {
    server.fail(trpcError('OVERLOADED'));
    const events: AskStreamEvent[] = [];
    for await (const event of client.askStream({ image, prompt: 'Which mark?' }))
      events.push(event);
    expect(events).toHaveLength(3);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.operation).toBe('askStream');
    const keys = server.requests.map((r) => r.headers['idempotency-key']);
    expect(keys[1]).toBe(keys[0]);
  });

  it('retries an error the server reports inside the stream before any token', async () => {
    let calls = 0;
    server.handlers.askStream = async function* () {
      calls++;
      if (calls === 1)
        throw new ContractError(errorData('MODEL_NOT_READY', 'warming up', { retryAfterMs: 5 }));
      yield { type: 'done', response: sampleResponse() };
    };
    const events: AskStreamEvent[] = [];
    for await (const event of client.askStream({ image, prompt: 'Which mark?' }))
      events.push(event);
    expect(events.map((e) => e.type)).toEqual(['done']);
    expect(retries[0]!.error).toBeInstanceOf(ModelNotReadyError);
    expect(retries[0]!.delayMs).toBe(5);
  });

  it('ends with a typed error when the server fails mid-stream, without retrying', async () => {
    server.handlers.askStream = async function* () {
      yield { type: 'token', text: 'Mark' };
      throw new ContractError(errorData('INFERENCE_FAILED', 'the model failed'));
    };
    const events: AskStreamEvent[] = [];
    const error = await (async () => {
      for await (const event of client.askStream({ image, prompt: 'Which mark?' }))
        events.push(event);
    })().catch((e: unknown) => e);
    expect(events).toEqual([{ type: 'token', text: 'Mark' }]);
    expect(error).toBeInstanceOf(InferenceFailedError);
    expect((error as MagmaError).message).toBe('the model failed');
    expect(server.requests).toHaveLength(1);
  });

  it('a timeout or an abort mid-stream ends it with the typed error', async () => {
    server.handlers.askStream = async function* () {
      yield { type: 'token', text: 'Mark' };
      await new Promise(() => undefined);
    };
    // After the first event only the idle timeout runs; it fires on the stalled stream.
    const received: AskStreamEvent[] = [];
    const timedOut = await (async () => {
      for await (const event of client.askStream(
        { image, prompt: 'Hi' },
        { timeoutMs: 30_000, streamIdleTimeoutMs: 300, maxRetries: 0 },
      )) {
        received.push(event);
      }
    })().catch((e: unknown) => e);
    expect(received).toEqual([{ type: 'token', text: 'Mark' }]);
    expect(timedOut).toBeInstanceOf(APITimeoutError);
    expect(timedOut).toMatchObject({ idle: true, timeoutMs: 300, attempts: 1 });

    const controller = new AbortController();
    const aborted = await (async () => {
      for await (const event of client.askStream(
        { image, prompt: 'Hi' },
        { signal: controller.signal },
      )) {
        expect(event.type).toBe('token');
        controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(aborted).toBeInstanceOf(APIUserAbortError);
    expect(server.requests).toHaveLength(2);
  });

  it('a stream that ends without a done event is an InternalServerError, not retried', async () => {
    // A proxy cutting the stream short, or a broken server: tokens, then a clean end.
    server.handlers.askStream = async function* () {
      yield { type: 'token', text: 'Mark' };
      yield { type: 'token', text: ': 2' };
    };
    const events: AskStreamEvent[] = [];
    const error = await (async () => {
      for await (const event of client.askStream({ image, prompt: 'Which mark?' }))
        events.push(event);
    })().catch((e: unknown) => e);
    expect(events.map((e) => e.type)).toEqual(['token', 'token']);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as MagmaError).message).toBe('the stream ended without a done event');
    expect(server.requests).toHaveLength(1);
    expect(retries).toHaveLength(0);
  });
});

describe('errors the real server sends only to clients already gone', () => {
  it('CANCELLED (499) is a CancelledError, not retried', async () => {
    // The real server answers CANCELLED when the client hung up, so no client ever reads it; a
    // proxy that keeps the client's connection while dropping its own can pass one on.
    server.fail(trpcError('CANCELLED'));
    const error = await client.ask({ image, prompt: 'What is #1?' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CancelledError);
    const typed = error as CancelledError;
    expect(typed).toMatchObject({ code: 'CANCELLED', status: 499, retryable: false, attempts: 1 });
    expect(typed.requestId).toBe('req-fault');
    expect(server.requests).toHaveLength(1);
  });
});

describe('info, health, ready', () => {
  it('ready() returns a 503 readiness answer instead of throwing', async () => {
    const notReady = {
      ready: false,
      modelLoaded: true,
      warm: false,
      shuttingDown: false,
      reason: 'warming up',
    };
    server.fail(
      jsonResponse(503, notReady),
      jsonResponse(200, { ...notReady, ready: true, warm: true }),
    );
    expect(await client.ready()).toEqual(notReady);
    expect((await client.ready()).ready).toBe(true);
    expect(retries).toHaveLength(0);
  });

  it('a 503 that is not a readiness answer is an error', async () => {
    server.fail(
      jsonResponse(503, errorData('OVERLOADED', 'busy')),
      jsonResponse(503, errorData('OVERLOADED', 'busy')),
    );
    const error = await client.ready({ maxRetries: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OverloadedError);
    expect(server.requests).toHaveLength(2);
  });
});

describe('lifecycle', () => {
  it('close() stops a call waiting to retry', async () => {
    server.fail(trpcError('OVERLOADED', { headers: { 'retry-after-ms': '30000' } }));
    const local = createClient({
      baseUrl: server.url,
      retry: { onRetry: () => void local.close() },
    });
    await expect(local.ask({ image, prompt: 'Hello #1' })).rejects.toBeInstanceOf(
      ClientClosedError,
    );
  });

  it('a hanging server does not keep close() from returning after the timeout', async () => {
    server.fail(hang());
    const pending = client.ask({ image, prompt: 'Anyone?' }, { timeoutMs: 50, maxRetries: 0 });
    await expect(pending).rejects.toBeInstanceOf(MagmaError);
    await client.close();
  });
});
