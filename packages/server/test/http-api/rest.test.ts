import { AskResponseSchema, AskSseEventSchema, ErrorDataSchema } from '@magma-som/schemas';
import type { AskResponse, AskSseEvent } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, GenerateRequest, GenerateResult } from '../../src/engine/index.js';
import type { ServingEngine } from '../../src/index.js';
import {
  GatedEngine,
  askBody,
  expectNoInternals,
  metric,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { parseSse } from './sse.js';

// POST /v1/som/ask and /v1/som/ask/stream against a real server and the real tiny model.

let engine: Engine;
let running: RunningServer;
// Built at collection time: the it.each tables below use it.
const png = await testImage();

beforeAll(async () => {
  engine = await startTestEngine();
  running = await startTestServer(engine, { maxTokens: 16 });
}, 180_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${running.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function trpcAnswer(): Promise<AskResponse> {
  const body = (await (await postTrpc(running.url, 'ask', askBody(png))).json()) as {
    result: { data: unknown };
  };
  return AskResponseSchema.parse(body.result.data);
}

function form(fields: Record<string, string>, image: Buffer | null = png): FormData {
  const data = new FormData();
  if (image)
    data.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'scene.png');
  for (const [name, value] of Object.entries(fields)) data.append(name, value);
  return data;
}

const FORM_FIELDS = {
  prompt: askBody(Buffer.alloc(0)).prompt,
  marks: JSON.stringify(askBody(Buffer.alloc(0)).marks),
  options: JSON.stringify({ maxTokens: 4 }),
};

describe('POST /v1/som/ask', () => {
  it('JSON: the AskResponse, the same answer as tRPC ask, the request id echoed', async () => {
    const expected = await trpcAnswer();
    const response = await post('/v1/som/ask', askBody(png), { 'x-request-id': 'rest-1' });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('rest-1');
    const data = AskResponseSchema.parse(await response.json());
    expect(data.requestId).toBe('rest-1');
    expect(data.answer).toBe(expected.answer);
    expect(data.references).toEqual(expected.references);
  });

  it('multipart: the image as a file part plus fields gives the same answer', async () => {
    const expected = await trpcAnswer();
    const response = await fetch(`${running.url}/v1/som/ask`, {
      method: 'POST',
      body: form(FORM_FIELDS),
    });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    expect(AskResponseSchema.parse(JSON.parse(text)).answer).toBe(expected.answer);
  });

  it('multipart: returnMarkedImage as a text field', async () => {
    const response = await fetch(`${running.url}/v1/som/ask`, {
      method: 'POST',
      body: form({ ...FORM_FIELDS, returnMarkedImage: 'true', markedImageFormat: 'jpeg' }),
    });
    const data = AskResponseSchema.parse(await response.json());
    expect(data.markedImage?.format).toBe('jpeg');
  });

  it.each([
    ['no image part', form(FORM_FIELDS, null), ['image']],
    [
      'image as text',
      (() => {
        const f = form(FORM_FIELDS, null);
        f.append('image', 'abc');
        return f;
      })(),
      ['image'],
    ],
    ['marks not JSON', form({ ...FORM_FIELDS, marks: '[{' }), ['marks']],
    ['unknown field', form({ ...FORM_FIELDS, colour: 'red' }), ['colour']],
    ['bad boolean', form({ ...FORM_FIELDS, returnMarkedImage: 'yes' }), ['returnMarkedImage']],
    ['empty prompt', form({ ...FORM_FIELDS, prompt: ' ' }), ['prompt']],
  ])('multipart with %s: 400 INVALID_INPUT naming the field', async (_name, body, path) => {
    const response = await fetch(`${running.url}/v1/som/ask`, { method: 'POST', body });
    const text = await response.text();
    expect(response.status, text).toBe(400);
    const data = ErrorDataSchema.parse(JSON.parse(text));
    expect(data.code).toBe('INVALID_INPUT');
    expect(data.issues?.map((issue) => issue.path)).toContainEqual(path);
  });

  it('a mark outside the image: 400 INVALID_MARKS with the ErrorData body', async () => {
    const response = await post(
      '/v1/som/ask',
      askBody(png, { marks: [{ label: 1, x1: 0, y1: 0, x2: 999, y2: 10 }] }),
    );
    const text = await response.text();
    expect(response.status).toBe(400);
    const data = ErrorDataSchema.parse(JSON.parse(text));
    expect(data).toMatchObject({ code: 'INVALID_MARKS', httpStatus: 400 });
    expect(data.issues?.[0]?.path).toEqual(['marks', 0]);
    expectNoInternals(text);
  });
});

describe('POST /v1/som/ask/stream', () => {
  it('token events join to the answer, then one done event with the response', async () => {
    const expected = await trpcAnswer();
    const response = await post('/v1/som/ask/stream', askBody(png));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSse(await response.text()).map((event) => {
      const data = AskSseEventSchema.parse(JSON.parse(event.data));
      expect(event.event).toBe(data.type);
      return data;
    });
    const done = events.at(-1) as Extract<AskSseEvent, { type: 'done' }>;
    expect(done.type).toBe('done');
    const tokens = events.slice(0, -1) as Array<Extract<AskSseEvent, { type: 'token' }>>;
    expect(tokens.every((event) => event.type === 'token')).toBe(true);
    expect(tokens.map((event) => event.text).join('')).toBe(expected.answer);
    expect(done.response.answer).toBe(expected.answer);
  });

  it('multipart works on the stream too', async () => {
    const response = await fetch(`${running.url}/v1/som/ask/stream`, {
      method: 'POST',
      body: form(FORM_FIELDS),
    });
    const events = parseSse(await response.text());
    expect(events.at(-1)?.event).toBe('done');
  });

  it('a failure before the first token is a plain error with its status', async () => {
    const response = await post('/v1/som/ask/stream', askBody(png, { prompt: '' }));
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(ErrorDataSchema.parse(await response.json()).code).toBe('INVALID_INPUT');
  });
});

describe('queue, deadline and disconnect as for ask', () => {
  let gated: GatedEngine;
  let server: RunningServer;
  // The deadline on its own server: with a short deadline on the first one, a loaded machine
  // could time the held stream out before its client leaves (DEADLINE_EXCEEDED, not CANCELLED).
  let shortDeadline: RunningServer;

  beforeAll(async () => {
    gated = new GatedEngine(engine);
    server = await startTestServer(gated, {
      maxConcurrency: 1,
      queueSize: 0,
      requestTimeoutMs: 120_000,
    });
    shortDeadline = await startTestServer(gated, {
      maxConcurrency: 1,
      queueSize: 0,
      requestTimeoutMs: 1_500,
    });
  });

  afterAll(async () => {
    gated?.open();
    await server?.server.shutdown();
    await shortDeadline?.server.shutdown();
  });

  it('queue full: 503 OVERLOADED with Retry-After; deadline: 504; a disconnect frees the slot', async () => {
    gated.hold();
    const calls = gated.calls.length;
    const aborter = new AbortController();
    const first = fetch(`${server.url}/v1/som/ask/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(askBody(png)),
      signal: aborter.signal,
    }).catch(() => undefined);
    await gated.arrived(calls + 1);

    const overloaded = await fetch(`${server.url}/v1/som/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(askBody(png)),
    });
    expect(overloaded.status).toBe(503);
    expect(Number(overloaded.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(ErrorDataSchema.parse(await overloaded.json()).code).toBe('OVERLOADED');

    // The held stream's client goes away: the slot must come back once the engine lets go.
    aborter.abort();
    await first;
    gated.open();
    await until(async () => (await metric(server.url, CANCELLED_STREAMS)) === 1);
    await until(async () => (await queueInFlight(server.url)) === 0);
    const after = await fetch(`${server.url}/v1/som/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(askBody(png)),
    });
    expect(after.status).toBe(200);

    // Held in the engine for good: the deadline answers, however slow the machine.
    gated.hold();
    const late = await fetch(`${shortDeadline.url}/v1/som/ask/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(askBody(png)),
    });
    expect(late.status).toBe(504);
    expect(ErrorDataSchema.parse(await late.json()).code).toBe('DEADLINE_EXCEEDED');
    gated.open();
  });
});

const CANCELLED_STREAMS =
  'magma_procedure_calls_total{procedure="rest.askStream",status="CANCELLED"}';

async function queueInFlight(url: string): Promise<number> {
  const body = (await (await fetch(`${url}/trpc/info`)).json()) as {
    result: { data: { queue: { inFlight: number; depth: number } } };
  };
  return body.result.data.queue.inFlight + body.result.data.queue.depth;
}

/** Polls `check` until it holds (the test's timeout bounds the wait). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * The real engine's answer, replayed to the stream a character every 150 ms, so a client can
 * leave in the middle of a stream. The text is the real model's.
 */
class SlowReplayEngine implements ServingEngine {
  constructor(private readonly engine: Engine) {}

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
    const result = await this.engine.generate({ ...request, onToken: undefined });
    for (const piece of result.text) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      request.signal?.throwIfAborted();
      request.onToken?.(piece);
    }
    return result;
  }
}

