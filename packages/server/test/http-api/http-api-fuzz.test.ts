import { ErrorDataSchema, OpenAIErrorSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import {
  askBody,
  expectNoInternals,
  startTestEngine,
  startTestServer,
  testImage,
} from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';
import { DEFAULT_MODEL_ID } from '../../src/openapi/document.js';
import { dataUrl } from './sse.js';

// Bad input on the OpenAI-compatible and REST routes: always a typed 4xx in the route's error
// shape, never a 5xx, a crash or a hang; the server keeps answering afterwards. Real server,
// real tiny model.

// Cases are built when the file is collected, before beforeAll: their inputs exist by then.
const png = await testImage();
const model = DEFAULT_MODEL_ID;
let engine: Engine;
let running: RunningServer;

beforeAll(async () => {
  engine = await startTestEngine();
  // Small image limits, so "too large" is cheap to send.
  running = await startTestServer(engine, {
    maxTokens: 8,
    maxImageBytes: 64 * 1024,
    maxUploadBytes: 64 * 1024,
  });
  expect(engine.info.name).toBe(model);
}, 180_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
});

interface Case {
  readonly name: string;
  readonly body: string | FormData | Buffer;
  readonly contentType?: string;
  readonly status: number;
  readonly code?: string;
}

const json = (value: unknown): string => JSON.stringify(value);

function chat(overrides: Record<string, unknown> = {}, content: unknown = undefined): string {
  return json({
    model,
    messages: [
      {
        role: 'user',
        content:
          content !== undefined
            ? content
            : [
                { type: 'text', text: 'What is #1?' },
                { type: 'image_url', image_url: { url: dataUrl(png) } },
              ],
      },
    ],
    marks: [{ label: 1, x1: 15, y1: 15, x2: 65, y2: 65 }],
    max_tokens: 4,
    ...overrides,
  });
}

const text = { type: 'text', text: 'What is #1?' };
const image = (url: string) => ({ type: 'image_url', image_url: { url } });

