import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AskResponseSchema, AskStreamEventSchema, ServerInfoSchema } from '@magma-som/schemas';
import type { AskResponse, AskStreamEvent } from '@magma-som/schemas';
import {
  ClientClosedError,
  DeadlineExceededError,
  InvalidInputError,
  createClient,
} from '../src/node.js';
import type { AskInput, MagmaClient } from '../src/node.js';
import { noisePng, smallPng } from './support/images.js';
import type { ServingEngine } from '@magma-som/server';
import { API_KEY, startRealServer } from './support/real-server.js';
import type { RunningServer } from './support/real-server.js';

// The SDK's happy paths against the real server and the tiny model (client.test.ts keeps a
// stand-in server only for faults the real one cannot be made to produce). The model is being
// retrained, so answers are checked for form and for consistency between paths, not for text.

interface Sent {
  readonly url: string;
  readonly method: string;
  readonly headers: Headers;
  readonly body: unknown;
}

let running: RunningServer;
let client: MagmaClient;
let image: Buffer;
const sent: Sent[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'magma-sdk-'));

/** Records every request the client makes, then makes it with the global fetch. */
const recordingFetch: typeof fetch = (input, init) => {
  sent.push({
    url: String(input),
    method: init?.method ?? 'GET',
    headers: new Headers(init?.headers),
    body: init?.body,
  });
  return fetch(input, init);
};

function clientFor(url: string, extra: Partial<Parameters<typeof createClient>[0]> = {}) {
  return createClient({ baseUrl: url, apiKey: API_KEY, fetch: recordingFetch, ...extra });
}

/** A tRPC JSON body's input (plain, or the first of a batch). */
function sentInput(body: unknown): Record<string, unknown> {
  const parsed = JSON.parse(String(body)) as Record<string, unknown>;
  return (parsed['0'] as Record<string, unknown> | undefined) ?? parsed;
}

async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** What a well-formed answer to `request` looks like, whatever the model says. */
function expectWellFormed(response: AskResponse, maxTokens: number): void {
  expect(() => AskResponseSchema.parse(response)).not.toThrow();
  expect(response.model.id).toBe('magma-tiny-som');
  expect(response.requestId).toMatch(/\S/);
  expect(response.usage.totalTokens).toBe(
    response.usage.promptTokens + response.usage.completionTokens,
  );
  expect(response.usage.imageTokens).toBeGreaterThan(0);
  expect(response.usage.promptTokens).toBeGreaterThan(response.usage.imageTokens);
  expect(response.usage.completionTokens).toBeGreaterThan(0);
  expect(response.usage.completionTokens).toBeLessThanOrEqual(maxTokens);
  expect(['stop', 'length']).toContain(response.finishReason);
  if (response.finishReason === 'length') expect(response.usage.completionTokens).toBe(maxTokens);
  expect(response.answer).toBe(response.answer.trim());
}

/** The parts of two answers to the same question that must not depend on how it was sent. */
function sameAnswer(a: AskResponse, b: AskResponse): void {
  expect(b.answer).toBe(a.answer);
  expect(b.usage).toEqual(a.usage);
  expect(b.grid).toEqual(a.grid);
  expect(b.references).toEqual(a.references);
}

type GenerateRequest = Parameters<ServingEngine['generate']>[0];
type GenerateResult = Awaited<ReturnType<ServingEngine['generate']>>;

/**
 * The real engine, but each answer is held open after its last token until the request's
 * signal aborts, as a long answer would be (see the askStream cancellation test).
 */
class LastingEngine implements ServingEngine {
  readonly calls: GenerateRequest[] = [];
  constructor(private readonly engine: ServingEngine) {}
  get info() {
    return this.engine.info;
  }
  warmup(): Promise<void> {
    return this.engine.warmup();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  async generate(request: GenerateRequest): Promise<GenerateResult> {
    this.calls.push(request);
    const result = await this.engine.generate(request);
    const signal = request.signal;
    if (signal === undefined || result.finishReason === 'cancelled') return result;
    if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve));
    return { ...result, finishReason: 'cancelled' };
  }
}

