import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ErrorDataSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/index.js';
import type { Engine } from '../../src/engine/index.js';
import type { ServingEngine } from '../../src/index.js';
import {
  MODEL_DIR,
  askBody,
  expectNoInternals,
  expectTrpcError,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from './helpers.js';
import type { RunningServer } from './helpers.js';

// Each error class, as the client sees it: HTTP status and ErrorData from ERROR_CATALOG.

let engine: Engine;
let open: RunningServer;
let guarded: RunningServer;
let png: Buffer;

const KEY = 'test-key-0123456789';
const MODEL_CONTEXT = (
  JSON.parse(readFileSync(join(MODEL_DIR, 'config.json'), 'utf8')) as {
    text_config: { max_position_embeddings: number };
  }
).text_config.max_position_embeddings;

beforeAll(async () => {
  engine = await startTestEngine();
  png = await testImage();
  [open, guarded] = await Promise.all([
    startTestServer(engine, {
      maxImageBytes: 64 * 1024,
      maxUploadBytes: 96 * 1024,
      maxImagePixels: 1_000_000,
    }),
    startTestServer(engine, {
      apiKeys: [KEY, 'other-key'],
      rateLimitMax: 3,
      rateLimitWindowMs: 60_000,
      corsOrigins: ['https://app.example'],
    }),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([open?.server.shutdown(), guarded?.server.shutdown()]);
  await engine?.close();
});

describe('400 INVALID_INPUT', () => {
  it('names every schema problem with its path', async () => {
    const response = await postTrpc(open.url, 'ask', {
      ...askBody(png),
      prompt: '',
      marks: [{ label: 1, x1: 50, y1: 10, x2: 20, y2: 40 }],
      options: { maxTokens: -3 },
    });
    const data = await expectTrpcError(response, 'INVALID_INPUT', 400);
    const paths = data.issues!.map((issue) => issue.path.join('.'));
    expect(paths).toContain('prompt');
    expect(paths).toContain('marks.0.x2');
    expect(paths).toContain('options.maxTokens');
    expect(data.requestId).toBe(response.headers.get('x-request-id'));
    expect(data.retryable).toBe(false);
  });

  it('refuses a body that is not JSON', async () => {
    const response = await postTrpc(open.url, 'ask', '{"image": "abc", ');
    await expectTrpcError(response, 'INVALID_INPUT', 400);
  });

  it('refuses unknown fields (strict schemas)', async () => {
    const response = await postTrpc(open.url, 'ask', { ...askBody(png), extra: 1 });
    const data = await expectTrpcError(response, 'INVALID_INPUT', 400);
    expect(data.issues!.length).toBeGreaterThan(0);
  });

  it('refuses an upload without its fields', async () => {
    const form = new FormData();
    form.set('image', new Blob([png]), 'a.png');
    const response = await fetch(`${open.url}/trpc/askUpload`, { method: 'POST', body: form });
    const data = await expectTrpcError(response, 'INVALID_INPUT', 400);
    expect(data.issues).toEqual([{ path: ['request'], message: expect.any(String) }]);
  });

  it('refuses upload fields that break the schema, with paths under request', async () => {
    const form = new FormData();
    form.set('image', new Blob([png]), 'a.png');
    form.set('request', JSON.stringify({ prompt: 'hi', marks: [{ label: -1 }] }));
    const response = await fetch(`${open.url}/trpc/askUpload`, { method: 'POST', body: form });
    const data = await expectTrpcError(response, 'INVALID_INPUT', 400);
    expect(data.issues!.every((issue) => issue.path[0] === 'request')).toBe(true);
  });
});

describe('400 INVALID_IMAGE and INVALID_MARKS', () => {
  it('refuses bytes that are not an image', async () => {
    const response = await postTrpc(open.url, 'ask', {
      ...askBody(png),
      image: Buffer.from('definitely not a png file').toString('base64'),
    });
    await expectTrpcError(response, 'INVALID_IMAGE', 400);
  });

  it('refuses a truncated PNG', async () => {
    const response = await postTrpc(open.url, 'ask', askBody(png.subarray(0, 60)));
    await expectTrpcError(response, 'INVALID_IMAGE', 400);
  });

  it('names the mark that lies outside the image', async () => {
    const response = await postTrpc(open.url, 'ask', {
      ...askBody(png),
      marks: [
        { label: 1, x1: 10, y1: 10, x2: 50, y2: 50 },
        { label: 7, x1: 100, y1: 80, x2: 170, y2: 110 },
      ],
    });
    const data = await expectTrpcError(response, 'INVALID_MARKS', 400);
    expect(data.message).toContain('mark 7');
    expect(data.issues).toEqual([
      { path: ['marks', 1], message: expect.stringContaining('mark 7') },
    ]);
  });
});

describe('413 PAYLOAD_TOO_LARGE', () => {
  it('refuses an image over maxImageBytes on the JSON path', async () => {
    // Noise does not compress: about 270 KB of PNG.
    const big = await sharp(randomBytes(300 * 300 * 3), {
      raw: { width: 300, height: 300, channels: 3 },
    })
      .png()
      .toBuffer();
    expect(big.length).toBeGreaterThan(64 * 1024);
    const response = await postTrpc(open.url, 'ask', askBody(big));
    await expectTrpcError(response, 'PAYLOAD_TOO_LARGE', 413);
  });

  it('refuses a JSON body over the body limit, tRPC-shaped', async () => {
    const response = await postTrpc(open.url, 'ask', {
      ...askBody(png),
      image: 'A'.repeat(4 * 1024 * 1024),
    });
    await expectTrpcError(response, 'PAYLOAD_TOO_LARGE', 413);
  });

  it('refuses an upload over maxUploadBytes', async () => {
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(200 * 1024)]), 'big.png');
    form.set('request', JSON.stringify({ prompt: 'hi' }));
    const response = await fetch(`${open.url}/trpc/askUpload`, { method: 'POST', body: form });
    await expectTrpcError(response, 'PAYLOAD_TOO_LARGE', 413);
  });

  it('refuses an image with more pixels than maxImagePixels before decoding it', async () => {
    const wide = await sharp({
      create: { width: 2000, height: 1000, channels: 3, background: { r: 1, g: 2, b: 3 } },
    })
      .png()
      .toBuffer();
    const response = await postTrpc(open.url, 'ask', askBody(wide));
    const data = await expectTrpcError(response, 'PAYLOAD_TOO_LARGE', 413);
    expect(data.message).toContain('pixels');
  });
});