function chatCases(): Case[] {
  const bad = (name: string, body: string, code = 'INVALID_INPUT', status = 400): Case => ({
    name,
    body,
    status,
    code,
  });
  return [
    bad('not JSON', '{"model":'),
    bad('empty object', '{}'),
    bad('array body', '[]'),
    bad('null body', 'null'),
    bad('string body', '"hello"'),
    bad('no messages', chat({ messages: [] })),
    bad('messages not an array', chat({ messages: 'hi' })),
    bad('unknown role', chat({ messages: [{ role: 'robot', content: 'x' }] })),
    bad('content null', chat({}, null)),
    bad('text only', chat({}, 'What is #1?')),
    bad('no image part', chat({}, [text])),
    bad('two images', chat({}, [text, image(dataUrl(png)), image(dataUrl(png))])),
    bad('unknown part type', chat({}, [text, { type: 'input_audio', input_audio: {} }])),
    bad('image_url without url', chat({}, [text, { type: 'image_url', image_url: {} }])),
    bad('http image URL', chat({}, [text, image('http://127.0.0.1:8080/health')])),
    bad('https image URL', chat({}, [text, image('https://example.com/a.png')])),
    bad('file URL', chat({}, [text, image('file:///etc/passwd')])),
    bad('javascript URL', chat({}, [text, image('javascript:alert(1)')])),
    bad(
      'data URL of text',
      chat({}, [text, image('data:text/plain;base64,aGVsbG8=')]),
      'INVALID_IMAGE',
    ),
    bad(
      'data URL bad base64',
      chat({}, [text, image('data:image/png;base64,@@@@')]),
      'INVALID_IMAGE',
    ),
    bad(
      'data URL of garbage',
      chat({}, [text, image(`data:image/png;base64,${Buffer.from('nope').toString('base64')}`)]),
      'INVALID_IMAGE',
    ),
    bad('empty question', chat({}, [{ type: 'text', text: '   ' }, image(dataUrl(png))])),
    bad(
      'question too long',
      chat({}, [{ type: 'text', text: 'x'.repeat(5000) }, image(dataUrl(png))]),
    ),
    bad(
      'system message',
      chat({
        messages: [
          { role: 'system', content: 'hi' },
          { role: 'user', content: [text, image(dataUrl(png))] },
        ],
      }),
    ),
    bad(
      'two user turns',
      chat({
        messages: [
          { role: 'user', content: [text, image(dataUrl(png))] },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: [text, image(dataUrl(png))] },
        ],
      }),
    ),
    bad(
      'missing model',
      json({ messages: [{ role: 'user', content: [text, image(dataUrl(png))] }] }),
    ),
    bad('unknown model', chat({ model: 'gpt-4o' }), 'NOT_FOUND', 404),
    bad('model a number', chat({ model: 7 })),
    bad('max_tokens 0', chat({ max_tokens: 0 })),
    bad('max_tokens negative', chat({ max_tokens: -5 })),
    bad('max_tokens fractional', chat({ max_tokens: 1.5 })),
    bad('max_tokens a string', chat({ max_tokens: '8' })),
    bad('max_tokens huge', chat({ max_tokens: 1e12 })),
    bad('max_completion_tokens over the cap', chat({ max_completion_tokens: 9 })),
    bad('temperature 5', chat({ temperature: 5 })),
    bad('top_p 0', chat({ top_p: 0 })),
    bad('seed negative', chat({ seed: -1 })),
    bad('five stops', chat({ stop: ['a', 'b', 'c', 'd', 'e'] })),
    bad('empty stop', chat({ stop: '' })),
    bad('n 2', chat({ n: 2 })),
    bad('stream not boolean', chat({ stream: 'yes' })),
    bad('tools', chat({ tools: [{ type: 'function', function: { name: 'f' } }] })),
    bad('response_format', chat({ response_format: { type: 'json_object' } })),
    bad('marks not an array', chat({ marks: { label: 1 } })),
    bad(
      'duplicate labels',
      chat({
        marks: [
          { label: 1, x1: 1, y1: 1, x2: 9, y2: 9 },
          { label: 1, x1: 2, y1: 2, x2: 9, y2: 9 },
        ],
      }),
    ),
    bad('inverted mark', chat({ marks: [{ label: 1, x1: 50, y1: 1, x2: 9, y2: 9 }] })),
    bad('NaN-ish coordinate', chat({ marks: [{ label: 1, x1: '1', y1: 1, x2: 9, y2: 9 }] })),
    bad(
      'mark outside the image',
      chat({ marks: [{ label: 1, x1: 1, y1: 1, x2: 9999, y2: 9 }] }),
      'INVALID_MARKS',
    ),
    bad(
      '65 marks',
      chat({
        marks: Array.from({ length: 65 }, (_, i) => ({ label: i, x1: 0, y1: 0, x2: 5, y2: 5 })),
      }),
    ),
    bad('magma option unknown', chat({ magma: { colour: 'red' } })),
    bad('__proto__ key', '{"model":"x","__proto__":{"admin":true},"messages":[]}'),
    {
      name: 'text/plain body',
      body: chat(),
      contentType: 'text/plain',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'body over the limit',
      body: chat({ user: 'x'.repeat(2 * 1024 * 1024) }),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    },
    {
      name: 'image over the byte limit',
      body: chat({}, [
        text,
        image(`data:image/png;base64,${Buffer.alloc(70 * 1024).toString('base64')}`),
      ]),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    },
  ];
}