const marks = [
  [10, 10, 60, 50],
  [80, 40, 150, 110],
] as const;

beforeAll(async () => {
  running = await startRealServer({ MAGMA_MAX_TOKENS: '64' });
  image = await smallPng(160, 120);
  client = clientFor(running.url, { headers: { 'x-team': 'vision' } });
});

afterAll(async () => {
  await client?.close();
  await running?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('ask', () => {
  it('sends base64 JSON with the key and extra headers, and returns the typed response', async () => {
    const before = sent.length;
    const response = await client.ask({ image, prompt: 'What color is object #1?', marks });
    expectWellFormed(response, 64);
    const request = sent[before]!;
    expect(sent.length - before).toBe(1);
    expect(request.url).toBe(`${running.url}/trpc/ask`);
    expect(request.method).toBe('POST');
    expect(request.headers.get('authorization')).toBe(`Bearer ${API_KEY}`);
    expect(request.headers.get('x-team')).toBe('vision');
    const input = sentInput(request.body);
    expect(Buffer.from(String(input.image), 'base64').equals(image)).toBe(true);
  });

  it('numbers unlabelled boxes from 1 by position; the server draws them all', async () => {
    const before = sent.length;
    const response = await client.ask({
      image,
      prompt: 'Describe the marked objects.',
      marks: [
        [10, 10, 60, 50],
        { box: [80, 40, 150, 110], style: { color: '#00ff00' } },
        { box: [20, 70, 70, 115], label: 7 },
      ],
      returnMarkedImage: true,
    });
    expectWellFormed(response, 64);
    expect(sentInput(sent[before]!.body).marks).toEqual([
      { label: 1, x1: 10, y1: 10, x2: 60, y2: 50 },
      { label: 2, x1: 80, y1: 40, x2: 150, y2: 110, style: { color: '#00ff00' } },
      { label: 7, x1: 20, y1: 70, x2: 70, y2: 115 },
    ]);
    // The image the model saw: same size, with the marks drawn in (so different pixels).
    const marked = Buffer.from(response.markedImage!.data, 'base64');
    const { width, height } = await sharp(marked).metadata();
    expect({ width, height }).toEqual({ width: 160, height: 120 });
    const [plain, drawn] = await Promise.all(
      [image, marked].map((png) => sharp(png).removeAlpha().raw().toBuffer()),
    );
    expect(drawn!.equals(plain!)).toBe(false);
    // Any mark the answer names is one of those sent, with its box.
    for (const ref of response.references) {
      if (ref.mark) expect([1, 2, 7]).toContain(ref.mark.label);
    }
  });

  it('gets the same answer for a Buffer, data URL, base64, Blob, ArrayBuffer and file path', async () => {
    const path = join(tmp, 'scene.png');
    writeFileSync(path, image);
    const base64 = image.toString('base64');
    const sources: AskInput['image'][] = [
      image,
      `data:image/png;base64,${base64}`,
      base64,
      new Blob([image], { type: 'image/png' }),
      new Uint8Array(image).buffer,
      path,
    ];
    const answers: AskResponse[] = [];
    for (const source of sources) {
      answers.push(await client.ask({ image: source, prompt: 'What is in #2?', marks }));
    }
    expectWellFormed(answers[0]!, 64);
    for (const answer of answers.slice(1)) sameAnswer(answers[0]!, answer);
  });

  it('sends an image over the threshold as a multipart upload, with the same answer', async () => {
    const question = { image, prompt: 'What color is object #2?', marks };
    const viaJson = await client.ask(question);
    await using uploading = clientFor(running.url, { uploadThresholdBytes: 100 });
    const before = sent.length;
    const viaUpload = await uploading.ask(question);
    expect(sent[before]!.url).toBe(`${running.url}/trpc/askUpload`);
    expect(sent[before]!.body).toBeInstanceOf(FormData);
    sameAnswer(viaJson, viaUpload);

    // An image given as base64 is uploaded too, as bytes.
    const fromBase64 = await uploading.ask({ ...question, image: image.toString('base64') });
    expect(sent.at(-1)!.url).toBe(`${running.url}/trpc/askUpload`);
    const uploaded = (sent.at(-1)!.body as FormData).get('image') as Blob;
    expect(uploaded.size).toBe(image.byteLength);
    sameAnswer(viaJson, fromBase64);
  });

  it.each([
    [640, 480],
    [300, 900],
    [1280, 720],
  ])('answers well-formed about a %ix%i image, over several crops', async (width, height) => {
    const large = await noisePng(width, height);
    const response = await client.ask({
      image: large,
      prompt: 'Describe the marked objects.',
      marks: [
        [20, 20, width / 2, height / 2],
        [width / 2 + 10, height / 2 + 10, width - 20, height - 20],
      ],
      returnMarkedImage: true,
    });
    expectWellFormed(response, 64);
    expect(response.grid.rows * response.grid.cols).toBeGreaterThan(1);
    expect(response.markedImage).toMatchObject({ width, height });
  });
});

describe('askStream', () => {
  let lasting: LastingEngine;
  let lastingServer: RunningServer;
  beforeAll(async () => {
    lasting = new LastingEngine(running.server.engine!);
    lastingServer = await startRealServer({ MAGMA_MAX_TOKENS: '64' }, lasting);
  });
  afterAll(async () => {
    await lastingServer?.close();
  });

  it('yields tokens that add up to the answer, then the done event; same answer as ask()', async () => {
    const question = { image, prompt: 'Describe the marked objects.', marks };
    const before = sent.length;
    const events: AskStreamEvent[] = [];
    for await (const event of client.askStream(question)) {
      events.push(AskStreamEventSchema.parse(event));
    }
    expect(sent[before]!.url).toBe(`${running.url}/trpc/askStream?batch=1`);
    expect(sent[before]!.headers.get('trpc-accept')).toBe('application/jsonl');
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    expect(events.slice(0, -1).every((event) => event.type === 'token')).toBe(true);
    if (done.type !== 'done') return;
    expectWellFormed(done.response, 64);
    const text = events.map((event) => (event.type === 'token' ? event.text : '')).join('');
    expect(text.trim()).toBe(done.response.answer);
    sameAnswer(await client.ask(question), done.response);
  });

  it('breaking out of the loop cancels the generation on the server', async () => {
    // The trained tiny model answers in a few tokens, too fast to leave mid-answer reliably; a
    // server whose engine holds each answer open after the real engine's tokens, until the
    // request's signal aborts, stands for a long answer. Everything else is the real server.
    const before = lasting.calls.length;
    const series = (status: string) =>
      `magma_procedure_calls_total{procedure="askStream",status="${status}"}`;
    let tokens = 0;
    await using local = clientFor(lastingServer.url);
    for await (const event of local.askStream({ image, prompt: 'Describe #1.', marks })) {
      expect(event.type).toBe('token');
      if (++tokens === 1) break;
    }
    const call = lasting.calls[before]!;
    await vi.waitFor(() => expect(call.signal?.aborted).toBe(true), { timeout: 30_000 });
    expect(call.signal!.reason).toMatchObject({ code: 'CANCELLED' });
    await vi.waitFor(
      async () => expect(await metric(lastingServer.url, series('CANCELLED'))).toBe(1),
      { timeout: 30_000, interval: 100 },
    );
    expect(await metric(lastingServer.url, series('OK'))).toBe(0);
    expect(await metric(lastingServer.url, 'magma_in_flight')).toBe(0);
  });
});

describe('info and health', () => {
  it('info() names the model and the limits this server was started with', async () => {
    const info = ServerInfoSchema.parse(await client.info());
    expect(info.model.id).toBe('magma-tiny-som');
    expect(info.limits.maxTokens).toBe(64);
    expect(info.ready.ready).toBe(true);
    expect(sent.at(-1)!.method).toBe('GET');
    expect(sent.at(-1)!.headers.get('idempotency-key')).toBeNull();
  });

  it('health() reads GET /health', async () => {
    const health = await client.health();
    expect(health.status).toBe('ok');
    expect(health.uptimeMs).toBeGreaterThan(0);
    expect(sent.at(-1)!.url).toBe(`${running.url}/health`);
  });
});

describe('closing', () => {
  it('close() waits for a call in flight, is idempotent, and later calls fail', async () => {
    const local = clientFor(running.url);
    const before = sent.length;
    const pending = local.ask({ image, prompt: 'What is in #1?', marks });
    // Closing once the request is on its way (the image is read and encoded before that).
    await vi.waitFor(() => expect(sent.length).toBe(before + 1), { timeout: 30_000 });
    const first = local.close();
    expect(local.close()).toBe(first);
    await first;
    expectWellFormed(await pending, 64);
    expect(local.closed).toBe(true);
    const after = sent.length;
    await expect(local.ask({ image, prompt: 'Still there?' })).rejects.toBeInstanceOf(
      ClientClosedError,
    );
    await expect(local.askStream({ image, prompt: 'Still there?' }).next()).rejects.toBeInstanceOf(
      ClientClosedError,
    );
    expect(sent.length).toBe(after);
  });
});

describe('server limits and deadline', () => {
  let limited: RunningServer;
  let timed: RunningServer;

  beforeAll(async () => {
    // The same engine behind servers configured differently (no second model load).
    limited = await startRealServer(
      { MAGMA_MAX_MARKS: '2', MAGMA_MAX_PROMPT_CHARS: '24' },
      running.server.engine,
    );
    // A 1 ms deadline: an ask about a new, large image runs past it, however fast the machine.
    timed = await startRealServer({ MAGMA_REQUEST_TIMEOUT_MS: '1' }, running.server.engine);
  });

  afterAll(async () => {
    await limited?.close();
    await timed?.close();
  });

  it('MAGMA_MAX_MARKS and MAGMA_MAX_PROMPT_CHARS: at the limit answered, above it INVALID_INPUT', async () => {
    await using local = clientFor(limited.url);
    const atLimit = await local.ask({ image, prompt: 'What color is object #1?', marks });
    expect('What color is object #1?'.length).toBe(24);
    expectWellFormed(atLimit, 12);

    const tooMany = await local
      .ask({ image, prompt: 'What is in #3?', marks: [...marks, [90, 5, 120, 30]] })
      .catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(InvalidInputError);
    expect((tooMany as InvalidInputError).status).toBe(400);
    expect((tooMany as InvalidInputError).attempts).toBe(1);
    expect((tooMany as InvalidInputError).issues).toEqual([
      { path: ['marks'], message: 'at most 2 marks' },
    ]);

    const tooLong = await local
      .ask({ image, prompt: 'What colour is object #1?', marks })
      .catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(InvalidInputError);
    expect((tooLong as InvalidInputError).issues).toEqual([
      { path: ['prompt'], message: 'prompt is longer than 24 characters' },
    ]);

    // The same limits on the upload and stream routes.
    await using uploading = clientFor(limited.url, { uploadThresholdBytes: 100 });
    await expect(
      uploading.ask({ image, prompt: 'What is in #3?', marks: [...marks, [90, 5, 120, 30]] }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      local.askStream({ image, prompt: 'What colour is object #1?', marks }).next(),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("a request past the server's deadline is DeadlineExceededError (504), not retried", async () => {
    await using local = clientFor(timed.url, { retry: { initialDelayMs: 10, jitter: 0 } });
    // Not the small image asked before: the engine holds its prefix, and an answer from a held
    // prefix can take under 2 ms here, within reach of a 1 ms timer. A 5 MB PNG that no test
    // has asked about needs more than 1 ms to inflate alone, then its vision pass.
    const unseen = await noisePng(1536, 1152);
    const error = await local
      .ask({ image: unseen, prompt: 'What is in #1?', marks }, { maxRetries: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    const typed = error as DeadlineExceededError;
    expect(typed.code).toBe('DEADLINE_EXCEEDED');
    expect(typed.status).toBe(504);
    expect(typed.retryable).toBe(true);
    // It ran for the server's whole deadline; the client does not run it again by default.
    expect(typed.attempts).toBe(1);
    expect(typed.requestId).toMatch(/\S/);
  });
});
