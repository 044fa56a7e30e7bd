import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  APIError,
  AuthenticationError,
  BadRequestError,
  CancelledError,
  ConflictError,
  DeadlineExceededError,
  InferenceFailedError,
  InternalServerError,
  InvalidMarksError,
  NotFoundError,
  OverloadedError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RateLimitError,
  RequestTimeoutError,
  UnprocessableEntityError,
} from '../src/index.js';
import type { MagmaClient, MagmaError } from '../src/index.js';
import { createClient } from './support/entry.js';
import { FaultServer, rawResponse, trpcError } from './support/fault-server.js';
import type { Fault } from './support/fault-server.js';
import { noisePng, smallPng } from './support/images.js';
import { failure } from './support/failure.js';
import { API_KEY, startRealServer } from './support/real-server.js';
import type { RunningServer } from './support/real-server.js';

// The table from a response to an error class: what the real server sends, then (stand-in)
// what only a proxy or another server in front of it would.

let image: Buffer;

const question = (extra: Record<string, unknown> = {}) => ({
  image,
  prompt: 'What is in #1?',
  marks: [[1, 1, 20, 20] as const],
  ...extra,
});

beforeAll(async () => {
  image = await smallPng(160, 120);
});

describe('responses of the real server', () => {
  let running: RunningServer;
  const clients: MagmaClient[] = [];
  const clientFor = (options: Partial<Parameters<typeof createClient>[0]> = {}) => {
    const client = createClient({
      baseUrl: running.url,
      apiKey: API_KEY,
      maxRetries: 0,
      ...options,
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    running = await startRealServer({ MAGMA_MAX_IMAGE_BYTES: '20000' });
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await running?.close();
  });

  it('400 INVALID_MARKS: InvalidMarksError under BadRequestError and APIError, with the response', async () => {
    // Only the server knows the image's size, so this mark passes local validation.
    const error = await failure(clientFor().ask({ ...question(), marks: [[100, 100, 400, 300]] }));
    expect(error).toBeInstanceOf(InvalidMarksError);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ code: 'INVALID_MARKS', status: 400, retryable: false });
    expect(error.headers).toBeInstanceOf(Headers);
    expect(error.requestId).toBe(error.headers!.get('x-request-id'));
    expect((error as APIError).body).toMatchObject({ error: { data: { code: 'INVALID_MARKS' } } });
  });

  it('401: AuthenticationError, not retried', async () => {
    const error = await failure(clientFor({ apiKey: 'wrong', maxRetries: 2 }).ask(question()));
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401, attempts: 1 });
    expect(error.requestId).toMatch(/\S/);
  });

  it('404 of a route that does not exist: NotFoundError', async () => {
    const error = await failure(clientFor({ baseUrl: `${running.url}/elsewhere` }).info());
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ code: 'NOT_FOUND', status: 404, retryable: false });
  });

  it('413: PayloadTooLargeError, not retried', async () => {
    const large = await noisePng(120, 90);
    const error = await failure(clientFor({ maxRetries: 2 }).ask(question({ image: large })));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413, attempts: 1 });
  });
});

describe('responses only a proxy or a stand-in sends', () => {
  let server: FaultServer;
  let client: MagmaClient;

  beforeEach(async () => {
    server = await FaultServer.start();
    client = createClient({
      baseUrl: server.url,
      timeoutMs: 30_000,
      retry: { initialDelayMs: 5, maxDelayMs: 5, jitter: 0 },
    });
  });

  afterEach(async () => {
    await client.close();
    await server.close();
  });

  // status, body, the class, its code, whether the client tries again
  const table: [Fault, string, new (...args: never[]) => MagmaError, string, boolean][] = [
    [rawResponse(400, 'bad'), 'plain 400', BadRequestError, 'BAD_REQUEST', false],
    [rawResponse(403, 'forbidden'), 'plain 403', PermissionDeniedError, 'PERMISSION_DENIED', false],
    [rawResponse(404, 'missing'), 'plain 404', NotFoundError, 'NOT_FOUND', false],
    [rawResponse(408, 'slow'), 'plain 408', RequestTimeoutError, 'REQUEST_TIMEOUT', true],
    [rawResponse(409, 'conflict'), 'plain 409', ConflictError, 'CONFLICT', false],
    [rawResponse(418, 'teapot'), 'plain 418', APIError, 'HTTP_ERROR', false],
    [rawResponse(422, 'no'), 'plain 422', UnprocessableEntityError, 'UNPROCESSABLE_ENTITY', false],
    [rawResponse(429, 'slow down'), 'plain 429', RateLimitError, 'RATE_LIMITED', true],
    [rawResponse(500, 'oops'), 'plain 500', InternalServerError, 'INTERNAL', true],
    [rawResponse(502, 'gateway'), 'plain 502', InternalServerError, 'INTERNAL', true],
    [rawResponse(503, 'unavailable'), 'plain 503', InternalServerError, 'INTERNAL', true],
    [rawResponse(504, 'gateway timeout'), 'plain 504', InternalServerError, 'INTERNAL', true],
    [trpcError('INFERENCE_FAILED'), 'contract 500', InferenceFailedError, 'INFERENCE_FAILED', true],
    [trpcError('OVERLOADED'), 'contract 503', OverloadedError, 'OVERLOADED', true],
    // The server gave up at its deadline: running it again would likely take as long.
    [
      trpcError('DEADLINE_EXCEEDED'),
      'contract 504',
      DeadlineExceededError,
      'DEADLINE_EXCEEDED',
      false,
    ],
    [trpcError('CANCELLED'), 'contract 499', CancelledError, 'CANCELLED', false],
  ];

  for (const [fault, name, Class, code, retried] of table) {
    it(`${name}: ${Class.name} ${code}, ${retried ? 'retried' : 'not retried'}`, async () => {
      server.fail(fault, fault);
      const error = await failure(client.ask(question(), { maxRetries: 1 }));
      expect(error).toBeInstanceOf(Class);
      expect(error).toBeInstanceOf(APIError);
      expect(error.code).toBe(code);
      expect(error.status).toBe(Number(/\d{3}/.exec(name)?.[0]));
      expect(error.attempts).toBe(retried ? 2 : 1);
      expect(server.requests).toHaveLength(retried ? 2 : 1);
      if (name.startsWith('plain')) expect((error as APIError).body).toBeTypeOf('string');
    });
  }

  it('the server-side deadline is retried when retryDeadlineExceeded is set', async () => {
    server.fail(trpcError('DEADLINE_EXCEEDED'));
    await failure(client.ask(question(), { maxRetries: 1 }));
    expect(server.requests).toHaveLength(1);
    const retrying = createClient({
      baseUrl: server.url,
      retry: { initialDelayMs: 5, retryDeadlineExceeded: true },
    });
    server.fail(trpcError('DEADLINE_EXCEEDED'));
    await retrying.ask(question(), { maxRetries: 1 });
    await retrying.close();
    expect(server.requests).toHaveLength(3);
  });
});
