import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AskResponseSchema,
  AskStreamEventSchema,
  HealthSchema,
  ReadinessSchema,
  ServerInfoSchema,
} from '@magma-som/schemas';
import type { AskStreamEvent } from '@magma-som/schemas';
import { AuthenticationError, InvalidMarksError } from '../src/index.js';
import type { MagmaClient } from '../src/index.js';
import { createClient } from './support/entry.js';
import { noisePng, smallPng } from './support/images.js';
import { API_KEY, startRealServer } from './support/real-server.js';
import type { RunningServer } from './support/real-server.js';

// The tiny model may have random weights: these tests check the contract, not what it answers.
let running: RunningServer;
let client: MagmaClient;
let image: Buffer;
const sent: string[] = [];

beforeAll(async () => {
  running = await startRealServer();
  image = await smallPng(160, 120);
  client = createClient({
    baseUrl: running.url,
    apiKey: API_KEY,
    // Records where each request went; otherwise the global fetch.
    fetch: (input, init) => {
      sent.push(String(input));
      return fetch(input, init);
    },
  });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await running?.close();
});

const marks = [
  [10, 10, 60, 50],
  [80, 40, 150, 110],
] as const;

describe('against the real server and the tiny model', () => {
  it('health() and ready() read the plain routes', async () => {
    expect(HealthSchema.parse(await client.health()).status).toBe('ok');
    const ready = ReadinessSchema.parse(await client.ready());
    expect(ready).toMatchObject({
      ready: true,
      modelLoaded: true,
      warm: true,
      shuttingDown: false,
    });
  });

  it('info() names the model and its limits', async () => {
    const info = ServerInfoSchema.parse(await client.info());
    expect(info.model.id).toBe('magma-tiny-som');
    expect(info.limits.maxTokens).toBe(12);
  });

  it('ask() returns a response that satisfies the contract', async () => {
    const response = await client.ask({ image, prompt: 'Which mark is the blue box?', marks });
    expect(() => AskResponseSchema.parse(response)).not.toThrow();
    expect(response.model.id).toBe('magma-tiny-som');
    expect(response.requestId).not.toBe('');
    expect(response.usage.imageTokens).toBeGreaterThan(0);
    expect(response.usage.completionTokens).toBeLessThanOrEqual(12);
    expect(sent.at(-1)).toBe(`${running.url}/trpc/ask`);
  });

  it('askStream() yields tokens that add up to the answer, then the response', async () => {
    const events: AskStreamEvent[] = [];
    for await (const event of client.askStream({ image, prompt: 'What is in #2?', marks })) {
      events.push(AskStreamEventSchema.parse(event));
    }
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    expect(events.slice(0, -1).every((event) => event.type === 'token')).toBe(true);
    if (done.type !== 'done') return;
    const text = events.map((event) => (event.type === 'token' ? event.text : '')).join('');
    expect(text.trim()).toBe(done.response.answer);
    expect(done.response.usage.completionTokens).toBeGreaterThan(0);
  });

  it('sends a large image as a multipart upload', async () => {
    const large = await noisePng(640, 640);
    expect(large.byteLength).toBeGreaterThan(1024 * 1024);
    const response = await client.ask({
      image: large,
      prompt: 'What is in #1?',
      marks: [[100, 100, 300, 300]],
    });
    expect(() => AskResponseSchema.parse(response)).not.toThrow();
    expect(sent.at(-1)).toBe(`${running.url}/trpc/askUpload`);
    expect(response.grid.rows * response.grid.cols).toBeGreaterThan(1);
  });

  it("a mark outside the image is the server's InvalidMarksError, not retried", async () => {
    const before = sent.length;
    const error = await client
      .ask({ image, prompt: 'What is in #1?', marks: [[10, 10, 500, 50]] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidMarksError);
    const typed = error as InvalidMarksError;
    expect(typed.status).toBe(400);
    expect(typed.requestId).toMatch(/\S/);
    expect(typed.issues?.length).toBeGreaterThan(0);
    expect(sent.length - before).toBe(1);
  });

  it('a wrong API key is an AuthenticationError', async () => {
    await using anonymous = createClient({ baseUrl: running.url, apiKey: 'wrong' });
    const error = await anonymous.info().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).status).toBe(401);
    expect((error as AuthenticationError).attempts).toBe(1);
  });

  it("reuses one connection across many calls (Node's keep-alive pool)", async () => {
    const before = running.sockets.length;
    {
      await using scoped = createClient({ baseUrl: running.url, apiKey: API_KEY });
      for (let i = 0; i < 8; i++) {
        await scoped.ask({
          image,
          prompt: `Question ${i}: what is in #1?`,
          marks,
          options: { maxTokens: 2 },
        });
      }
      await scoped.info();
      await scoped.health();
      // Node's pool is shared by every client: an earlier test's idle connection may serve all.
      expect(running.sockets.length - before).toBeLessThanOrEqual(1);
    }
  });
});

describe('against a rate-limited real server', () => {
  let limited: RunningServer;
  beforeAll(async () => {
    limited = await startRealServer({
      MAGMA_RATE_LIMIT_MAX: '2',
      // The test's three calls must fall in one window even on a loaded machine; the client
      // then waits out the rest of it.
      MAGMA_RATE_LIMIT_WINDOW_MS: '6000',
    });
  }, 60_000);
  afterAll(async () => {
    await limited?.close();
  });

  it("waits out the server's Retry-After on 429 and then succeeds", async () => {
    const retries: { delayMs: number; status: number | undefined }[] = [];
    await using local = createClient({
      baseUrl: limited.url,
      apiKey: API_KEY,
      retry: {
        onRetry: (event) => retries.push({ delayMs: event.delayMs, status: event.error.status }),
      },
    });
    await local.info();
    await local.info();
    const info = await local.info();
    expect(info.model.id).toBe('magma-tiny-som');
    expect(retries).toHaveLength(1);
    expect(retries[0]!.status).toBe(429);
    // The server sends Retry-After in whole seconds.
    expect(retries[0]!.delayMs).toBeGreaterThan(0);
    expect(retries[0]!.delayMs % 1000).toBe(0);
  });

  it('a streamed ask is refused by auth before any event, as a typed error', async () => {
    await using anonymous = createClient({ baseUrl: limited.url, apiKey: 'wrong' });
    const stream = anonymous.askStream({ image, prompt: 'What is in #1?', marks });
    const error = await stream.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
  });
});
