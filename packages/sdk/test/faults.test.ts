import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  InternalServerError,
  InvalidInputError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
} from '../src/index.js';
import type { ClientOptions, MagmaClient, RetryEvent } from '../src/index.js';
import { createClient } from './support/entry.js';
import {
  FaultServer,
  freePort,
  hang,
  hangInBody,
  rawResponse,
  reset,
  trpcError,
} from './support/fault-server.js';
import { smallPng } from './support/images.js';
import { failure } from './support/failure.js';

let server: FaultServer;
let client: MagmaClient;
let retries: RetryEvent[];
let image: Buffer;

// Small delays and no jitter keep the tests fast and the delays exact.
function makeClient(options: Partial<ClientOptions> = {}): MagmaClient {
  return createClient({
    baseUrl: server.url,
    // Only a safety net: the stand-in answers at once, but a loaded machine can take seconds.
    timeoutMs: 30_000,
    ...options,
    retry: {
      initialDelayMs: 20,
      maxDelayMs: 80,
      jitter: 0,
      onRetry: (event) => retries.push(event),
      ...options.retry,
    },
  });
}

const question = () => ({ image, prompt: 'What is in #1?', marks: [[1, 1, 20, 20] as const] });

beforeAll(async () => {
  image = await smallPng();
});

beforeEach(async () => {
  server = await FaultServer.start();
  retries = [];
  client = makeClient();
});

afterEach(async () => {
  await client.close();
  await server.close();
});

describe('retries server faults', () => {
  it('retries 500, a proxy 502 and 503 with growing delays, then succeeds', async () => {
    server.fail(
      trpcError('INTERNAL'),
      rawResponse(502, '<html>Bad Gateway</html>'),
      trpcError('OVERLOADED'),
    );
    const response = await client.ask(question(), { maxRetries: 3 });
    expect(response.answer).toBe('Mark: 2');
    expect(server.requests).toHaveLength(4);
    expect(retries.map((r) => r.delayMs)).toEqual([20, 40, 80]);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(retries[0]!.reason).toContain('HTTP 500 INTERNAL');
    expect(retries[1]!.reason).toContain('HTTP 502');
    // A proxy's 502 says nothing about the model: a plain InternalServerError with its status.
    expect(retries[1]!.error).toBeInstanceOf(InternalServerError);
    expect(retries[1]!.error).toMatchObject({ code: 'INTERNAL', status: 502 });
    expect(retries[2]!.reason).toContain('HTTP 503 OVERLOADED');
  });

  it('sends the same idempotency key on every attempt, and a new one per call', async () => {
    server.fail(trpcError('INTERNAL'), trpcError('INTERNAL'));
    await client.ask(question());
    await client.ask(question());
    const keys = server.requests.map((r) => r.headers['idempotency-key']);
    expect(keys).toHaveLength(4);
    expect(keys[0]).toMatch(/^magma-[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).toBe(keys[0]);
    expect(keys[3]).not.toBe(keys[0]);
    expect(retries.every((r) => r.idempotencyKey === keys[0])).toBe(true);
  });

  it('uses a caller-supplied idempotency key', async () => {
    server.fail(trpcError('INFERENCE_FAILED'));
    await client.ask(question(), { idempotencyKey: 'order-42' });
    expect(server.requests.map((r) => r.headers['idempotency-key'])).toEqual([
      'order-42',
      'order-42',
    ]);
  });

  it('gives up after maxRetries with the last error, counting attempts', async () => {
    server.fail(trpcError('INTERNAL'), trpcError('INTERNAL'), trpcError('INTERNAL'));
    const error = await failure(client.ask(question()));
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.attempts).toBe(3);
    expect(error.status).toBe(500);
    expect(error.requestId).toBe('req-fault');
    expect(server.requests).toHaveLength(3);
  });

  it('maxRetries 0 makes one attempt', async () => {
    server.fail(trpcError('INTERNAL'));
    const error = await failure(client.ask(question(), { maxRetries: 0 }));
    expect(error.attempts).toBe(1);
    expect(server.requests).toHaveLength(1);
  });
});

describe('does not retry client errors', () => {
  it('400 INVALID_INPUT: typed, with issues, one request', async () => {
    const issues = [{ path: ['prompt'], message: 'prompt is empty' }];
    server.fail(trpcError('INVALID_INPUT', { extra: { issues } }));
    const error = await failure(client.ask(question()));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.status).toBe(400);
    expect(error.retryable).toBe(false);
    expect(error.issues).toEqual(issues);
    expect(server.requests).toHaveLength(1);
    expect(retries).toHaveLength(0);
  });

  it('401 is an AuthenticationError', async () => {
    server.fail(trpcError('UNAUTHORIZED'));
    const error = await failure(client.ask(question()));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error.status).toBe(401);
    expect(server.requests).toHaveLength(1);
  });

  it("413, also when it is the framework's own body (not tRPC-shaped)", async () => {
    server.fail(trpcError('PAYLOAD_TOO_LARGE'));
    expect(await failure(client.ask(question()))).toBeInstanceOf(PayloadTooLargeError);
    const fastify413 = JSON.stringify({
      statusCode: 413,
      error: 'Payload Too Large',
      message: 'body is too large',
    });
    server.fail(rawResponse(413, fastify413, { 'content-type': 'application/json' }));
    const error = await failure(client.ask(question()));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error.message).toContain('body is too large');
    expect(server.requests).toHaveLength(2);
  });

  it('a 404 without tRPC body is a NotFoundError', async () => {
    server.fail(rawResponse(404, 'not here'));
    const error = await failure(client.ask(question()));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(server.requests).toHaveLength(1);
  });
});

