import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errorData } from '@magma-som/schemas';
import type { AskRequest, AskStreamEvent } from '@magma-som/schemas';
import {
  APITimeoutError,
  APIUserAbortError,
  ClientClosedError,
  InferenceFailedError,
  MagmaError,
  ModelNotReadyError,
  OverloadedError,
  createClient,
} from '../src/index.js';
import type { MagmaClient, RetryEvent } from '../src/index.js';
import { ContractError } from './support/contract-router.js';
import {
  FaultServer,
  hang,
  jsonResponse,
  sampleResponse,
  trpcError,
} from './support/fault-server.js';
import { smallPng } from './support/images.js';

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

/** Records what the server's ask procedure received. */
function captureAsks(): unknown[] {
  const seen: unknown[] = [];
  server.handlers.ask = async (input) => {
    seen.push(input);
    return sampleResponse();
  };
  return seen;
}

describe('ask', () => {
  it('sends base64 JSON with the key and headers, and returns the typed response', async () => {
    const seen = captureAsks();
    const response = await client.ask({
      image,
      prompt: 'What is #1?',
      marks: [{ label: 1, x1: 1, y1: 2, x2: 30, y2: 40 }],
    });
    expect(response.answer).toBe('Mark: 2');
    expect(response.usage.totalTokens).toBe(304);
    const sent = seen[0] as AskRequest;
    expect(Buffer.from(sent.image, 'base64').equals(image)).toBe(true);
    expect(sent.marks).toEqual([{ label: 1, x1: 1, y1: 2, x2: 30, y2: 40 }]);
    const request = server.requests[0]!;
    expect(request.path).toBe('/trpc/ask');
    expect(request.headers.authorization).toBe('Bearer secret-key');
    expect(request.headers['x-team']).toBe('vision');
  });

  it('numbers unlabelled boxes from 1 by position', async () => {
    const seen = captureAsks();
    await client.ask({
      image,
      prompt: 'Compare #1, #2 and #7.',
      marks: [
        [0, 0, 10, 10],
        { box: [5, 5, 20, 20], style: { color: '#00ff00' } },
        { box: [1, 1, 2, 2], label: 7 },
      ],
    });
    expect((seen[0] as AskRequest).marks).toEqual([
      { label: 1, x1: 0, y1: 0, x2: 10, y2: 10 },
      { label: 2, x1: 5, y1: 5, x2: 20, y2: 20, style: { color: '#00ff00' } },
      { label: 7, x1: 1, y1: 1, x2: 2, y2: 2 },
    ]);
  });

  it('accepts a data URL, base64, a Blob and an ArrayBuffer', async () => {
    const seen = captureAsks();
    const base64 = image.toString('base64');
    const sources = [
      `data:image/png;base64,${base64}`,
      base64,
      new Blob([image], { type: 'image/png' }),
      new Uint8Array(image).buffer,
    ];
    for (const source of sources) await client.ask({ image: source, prompt: 'Is there a #1?' });
    const sent = seen.map((input) => (input as AskRequest).image);
    expect(sent[0]).toBe(`data:image/png;base64,${base64}`);
    expect(sent.slice(1)).toEqual([base64, base64, base64]);
  });

  it('sends images over the threshold as a multipart upload', async () => {
    const local = createClient({ baseUrl: server.url, uploadThresholdBytes: 100 });
    let received: { size: number; type: string } | undefined;
    server.handlers.askUpload = async (blob, fields) => {
      received = { size: blob.size, type: blob.type };
      expect(fields).toMatchObject({
        prompt: 'Where is #1?',
        marks: [{ label: 1, x1: 0, y1: 0, x2: 5, y2: 5 }],
      });
      return sampleResponse('uploaded');
    };
    const response = await local.ask({ image, prompt: 'Where is #1?', marks: [[0, 0, 5, 5]] });
    await local.close();
    expect(response.answer).toBe('uploaded');
    expect(received).toEqual({ size: image.byteLength, type: 'image/png' });
    expect(server.requests[0]!.path).toBe('/trpc/askUpload');
    expect(server.requests[0]!.headers['content-type']).toMatch(/^multipart\/form-data/);
  });

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

  it('also uploads a large image given as base64', async () => {
    const local = createClient({ baseUrl: server.url, uploadThresholdBytes: 100 });
    let size = 0;
    server.handlers.askUpload = async (blob) => {
      size = blob.size;
      return sampleResponse();
    };
    await local.ask({ image: image.toString('base64'), prompt: 'Where is #1?' });
    await local.close();
    expect(size).toBe(image.byteLength);
  });
});

