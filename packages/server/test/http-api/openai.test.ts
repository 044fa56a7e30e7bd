import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import {
  AskResponseSchema,
  ChatCompletionChunkSchema,
  ChatCompletionSchema,
  ModelListSchema,
  OpenAIErrorSchema,
} from '@magma-som/schemas';
import type { AskResponse, Mark } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import {
  expectNoInternals,
  metric,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { dataUrl, parseSse } from './sse.js';

// The OpenAI-compatible routes driven by the real `openai` package against a real server and
// the real tiny model. Greedy decoding is deterministic, so answers must equal tRPC `ask`'s.

const MARKS: Mark[] = [
  { label: 1, x1: 15, y1: 15, x2: 65, y2: 65 },
  { label: 2, x1: 90, y1: 40, x2: 150, y2: 110 },
];
const PROMPT = 'What color is object #1?';

let engine: Engine;
let running: RunningServer;
let png: Buffer;
let client: OpenAI;

beforeAll(async () => {
  // the prefix cache on, as the server's default: usage reports the cached prompt tokens
  engine = await startTestEngine({ prefixCacheBytes: 64 * 1024 * 1024 });
  running = await startTestServer(engine, { maxTokens: 16 });
  png = await testImage();
  client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
});

/** A chat request for the test image; `marks` rides along as an extra body field. */
function chatParams(extra: Record<string, unknown> = {}): ChatCompletionCreateParamsNonStreaming {
  return {
    model: engine.info.name,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: PROMPT },
          { type: 'image_url', image_url: { url: dataUrl(png) } },
        ],
      },
    ],
    max_tokens: 8,
    marks: MARKS,
    ...extra,
  } as ChatCompletionCreateParamsNonStreaming;
}

async function trpcAsk(marks: Mark[] = MARKS): Promise<AskResponse> {
  const response = await postTrpc(running.url, 'ask', {
    image: png.toString('base64'),
    prompt: PROMPT,
    marks,
    options: { maxTokens: 8 },
  });
  const body = (await response.json()) as { result: { data: unknown } };
  return AskResponseSchema.parse(body.result.data);
}

describe('openai package against /v1', () => {
  it('models.list and models.retrieve name the served model', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models.map((m) => m.id)).toEqual([engine.info.name]);
    expect(
      ModelListSchema.parse(await (await fetch(`${running.url}/v1/models`)).json()).data,
    ).toHaveLength(1);
    expect((await client.models.retrieve(engine.info.name)).id).toBe(engine.info.name);
    await expect(client.models.retrieve('gpt-4o')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('chat.completions.create answers as ask does, with usage and the magma extension', async () => {
    const expected = await trpcAsk();
    const completion = await client.chat.completions.create(chatParams());
    const parsed = ChatCompletionSchema.parse(completion);
    expect(parsed.choices[0]!.message.content).toBe(expected.answer);
    expect(parsed.choices[0]!.finish_reason).toBe(
      expected.finishReason === 'length' ? 'length' : 'stop',
    );
    expect(parsed.usage).toEqual({
      prompt_tokens: expected.usage.promptTokens,
      completion_tokens: expected.usage.completionTokens,
      total_tokens: expected.usage.totalTokens,
      prompt_tokens_details: { cached_tokens: parsed.magma.usage.cachedTokens },
    });
    // The same image and marks were just asked through tRPC: the prefix comes from the cache.
    expect(parsed.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(parsed.model).toBe(engine.info.name);
    expect(parsed.magma.references).toEqual(expected.references);
    expect(parsed.id).toBe(`chatcmpl-${parsed.magma.requestId}`);
    expect(parsed.magma.timings.totalMs).toBeGreaterThan(0);
  });

  it('marks change what the model sees: without marks the image is used as it is', async () => {
    const unmarked = await trpcAsk([]);
    const completion = await client.chat.completions.create(chatParams({ marks: undefined }));
    expect(completion.choices[0]!.message.content).toBe(unmarked.answer);
  });

  it('streams chunks whose text joins to the same answer, usage last, then [DONE]', async () => {
    const expected = await trpcAsk();
    const stream = await client.chat.completions.create({
      ...chatParams(),
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(ChatCompletionChunkSchema.parse(chunk));
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(expected.answer);
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage?.completion_tokens).toBe(expected.usage.completionTokens);
    const finish = chunks.at(-2)!;
    expect(finish.choices[0]!.finish_reason).not.toBeNull();
    expect(finish.magma?.references).toEqual(expected.references);
  });

  it('the raw stream is OpenAI SSE ending with data: [DONE]', async () => {
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...chatParams(), stream: true }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSse(await response.text());
    expect(events.at(-1)!.data).toBe('[DONE]');
    for (const event of events.slice(0, -1))
      ChatCompletionChunkSchema.parse(JSON.parse(event.data));
    // Without include_usage no chunk carries usage.
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data) as object);
    expect(chunks.some((chunk) => 'usage' in chunk)).toBe(false);
  });

  it('sampling options map to the ask options (seeded sampling repeats itself)', async () => {
    const params = chatParams({ temperature: 1.2, top_p: 0.9, seed: 42, stop: ['\n'] });
    const a = await client.chat.completions.create(params);
    const b = await client.chat.completions.create(params);
    expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content);
    expect(a.choices[0]!.message.content).not.toContain('\n');
  });

  it('counts the calls in /metrics', async () => {
    const before = await metric(
      running.url,
      'magma_procedure_calls_total{procedure="openai.chat",status="ok"}',
    );
    await client.chat.completions.create(chatParams({ max_tokens: 2 }));
    const after = await metric(
      running.url,
      'magma_procedure_calls_total{procedure="openai.chat",status="ok"}',
    );
    expect(after).toBe(before + 1);
  });
});