describe('a client leaving in the middle of a stream', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startTestServer(new SlowReplayEngine(engine), { maxConcurrency: 1 });
  });

  afterAll(async () => {
    await server?.server.shutdown();
  });

  it.each([
    ['/v1/som/ask/stream', askBody(png) as unknown, 'rest.askStream'],
    ['/v1/chat/completions', undefined, 'openai.chat'],
  ])(
    '%s: cancelled, counted, and the server serves the next request',
    async (path, body, procedure) => {
      const payload = body ?? {
        model: engine.info.name,
        stream: true,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: askBody(png).prompt },
              {
                type: 'image_url',
                image_url: { url: `data:image/png;base64,${png.toString('base64')}` },
              },
            ],
          },
        ],
        marks: askBody(png).marks,
        max_tokens: 4,
      };
      const aborter = new AbortController();
      const response = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: aborter.signal,
      });
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      aborter.abort();
      await until(
        async () =>
          (await metric(
            server.url,
            `magma_procedure_calls_total{procedure="${procedure}",status="CANCELLED"}`,
          )) === 1,
      );
      await until(async () => (await queueInFlight(server.url)) === 0);
      const next = await fetch(`${server.url}/v1/som/ask`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(askBody(png)),
      });
      expect(next.status).toBe(200);
    },
  );
});