describe('404 NOT_FOUND', () => {
  it('for an unknown procedure, tRPC-shaped', async () => {
    const response = await postTrpc(open.url, 'nope', {});
    await expectTrpcError(response, 'NOT_FOUND', 404);
  });

  it('for an unknown route, as ErrorData', async () => {
    const response = await fetch(`${open.url}/nowhere?x=1`);
    expect(response.status).toBe(404);
    const data = ErrorDataSchema.parse(await response.json());
    expect(data).toMatchObject({ code: 'NOT_FOUND', httpStatus: 404, retryable: false });
    expect(data.requestId).toBe(response.headers.get('x-request-id'));
  });
});

describe('401 UNAUTHORIZED', () => {
  it('refuses a missing key and a wrong key', async () => {
    await expectTrpcError(await fetch(`${guarded.url}/trpc/info`), 'UNAUTHORIZED', 401);
    await expectTrpcError(
      await fetch(`${guarded.url}/trpc/info`, { headers: { authorization: `Bearer ${KEY}x` } }),
      'UNAUTHORIZED',
      401,
    );
    await expectTrpcError(
      await postTrpc(guarded.url, 'ask', askBody(png), { headers: { 'x-api-key': 'short' } }),
      'UNAUTHORIZED',
      401,
    );
  });

  it('accepts the key as a Bearer token or as x-api-key', async () => {
    const bearer = await fetch(`${guarded.url}/trpc/info`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(bearer.status).toBe(200);
    const header = await postTrpc(guarded.url, 'ask', askBody(png), {
      headers: { 'x-api-key': 'other-key' },
    });
    expect(header.status).toBe(200);
  });

  it('leaves /health, /ready and /metrics open', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      expect((await fetch(`${guarded.url}${path}`)).status).toBe(200);
    }
  });
});