describe('errors in OpenAI shape', () => {
  it('a mark outside the image: 400 INVALID_MARKS naming marks[0]', async () => {
    const error = await client.chat.completions
      .create(chatParams({ marks: [{ label: 1, x1: 10, y1: 10, x2: 900, y2: 50 }] }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    const apiError = error as InstanceType<typeof OpenAI.BadRequestError>;
    expect(apiError.status).toBe(400);
    expect(apiError.code).toBe('INVALID_MARKS');
    expect(apiError.param).toBe('marks[0]');
    expect(apiError.type).toBe('invalid_request_error');
  });

  it('remote image URLs are refused (SSRF) with the image part as param', async () => {
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: engine.info.name,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: PROMPT },
              { type: 'image_url', image_url: { url: 'http://169.254.169.254/latest/meta-data' } },
            ],
          },
        ],
      }),
    });
    expect(response.status).toBe(400);
    const text = await response.text();
    const body = OpenAIErrorSchema.parse(JSON.parse(text));
    expect(body.error.param).toBe('messages[0].content[1].image_url.url');
    expect(body.error.code).toBe('INVALID_INPUT');
    expect(body.error.message).toMatch(/data URL/);
    expect(body.error.request_id).toBe(response.headers.get('x-request-id'));
    expectNoInternals(text);
  });

  it('system prompts and earlier turns are refused with the reason', async () => {
    const error = (await client.chat.completions
      .create({
        ...chatParams(),
        messages: [{ role: 'system', content: 'Be brief.' }, ...chatParams().messages],
      })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error.status).toBe(400);
    expect(error.param).toBe('messages[0].role');
    expect(error.message).toMatch(/single|one user message/);
  });

  it('an unknown model is 404 naming the model param', async () => {
    const error = (await client.chat.completions
      .create(chatParams({ model: 'gpt-4o' }))
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.NotFoundError>;
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.param).toBe('model');
  });

  it('an undecodable image is 400 INVALID_IMAGE pointing at the image part', async () => {
    const params = chatParams();
    (
      params.messages[0]!.content as Array<{ type: string; image_url?: { url: string } }>
    )[1]!.image_url!.url =
      `data:image/png;base64,${Buffer.from('not an image at all').toString('base64')}`;
    const error = (await client.chat.completions
      .create(params)
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error.code).toBe('INVALID_IMAGE');
    expect(error.param).toBe('messages[0].content[1].image_url.url');
  });

  it('max_tokens above the server cap is refused naming max_tokens', async () => {
    const error = (await client.chat.completions
      .create(chatParams({ max_tokens: 17 }))
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error.status).toBe(400);
    expect(error.param).toBe('max_tokens');
  });
});

describe('auth and rate limits as for ask', () => {
  let limited: RunningServer;

  beforeAll(async () => {
    limited = await startTestServer(engine, {
      apiKeys: ['k-1'],
      rateLimitMax: 2,
      rateLimitWindowMs: 60_000,
    });
  });

  afterAll(async () => {
    await limited?.server.shutdown();
  });

  it('a wrong key is 401 authentication_error; the limit is 429 with Retry-After', async () => {
    const wrong = new OpenAI({ baseURL: `${limited.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    const denied = await wrong.models.list().catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((denied as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('UNAUTHORIZED');

    const right = new OpenAI({ baseURL: `${limited.url}/v1`, apiKey: 'k-1', maxRetries: 0 });
    await right.models.list();
    await right.models.list();
    const response = await fetch(`${limited.url}/v1/models`, {
      headers: { authorization: 'Bearer k-1' },
    });
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(response.headers.get('retry-after-ms'))).toBeGreaterThan(0);
    const body = OpenAIErrorSchema.parse(await response.json());
    expect(body.error).toMatchObject({ type: 'rate_limit_error', code: 'RATE_LIMITED' });
    const limitedError = await right.models.list().catch((e: unknown) => e);
    expect(limitedError).toBeInstanceOf(OpenAI.RateLimitError);
  });
});
