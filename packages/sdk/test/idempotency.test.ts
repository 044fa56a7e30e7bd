import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServingEngine } from '@magma-som/server';
import { APIError, IdempotencyKeyReusedError, UnprocessableEntityError } from '../src/index.js';
import type { RetryEvent } from '../src/index.js';
import { createClient } from './support/entry.js';
import { smallPng } from './support/images.js';
import { API_KEY, startRealServer } from './support/real-server.js';
import type { RunningServer } from './support/real-server.js';

// The server honours Idempotency-Key: a retried ask is computed once. The count is taken on the
// server, at the engine, which is the real one with a counter (and a gate) in front.

type GenerateRequest = Parameters<ServingEngine['generate']>[0];

class CountingEngine implements ServingEngine {
  calls = 0;
  /** generate() waits for this before it runs. */
  gate: Promise<void> = Promise.resolve();
  constructor(private readonly engine: ServingEngine) {}
  get info() {
    return this.engine.info;
  }
  warmup(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  async generate(request: GenerateRequest) {
    this.calls++;
    await this.gate;
    return this.engine.generate(request);
  }
}

let base: RunningServer;
let counted: RunningServer;
let engine: CountingEngine;
let image: Buffer;
const marks = [[10, 10, 60, 50]] as const;

beforeAll(async () => {
  base = await startRealServer();
  engine = new CountingEngine(base.server.engine!);
  counted = await startRealServer({}, engine);
  image = await smallPng(160, 120);
});

afterAll(async () => {
  await counted?.close();
  await base?.close();
});

/** fetch calls to the ask procedure, and the rest passed through. */
function askFetch(onAsk: (n: number, go: () => Promise<Response>) => Promise<Response>) {
  let asks = 0;
  const wrapped: typeof fetch = (input, init) => {
    const go = () => fetch(input, init);
    return String(input).includes('/trpc/ask') ? onAsk(++asks, go) : go();
  };
  return { fetch: wrapped, asks: () => asks };
}

describe('Idempotency-Key', () => {
  it('a retry after the answer was lost on the way gets the stored answer: one inference', async () => {
    const before = engine.calls;
    let firstRequestId: string | undefined;
    const { fetch, asks } = askFetch(async (n, go) => {
      const response = await go();
      if (n > 1) return response;
      // The server answered; the connection drops before the client reads it.
      const body = (await response.clone().json()) as { result: { data: { requestId: string } } };
      firstRequestId = body.result.data.requestId;
      throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
    });
    const retries: RetryEvent[] = [];
    await using client = createClient({
      baseUrl: counted.url,
      apiKey: API_KEY,
      fetch,
      retry: { initialDelayMs: 10, onRetry: (event) => retries.push(event) },
    });
    const response = await client.ask({ image, prompt: 'What is in #1?', marks });
    expect(asks()).toBe(2);
    expect(retries).toHaveLength(1);
    expect(engine.calls - before).toBe(1);
    // The stored answer: the first request's.
    expect(response.requestId).toBe(firstRequestId);
  });

  it('a retry while the first attempt still runs joins it: one inference', async () => {
    const before = engine.calls;
    let open!: () => void;
    engine.gate = new Promise((resolve) => (open = resolve));
    const { fetch, asks } = askFetch((n, go) => {
      // The first attempt times out on the gated engine; once its retry is on the way, let the
      // inference run.
      if (n === 2) setTimeout(open, 100);
      return go();
    });
    await using client = createClient({
      baseUrl: counted.url,
      apiKey: API_KEY,
      fetch,
      timeoutMs: 3_000,
      maxRetries: 5,
      retry: { initialDelayMs: 10, jitter: 0 },
    });
    try {
      const response = await client.ask({ image, prompt: 'What colour is #1?', marks });
      expect(response.answer).toBeTypeOf('string');
    } finally {
      open();
      engine.gate = Promise.resolve();
    }
    expect(asks()).toBeGreaterThanOrEqual(2);
    expect(engine.calls - before).toBe(1);
  });

  it('the same key with a different request is IdempotencyKeyReusedError (422), not retried', async () => {
    await using client = createClient({ baseUrl: counted.url, apiKey: API_KEY });
    const key = `test-${Date.now()}`;
    await client.ask({ image, prompt: 'What is in #1?', marks }, { idempotencyKey: key });
    const before = engine.calls;
    const error = await client
      .ask({ image, prompt: 'Something else about #1?', marks }, { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyKeyReusedError);
    expect(error).toBeInstanceOf(UnprocessableEntityError);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
      status: 422,
      retryable: false,
      attempts: 1,
    });
    expect(engine.calls).toBe(before);
  });
});