describe('askStream', () => {
  it('yields tokens, then the done event with the whole response', async () => {
    const events: AskStreamEvent[] = [];
    for await (const event of client.askStream({
      image,
      prompt: 'Which mark?',
      marks: [[1, 1, 9, 9]],
    })) {
      events.push(event);
    }
    expect(events.map((e) => e.type)).toEqual(['token', 'token', 'done']);
    expect(
      events
        .filter((e) => e.type === 'token')
        .map((e) => e.text)
        .join(''),
    ).toBe('Mark: 2');
    const done = events.at(-1)!;
    expect(done.type === 'done' && done.response.answer).toBe('Mark: 2');
    expect(server.requests[0]!.path).toBe('/trpc/askStream?batch=1');
    expect(server.requests[0]!.headers['trpc-accept']).toBe('application/jsonl');
  });

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
    const timedOut = await (async () => {
      for await (const event of client.askStream({ image, prompt: 'Hi' }, { timeoutMs: 150 })) {
        expect(event).toEqual({ type: 'token', text: 'Mark' });
      }
    })().catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(APITimeoutError);

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

  it('stops the request when the consumer stops reading', async () => {
    let finished = false;
    const stopped = new Promise<void>((resolve) => {
      server.handlers.askStream = async function* () {
        try {
          for (let i = 0; ; i++) {
            yield { type: 'token', text: `${i} ` };
            await new Promise((r) => setTimeout(r, 5));
          }
        } finally {
          finished = true;
          resolve();
        }
      };
    });
    let count = 0;
    for await (const event of client.askStream({ image, prompt: 'Count.' })) {
      expect(event.type).toBe('token');
      if (++count === 3) break;
    }
    await stopped;
    expect(finished).toBe(true);
  });
});

describe('info, health, ready', () => {
  it('info() returns the server info', async () => {
    const info = await client.info();
    expect(info.model.id).toBe('fault-server');
    expect(server.requests[0]!.method).toBe('GET');
    expect(server.requests[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('health() reads GET /health', async () => {
    server.fail(jsonResponse(200, { status: 'ok', version: '1.0.0', uptimeMs: 5 }));
    expect(await client.health()).toEqual({ status: 'ok', version: '1.0.0', uptimeMs: 5 });
    expect(server.requests[0]!.path).toBe('/health');
  });

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
  it('reuses one keep-alive connection for many calls', async () => {
    for (let i = 0; i < 20; i++) await client.ask({ image, prompt: `Question ${i} about #1?` });
    await client.info();
    for await (const event of client.askStream({ image, prompt: 'Which mark?' }))
      expect(event).toBeDefined();
    expect(server.requests).toHaveLength(22);
    expect(server.connections).toBe(1);
  });

  it('close() is idempotent and later calls fail with ClientClosedError', async () => {
    const first = client.close();
    expect(client.close()).toBe(first);
    await first;
    expect(client.closed).toBe(true);
    await expect(client.ask({ image, prompt: 'Still there?' })).rejects.toBeInstanceOf(
      ClientClosedError,
    );
    await expect(client.info()).rejects.toThrow(/client is closed/);
    const stream = client.askStream({ image, prompt: 'Still there?' });
    await expect(stream.next()).rejects.toBeInstanceOf(ClientClosedError);
    expect(server.requests).toHaveLength(0);
  });

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

  it('`await using` closes the pool at the end of the scope', async () => {
    let escaped: MagmaClient;
    {
      await using scoped = createClient({ baseUrl: server.url });
      escaped = scoped;
      await scoped.info();
      expect(server.connections).toBe(1);
    }
    expect(escaped.closed).toBe(true);
    // The pool's connection was closed by the client, not left to the server.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(escaped.info()).rejects.toBeInstanceOf(ClientClosedError);
  });

  it('close() waits for a call in flight to finish', async () => {
    let release!: () => void;
    const arrived = new Promise<void>((resolveArrived) => {
      server.handlers.ask = async () => {
        resolveArrived();
        await new Promise<void>((resolve) => (release = resolve));
        return sampleResponse('late');
      };
    });
    const pending = client.ask({ image, prompt: 'Slow #1?' });
    await arrived;
    const closing = client.close();
    release();
    await closing;
    expect((await pending).answer).toBe('late');
  });

  it('a hanging server does not keep close() from returning after the timeout', async () => {
    server.fail(hang());
    const pending = client.ask({ image, prompt: 'Anyone?' }, { timeoutMs: 50, maxRetries: 0 });
    await expect(pending).rejects.toBeInstanceOf(MagmaError);
    await client.close();
  });
});