function restCases(): Case[] {
  const bad = (name: string, body: string, code = 'INVALID_INPUT', status = 400): Case => ({
    name,
    body,
    status,
    code,
  });
  const ask = (extra: Record<string, unknown>) => json({ ...askBody(png), ...extra });
  const formOf = (fields: Record<string, string>, file?: Blob): FormData => {
    const form = new FormData();
    if (file) form.append('image', file, 'x.png');
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return form;
  };
  const pngBlob = new Blob([new Uint8Array(png)]);
  return [
    bad('not JSON', '{"image":'),
    bad('array body', '[1,2]'),
    bad('missing image', json({ prompt: 'What is #1?' })),
    bad('image not base64', ask({ image: '%%%' }), 'INVALID_INPUT'),
    bad(
      'image of garbage',
      ask({ image: Buffer.from('garbage!').toString('base64') }),
      'INVALID_IMAGE',
    ),
    bad('unknown field', ask({ colour: 'red' })),
    bad('options wrong type', ask({ options: 'fast' })),
    bad(
      'mark outside',
      ask({ marks: [{ label: 1, x1: 0, y1: 0, x2: 5000, y2: 5 }] }),
      'INVALID_MARKS',
    ),
    {
      name: 'multipart without boundary',
      body: '--x\r\n',
      contentType: 'multipart/form-data',
      status: 400,
      code: 'INVALID_INPUT',
    },
    {
      name: 'multipart with a wrong boundary',
      body: '--a\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi\r\n--a--\r\n',
      contentType: 'multipart/form-data; boundary=b',
      status: 400,
      code: 'INVALID_INPUT',
    },
    {
      name: 'multipart garbage image',
      body: formOf({ prompt: 'What is #1?' }, new Blob(['not an image'])),
      status: 400,
      code: 'INVALID_IMAGE',
    },
    {
      name: 'multipart empty image',
      body: formOf({ prompt: 'What is #1?' }, new Blob([])),
      status: 400,
      code: 'INVALID_IMAGE',
    },
    { name: 'multipart no prompt', body: formOf({}, pngBlob), status: 400, code: 'INVALID_INPUT' },
    {
      name: 'multipart options not an object',
      body: formOf({ prompt: 'x', options: '7' }, pngBlob),
      status: 400,
      code: 'INVALID_INPUT',
    },
    {
      name: 'multipart over the upload limit',
      body: formOf({ prompt: 'x' }, new Blob([Buffer.alloc(2 * 1024 * 1024)])),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    },
    {
      name: 'octet-stream body',
      body: Buffer.from(png),
      contentType: 'application/octet-stream',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
  ];
}

async function send(path: string, c: Case): Promise<Response> {
  const headers: Record<string, string> = {};
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  else if (typeof c.body === 'string') headers['content-type'] = 'application/json';
  return fetch(`${running.url}${path}`, {
    method: 'POST',
    headers,
    body: c.body instanceof Buffer ? new Uint8Array(c.body) : c.body,
    signal: AbortSignal.timeout(60_000),
  });
}

describe.each(['/v1/chat/completions', '/v1/chat/completions?stream'])('%s', (route) => {
  const path = '/v1/chat/completions';
  const streamed = route.endsWith('?stream');
  it.each(chatCases())('$name: $status $code in OpenAI shape', async (c) => {
    // The same cases with stream: true must fail the same way, before any event.
    const body =
      streamed &&
      typeof c.body === 'string' &&
      c.body.startsWith('{"model"') &&
      !c.body.includes('__proto__')
        ? c.body.replace(/^\{/, '{"stream":true,')
        : c.body;
    const response = await send(path, { ...c, body });
    const textBody = await response.text();
    expect(response.status, textBody).toBe(c.status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const error = OpenAIErrorSchema.parse(JSON.parse(textBody));
    if (c.code !== undefined) expect(error.error.code).toBe(c.code);
    expect(error.error.request_id).toBe(response.headers.get('x-request-id'));
    expectNoInternals(textBody);
  });
});

describe.each(['/v1/som/ask', '/v1/som/ask/stream'])('%s', (path) => {
  it.each(restCases())('$name: $status $code as ErrorData', async (c) => {
    const response = await send(path, c);
    const textBody = await response.text();
    expect(response.status, textBody).toBe(c.status);
    const data = ErrorDataSchema.parse(JSON.parse(textBody));
    if (c.code !== undefined) expect(data.code).toBe(c.code);
    expect(data.httpStatus).toBe(c.status);
    expectNoInternals(textBody);
  });
});

describe('methods and paths', () => {
  it.each([
    ['GET', '/v1/chat/completions', 405, 'POST'],
    ['PUT', '/v1/chat/completions', 405, 'POST'],
    ['DELETE', '/v1/models', 405, 'GET, HEAD'],
    ['PATCH', '/v1/som/ask', 405, 'POST'],
    ['POST', '/v1/models', 405, 'GET, HEAD'],
    ['GET', '/v1/som/ask', 405, 'POST'],
    ['GET', '/v1/som/ask/stream', 405, 'POST'],
    ['GET', '/v1/completions', 404, undefined],
    ['POST', '/v1/embeddings', 404, undefined],
    ['GET', '/v1/som/nothing', 404, undefined],
  ])('%s %s: %i', async (method, path, status, allow) => {
    const response = await fetch(`${running.url}${path}`, { method });
    const textBody = await response.text();
    expect(response.status, textBody).toBe(status);
    if (allow !== undefined) expect(response.headers.get('allow')).toBe(allow);
    const body = JSON.parse(textBody) as unknown;
    if (path.startsWith('/v1/som')) ErrorDataSchema.parse(body);
    else OpenAIErrorSchema.parse(body);
  });

  it('still answers after all of it', async () => {
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chat(),
    });
    expect(response.status).toBe(200);
    expect((await fetch(`${running.url}/health`)).status).toBe(200);
  });
});