describe('429 RATE_LIMITED', () => {
  it('limits each key separately and says when to retry', async () => {
    const headers = { authorization: 'Bearer other-key' };
    // This key already made one call above; the limit is 3 per window.
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${guarded.url}/trpc/info`, { headers });
      statuses.push(response.status);
      if (response.status === 429) limited = response;
      else await response.body?.cancel();
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    const retryAfter = Number(limited!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const data = await expectTrpcError(limited!, 'RATE_LIMITED', 429);
    expect(data.retryable).toBe(true);
    expect(data.retryAfterMs).toBeGreaterThan(0);
    expect(Math.ceil(data.retryAfterMs! / 1000)).toBe(retryAfter);

    // Another key still has its own budget.
    const other = await fetch(`${guarded.url}/trpc/info`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(other.status).toBe(200);
  });
});

describe('engine faults', () => {
  // Only a small-context model can be overflowed by a prompt within the 4000-character limit.
  it.runIf(MODEL_CONTEXT <= 2048)(
    'a request longer than the model context is INVALID_INPUT',
    async () => {
      const response = await postTrpc(open.url, 'ask', {
        ...askBody(png),
        prompt: 'Describe #1 in detail. '.repeat(170),
      });
      const data = await expectTrpcError(response, 'INVALID_INPUT', 400);
      expect(data.message.length).toBeGreaterThan(0);
    },
  );

  it('an inference failure is a retryable 500 with a fixed message; other faults are INTERNAL', async () => {
    // A crashing onnxruntime cannot be caused on purpose: this engine fails the way one would.
    const failures = [
      new EngineError('INFERENCE_FAILED', 'onnxruntime: /work/models/x.onnx: node Add_3 failed'),
      new Error('ENOENT: /srv/secret/path'),
    ];
    const faulty: ServingEngine = {
      info: engine.info,
      warmup: async () => {},
      close: async () => {},
      generate: async () => {
        throw failures.shift();
      },
    };
    const broken = await startTestServer(faulty);
    try {
      const first = await expectTrpcError(
        await postTrpc(broken.url, 'ask', askBody(png)),
        'INFERENCE_FAILED',
        500,
      );
      expect(first.retryable).toBe(true);
      expect(first.message).not.toContain('onnx');
      const second = await expectTrpcError(
        await postTrpc(broken.url, 'ask', askBody(png)),
        'INTERNAL',
        500,
      );
      expect(second.message).toBe('internal server error');
    } finally {
      await broken.server.shutdown();
    }
  });
});

describe('CORS', () => {
  const preflight = (origin: string) =>
    fetch(`${guarded.url}/trpc/ask`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization',
      },
    });

  it('allows origins on the allow-list, without needing a key for the preflight', async () => {
    const response = await preflight('https://app.example');
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });

  it('gives other origins no CORS headers', async () => {
    const response = await preflight('https://evil.example');
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('no internals leak', () => {
  it('error bodies carry no stack traces or paths', async () => {
    const responses = await Promise.all([
      postTrpc(open.url, 'ask', askBody(Buffer.from('GIF89a garbage'))),
      postTrpc(open.url, 'ask', 'not json'),
      fetch(`${open.url}/trpc/ask`),
    ]);
    for (const response of responses) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expectNoInternals(await response.text());
    }
  });
});
