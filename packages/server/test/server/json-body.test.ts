import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { OFFLOAD_JSON_BYTES, useJsonBodyParser } from '../../src/http/json-body.js';
import { ImagePool } from '../../src/image-pool/pool.js';
import { askBody, postTrpc, startTestEngine, startTestServer } from './helpers.js';
import type { RunningServer } from './helpers.js';

// JSON bodies from OFFLOAD_JSON_BYTES on are parsed in the image pool's workers, so that an ask
// carrying a photo in base64 does not hold the event loop while its text is decoded and parsed.
// Small or large, a body gives the same value, and a bad one the same error, as Fastify's own
// parser would.

const pool = new ImagePool({ threads: 1, pixelBudget: 1_000_000 });
/** Byte lengths of the bodies the pool was asked to parse. */
const offloaded: number[] = [];
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  app = Fastify();
  useJsonBodyParser(app, {
    parseJson: (bytes) => {
      offloaded.push(bytes.byteLength);
      return pool.parseJson(bytes);
    },
  });
  app.post('/echo', (request) => ({ body: request.body }));
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await app?.close();
  await pool.close();
});

/** A JSON object text of exactly `bytes` bytes (UTF-8), with non-ASCII text and nesting. */
function jsonOfSize(bytes: number): string {
  const head =
    '{"prompt":"Qu\u2019est-ce que #1 ? \u{1F600}","marks":[{"label":1,"x1":0.5}],"pad":"';
  const tail = '"}';
  const fill = bytes - Buffer.byteLength(head) - Buffer.byteLength(tail);
  const text = head + 'A'.repeat(fill) + tail;
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

async function post(body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('the JSON body parser', () => {
  it('parses a body in a worker from OFFLOAD_JSON_BYTES on, and smaller ones inline, to the same value', async () => {
    for (const size of [OFFLOAD_JSON_BYTES - 1, OFFLOAD_JSON_BYTES, 4 * OFFLOAD_JSON_BYTES]) {
      offloaded.length = 0;
      const text = jsonOfSize(size);
      const { status, json } = await post(text);
      expect(status).toBe(200);
      expect(json['body']).toEqual(JSON.parse(text));
      expect(offloaded).toEqual(size >= OFFLOAD_JSON_BYTES ? [size] : []);
    }
  });

  it('refuses a bad body with the error Fastify gives, small or large', async () => {
    const large = 'x'.repeat(OFFLOAD_JSON_BYTES);
    const cases = [
      { body: '{"a": 1', large: `{"a": "${large}"`, code: 'FST_ERR_CTP_INVALID_JSON_BODY' },
      // the prototype-poisoning guard of Fastify's default parser
      {
        body: '{"__proto__": {"admin": true}}',
        large: `{"pad": "${large}", "__proto__": {"admin": true}}`,
        code: 'FST_ERR_CTP_INVALID_JSON_BODY',
      },
      {
        body: '{"constructor": {"prototype": {"admin": true}}}',
        large: `{"pad": "${large}", "constructor": {"prototype": {"admin": true}}}`,
        code: 'FST_ERR_CTP_INVALID_JSON_BODY',
      },
    ];
    for (const { body, large: largeBody, code } of cases) {
      offloaded.length = 0;
      const small = await post(body);
      const big = await post(largeBody);
      expect(small.status).toBe(400);
      expect(small.json['code']).toBe(code);
      expect(big.status).toBe(400);
      expect(big.json).toEqual(small.json);
      expect(offloaded).toEqual([Buffer.byteLength(largeBody)]);
    }
    const empty = await post('');
    expect(empty.status).toBe(400);
    expect(empty.json['code']).toBe('FST_ERR_CTP_EMPTY_JSON_BODY');
  });
});

describe('asks with a large body', () => {
  let engine: Engine;
  let running: RunningServer;
  let photo: Buffer;

  beforeAll(async () => {
    engine = await startTestEngine();
    running = await startTestServer(engine, { maxImageBytes: 4 * 1024 * 1024 });
    // noise does not compress: a JPEG whose base64 body is over the offload size
    photo = await sharp({
      create: {
        width: 480,
        height: 360,
        channels: 3,
        background: { r: 0, g: 0, b: 0 },
        noise: { type: 'gaussian', mean: 128, sigma: 50 },
      },
    })
      .jpeg({ quality: 90 })
      .toBuffer();
  }, 300_000);

  afterAll(async () => {
    await running?.server.shutdown();
    await engine?.close();
  });

  it('are answered through REST and tRPC alike', async () => {
    const body = JSON.stringify(
      askBody(photo, { options: { maxTokens: 4, temperature: 0 }, cache: false }),
    );
    expect(Buffer.byteLength(body)).toBeGreaterThan(OFFLOAD_JSON_BYTES);
    const rest = await fetch(`${running.url}/v1/som/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const restText = await rest.text();
    expect(rest.status, restText).toBe(200);
    const trpc = await postTrpc(running.url, 'ask', body);
    const trpcText = await trpc.text();
    expect(trpc.status, trpcText).toBe(200);
    const restAnswer = (JSON.parse(restText) as { answer: string }).answer;
    const trpcAnswer = (JSON.parse(trpcText) as { result: { data: { answer: string } } }).result
      .data.answer;
    expect(restAnswer.length).toBeGreaterThan(0);
    expect(trpcAnswer).toBe(restAnswer);
  });

  it('refuses a large tRPC body that is not JSON as it refuses a small one (tRPC\u2019s parse error)', async () => {
    const answers = [];
    for (const text of [`{"image": "AAAA"`, `{"image": "${'A'.repeat(OFFLOAD_JSON_BYTES)}"`]) {
      const response = await postTrpc(running.url, 'ask', text);
      const json = (await response.json()) as {
        error: { message: string; code: number; data: { code: string } };
      };
      const { message, code, data } = json.error;
      answers.push({ status: response.status, code, api: data.code, message });
    }
    expect(answers[0]).toMatchObject({ status: 400, api: 'INVALID_INPUT' });
    expect(answers[1]).toEqual(answers[0]);
  });
});