describe('Retry-After', () => {
  it('honours retry-after-ms on 429', async () => {
    server.fail(trpcError('RATE_LIMITED', { headers: { 'retry-after-ms': '35' } }));
    await client.ask(question());
    expect(retries).toHaveLength(1);
    expect(retries[0]!.delayMs).toBe(35);
    expect(retries[0]!.error).toBeInstanceOf(RateLimitError);
    expect(retries[0]!.reason).toContain('Retry-After 35 ms');
  });

  it('honours retry-after in seconds on 503', async () => {
    server.fail(trpcError('OVERLOADED', { headers: { 'retry-after': '1' } }));
    await client.ask(question());
    expect(retries.map((r) => r.delayMs)).toEqual([1000]);
  });

  it("falls back to the error body's retryAfterMs", async () => {
    server.fail(trpcError('MODEL_NOT_READY', { extra: { retryAfterMs: 25 } }));
    await client.ask(question());
    expect(retries.map((r) => r.delayMs)).toEqual([25]);
  });

  it('fails at once when the server asks for longer than maxRetryAfterMs', async () => {
    server.fail(trpcError('RATE_LIMITED', { headers: { 'retry-after': '120' } }));
    const error = await failure(client.ask(question()));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error.retryAfterMs).toBe(120_000);
    expect(error.attempts).toBe(1);
    expect(server.requests).toHaveLength(1);
  });
});

describe('x-should-retry overrides the status', () => {
  it('false stops a retryable 503', async () => {
    server.fail(trpcError('OVERLOADED', { headers: { 'x-should-retry': 'false' } }));
    await failure(client.ask(question()));
    expect(server.requests).toHaveLength(1);
  });

  it('true retries a 400', async () => {
    server.fail(trpcError('INVALID_INPUT', { headers: { 'x-should-retry': 'true' } }));
    await client.ask(question());
    expect(server.requests).toHaveLength(2);
  });
});

describe('timeouts', () => {
  it('fires on a hanging response and is retried like a connection error', async () => {
    server.fail(hang(), hang());
    const error = await failure(client.ask(question(), { timeoutMs: 100, maxRetries: 1 }));
    expect(error).toBeInstanceOf(APITimeoutError);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect((error as APITimeoutError).timeoutMs).toBe(100);
    expect(error.attempts).toBe(2);
    expect(retries[0]!.reason).toContain('timeout after 100 ms');
  });

  it('covers reading the body, not just the headers', async () => {
    server.fail(hangInBody());
    const error = await failure(client.ask(question(), { timeoutMs: 100, maxRetries: 0 }));
    expect(error).toBeInstanceOf(APITimeoutError);
  });

  it('a timeout followed by success returns the answer', async () => {
    server.fail(hang());
    // Long enough for the second attempt's answer to arrive on a loaded machine.
    const response = await client.ask(question(), { timeoutMs: 5_000 });
    expect(response.answer).toBe('Mark: 2');
    expect(server.requests).toHaveLength(2);
  });
});

describe('connection failures', () => {
  it('retries a refused connection until the server is up', async () => {
    const port = await freePort();
    let starting: Promise<FaultServer> | undefined;
    const local = createClient({
      baseUrl: `http://127.0.0.1:${port}`,
      retry: {
        initialDelayMs: 20,
        jitter: 0,
        // The server comes up while the client waits to retry.
        onRetry: (event) => {
          retries.push(event);
          if (event.attempt === 2) starting = FaultServer.start(port);
        },
      },
    });
    try {
      const response = await local.ask(question(), { maxRetries: 6 });
      expect(response.answer).toBe('Mark: 2');
      expect(retries[0]!.error).toBeInstanceOf(APIConnectionError);
      expect(retries[0]!.reason).toContain('ECONNREFUSED');
      expect((await starting)!.requests).toHaveLength(1);
    } finally {
      await local.close();
      await (await starting)?.close();
    }
  });

  it('gives up on a refused connection with APIConnectionError', async () => {
    const local = makeClient({ baseUrl: `http://127.0.0.1:${await freePort()}` });
    const error = await failure(local.ask(question()));
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(error.code).toBe('CONNECTION_ERROR');
    expect(error.attempts).toBe(3);
    await local.close();
  });

  it('retries a reset connection', async () => {
    server.fail(reset(), reset());
    const response = await client.ask(question());
    expect(response.answer).toBe('Mark: 2');
    expect(retries).toHaveLength(2);
    expect(retries.every((r) => r.error instanceof APIConnectionError)).toBe(true);
  });
});

describe('abort', () => {
  it('stops at once while waiting to retry', async () => {
    const controller = new AbortController();
    // Without the abort the client would wait a minute; the test's own timeout would fail it.
    server.fail(trpcError('OVERLOADED', { headers: { 'retry-after-ms': '60000' } }));
    const local = makeClient({
      retry: { maxRetryAfterMs: 120_000, onRetry: () => setTimeout(() => controller.abort(), 10) },
    });
    const error = await failure(local.ask(question(), { signal: controller.signal }));
    expect(error).toBeInstanceOf(APIUserAbortError);
    expect(error.retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
    await local.close();
  });

  it('stops a request in flight and does not retry it', async () => {
    const controller = new AbortController();
    // Aborted once the server has the request (not after a fixed time, which a loaded machine
    // can spend before the request is even sent).
    server.fail((req, res) => {
      hang()(req, res);
      controller.abort();
    });
    const error = await failure(client.ask(question(), { signal: controller.signal }));
    expect(error).toBeInstanceOf(APIUserAbortError);
    expect(server.requests).toHaveLength(1);
    expect(retries).toHaveLength(0);
  });

  it('sends nothing when the signal is already aborted', async () => {
    const error = await failure(client.ask(question(), { signal: AbortSignal.abort() }));
    expect(error).toBeInstanceOf(APIUserAbortError);
    expect(server.requests).toHaveLength(0);
  });
});
