import { deflateSync, crc32 } from 'node:zlib';
import { ErrorDataSchema } from '@magma-som/schemas';
import type { ErrorData } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import {
  askBody,
  expectNoInternals,
  postTrpc,
  startTestEngine,
  startTestServer,
  testImage,
} from './helpers.js';
import type { RunningServer } from './helpers.js';

// Hundreds of malformed requests: every one must get a 4xx with a typed error, and the
// server must answer a good request correctly afterwards.

let engine: Engine;
let running: RunningServer;
let url: string;
const images: Record<'png' | 'jpeg' | 'webp' | 'gif', Buffer> = {} as never;

beforeAll(async () => {
  engine = await startTestEngine();
  running = await startTestServer(engine, {
    maxImageBytes: 512 * 1024,
    maxUploadBytes: 512 * 1024,
    maxImagePixels: 4_000_000,
    rateLimitMax: 0,
  });
  url = running.url;
  for (const format of ['png', 'jpeg', 'webp', 'gif'] as const) {
    images[format] = await testImage(96, 80, format);
  }
}, 120_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
});

interface Case {
  readonly name: string;
  send(): Promise<Response>;
}

/** A deterministic PRNG, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A tiny, valid-looking PNG that declares a huge size: a decompression bomb's header. */
function pngBomb(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.writeUInt8(1, 8); // bit depth 1
  header.writeUInt8(0, 9); // greyscale
  const rows = deflateSync(Buffer.alloc(Math.min(height, 1024) * (Math.ceil(width / 8) + 1)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', rows),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The classic 35-byte GIF with its screen and its one frame claiming 65535 x 65535. */
function gifBomb(): Buffer {
  const gif = Buffer.from(
    '47494638396101000100800000000000ffffff2c00000000010001000002024401003b',
    'hex',
  );
  for (const offset of [6, 8, 24, 26]) gif.writeUInt16LE(65535, offset);
  return gif;
}

const MAGIC: Record<string, Buffer> = {
  png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
  gif: Buffer.from('GIF89a', 'latin1'),
  webp: Buffer.concat([
    Buffer.from('RIFF', 'latin1'),
    Buffer.from([0, 1, 0, 0]),
    Buffer.from('WEBPVP8 ', 'latin1'),
  ]),
};

function imageCase(
  name: string,
  image: string | Buffer,
  extra: Record<string, unknown> = {},
): Case {
  const value = typeof image === 'string' ? image : image.toString('base64');
  return {
    name,
    send: () => postTrpc(url, 'ask', { ...askBody(Buffer.alloc(0)), image: value, ...extra }),
  };
}

function bodyCase(
  name: string,
  body: unknown,
  procedure = 'ask',
  headers?: Record<string, string>,
): Case {
  return { name, send: () => postTrpc(url, procedure, body, { headers }) };
}

function uploadCase(name: string, build: () => FormData | Blob, contentType?: string): Case {
  return {
    name,
    send: () =>
      fetch(`${url}/trpc/askUpload`, {
        method: 'POST',
        body: build(),
        ...(contentType ? { headers: { 'content-type': contentType } } : {}),
      }),
  };
}

function cases(): Case[] {
  const random = rng(20261121);
  const list: Case[] = [];
  const good = askBody(images.png);

  // Truncated images of every format, at many lengths.
  for (const [format, bytes] of Object.entries(images)) {
    for (const fraction of [0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 0.97]) {
      const cut = Math.max(1, Math.floor(bytes.length * fraction));
      list.push(imageCase(`truncated ${format} at ${cut}/${bytes.length}`, bytes.subarray(0, cut)));
    }
  }
  // Right magic bytes, random rest.
  for (const [format, magic] of Object.entries(MAGIC)) {
    for (let i = 0; i < 8; i++) {
      const junk = Buffer.from(
        Array.from({ length: 16 + Math.floor(random() * 400) }, () => Math.floor(random() * 256)),
      );
      list.push(imageCase(`${format} magic + junk #${i}`, Buffer.concat([magic, junk])));
    }
  }
  // Valid images with their headers corrupted.
  for (const [format, bytes] of Object.entries(images)) {
    for (let i = 0; i < 6; i++) {
      const copy = Buffer.from(bytes);
      const start = format === 'png' ? 8 : 2;
      for (let k = 0; k < 8; k++)
        copy[start + Math.floor(random() * 24)] = Math.floor(random() * 256);
      list.push(imageCase(`${format} corrupt header #${i}`, copy));
    }
  }
  // Decompression bombs: tiny files, huge declared sizes.
  for (const [w, h] of [
    [20000, 20000],
    [100000, 100],
    [65535, 65535],
    [4000, 4000],
    [2001, 2000],
    [1, 10_000_000],
    [300000, 1],
  ]) {
    list.push(imageCase(`png bomb ${w}x${h}`, pngBomb(w!, h!)));
  }
  list.push(imageCase('gif bomb 65535x65535', gifBomb()));
  // Not images at all.
  for (const text of [
    'hello',
    '<svg xmlns="http://www.w3.org/2000/svg"/>',
    '%PDF-1.4',
    'BM\x00\x00',
    '\x00\x00\x00\x0cjP  ',
    'II*\x00',
  ]) {
    list.push(
      imageCase(`not an image: ${JSON.stringify(text.slice(0, 12))}`, Buffer.from(text, 'latin1')),
    );
  }
  // Bad base64 and data URLs.
  for (const image of [
    '',
    '!!!!',
    'abc',
    'a',
    '====',
    'A===',
    'QUJD\u0000',
    'data:',
    'data:image/png;base64,',
    'data:image/png;base64,@@@@',
    'data:text/plain;base64,QUJD',
    'data:image/svg+xml;base64,QUJD',
    'data:image/png,QUJD',
    'data:;base64,QUJD',
    ' ',
    'QU JD ==x',
    '😀😀😀😀',
  ]) {
    list.push(imageCase(`bad image string ${JSON.stringify(image.slice(0, 16))}`, image));
  }
  // Wrong types in every field.
  const wrongValues: unknown[] = [null, 0, -1, 1.5, true, 'x', [], {}, [1, 2], { a: 1 }];
  for (const field of [
    'image',
    'prompt',
    'marks',
    'options',
    'returnMarkedImage',
    'markedImageFormat',
  ]) {
    for (const value of wrongValues) {
      const valid =
        (field === 'returnMarkedImage' && typeof value === 'boolean') ||
        (field === 'marks' && Array.isArray(value) && value.length === 0) ||
        (field === 'options' &&
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.keys(value).length === 0) ||
        (field === 'prompt' && value === 'x');
      if (!valid)
        list.push(bodyCase(`${field} = ${JSON.stringify(value)}`, { ...good, [field]: value }));
    }
  }
  for (const [option, value] of [
    ['maxTokens', 0],
    ['maxTokens', 1e9],
    ['maxTokens', '5'],
    ['maxTokens', 2.5],
    ['temperature', -1],
    ['temperature', 'hot'],
    ['temperature', 99],
    ['topP', 0],
    ['topP', 2],
    ['seed', -5],
    ['seed', 2 ** 40],
    ['stop', 'x'],
    ['stop', ['']],
    ['stop', ['a', 'b', 'c', 'd', 'e']],
    ['stop', ['x'.repeat(1000)]],
    ['suppressActionTokens', 'no'],
    ['unknown', 1],
  ] as const) {
    list.push(
      bodyCase(`options.${option} = ${JSON.stringify(value).slice(0, 20)}`, {
        ...good,
        options: { [option]: value },
      }),
    );
  }
  // NaN-like and absurd coordinates (JSON has no NaN: null, strings, overflowing numbers).
  const coordinates: unknown[] = [
    null,
    'NaN',
    'Infinity',
    '-Infinity',
    '12',
    -1,
    -0.5,
    1e300,
    1e308,
    5e-324 * -1,
    true,
    [],
    {},
  ];
  for (const key of ['x1', 'y1', 'x2', 'y2']) {
    for (const value of coordinates) {
      const mark = { label: 1, x1: 10, y1: 10, x2: 50, y2: 50, [key]: value };
      list.push(bodyCase(`mark ${key} = ${JSON.stringify(value)}`, { ...good, marks: [mark] }));
    }
  }
  // Literal overflowing numbers: JSON.parse turns 1e999 into Infinity.
  list.push(bodyCase('x2 = 1e999 literal', JSON.stringify(good).replace('"x2":65', '"x2":1e999')));
  list.push(
    bodyCase('label = -1e999 literal', JSON.stringify(good).replace('"label":1', '"label":-1e999')),
  );
  for (const marks of [
    [
      { label: 1, x1: 10, y1: 10, x2: 50, y2: 50 },
      { label: 1, x1: 1, y1: 1, x2: 5, y2: 5 },
    ],
    [{ label: 1.5, x1: 10, y1: 10, x2: 50, y2: 50 }],
    [{ label: 5000, x1: 10, y1: 10, x2: 50, y2: 50 }],
    [{ label: 1, x1: 10, y1: 10, x2: 50, y2: 50, style: { color: 'red' } }],
    [{ label: 1, x1: 10, y1: 10, x2: 500, y2: 50 }],
    [{ label: 1, x1: 10, y1: 10, x2: 50, y2: 81 }],
    [{ label: 1, x1: 10, y1: 10, x2: 10, y2: 50 }],
    Array.from({ length: 65 }, (_, i) => ({ label: i, x1: 0, y1: 0, x2: 1, y2: 1 })),
  ]) {
    list.push(bodyCase(`marks ${JSON.stringify(marks).slice(0, 40)}`, { ...good, marks }));
  }
  // Huge strings.
  list.push(bodyCase('prompt of 100k chars', { ...good, prompt: 'why '.repeat(25_000) }));
  list.push(bodyCase('prompt of spaces', { ...good, prompt: ' \n\t  ' }));
  list.push(bodyCase('image of 2M A', { ...good, image: 'A'.repeat(2_000_000) }));
  list.push(
    bodyCase('image of 3M chars, over the body limit', { ...good, image: 'QUJD'.repeat(750_000) }),
  );
  list.push(
    bodyCase('1000 stop strings', {
      ...good,
      options: { stop: Array.from({ length: 1000 }, () => 'x') },
    }),
  );
  list.push(bodyCase('field name 100k', { ...good, ['k'.repeat(100_000)]: 1 }));
  // Broken bodies.
  for (const body of [
    '',
    '{',
    '}',
    'null',
    '[]',
    '1',
    '"str"',
    'true',
    '{"image":',
    '{"image":"a"}}',
    '\u0000',
    '['.repeat(5000) + ']'.repeat(5000),
    '{"__proto__":{"x":1}}',
    JSON.stringify({ 0: good }),
  ]) {
    list.push(bodyCase(`body ${JSON.stringify(body.slice(0, 20))}`, body));
  }
  list.push(
    bodyCase('text/plain body', JSON.stringify(good), 'ask', { 'content-type': 'text/plain' }),
  );
  list.push(bodyCase('xml body', '<ask/>', 'ask', { 'content-type': 'application/xml' }));
  list.push(bodyCase('info as a mutation with a body', good, 'info'));
  list.push(bodyCase('unknown procedure', good, 'askAll'));
  list.push(bodyCase('batch of an unknown procedure', { 0: good }, 'nope,alsoNope?batch=1'));
  list.push({
    name: 'GET on a mutation',
    send: () => fetch(`${url}/trpc/ask?input=${encodeURIComponent(JSON.stringify(good))}`),
  });
  list.push({
    name: 'batch of 17 calls',
    send: () => fetch(`${url}/trpc/${Array.from({ length: 17 }, () => 'info').join(',')}?batch=1`),
  });
  // Broken uploads.
  const fields = JSON.stringify({ prompt: 'What is #1?', marks: [] });
  list.push(
    uploadCase('upload without image', () => {
      const f = new FormData();
      f.set('request', fields);
      return f;
    }),
  );
  list.push(
    uploadCase('upload with image as text', () => {
      const f = new FormData();
      f.set('image', 'not a file');
      f.set('request', fields);
      return f;
    }),
  );
  list.push(
    uploadCase('upload with request not JSON', () => {
      const f = new FormData();
      f.set('image', new Blob([images.png]));
      f.set('request', '{nope');
      return f;
    }),
  );
  list.push(
    uploadCase('upload with request a JSON array', () => {
      const f = new FormData();
      f.set('image', new Blob([images.png]));
      f.set('request', '[]');
      return f;
    }),
  );
  list.push(
    uploadCase('upload with a truncated image', () => {
      const f = new FormData();
      f.set('image', new Blob([images.jpeg.subarray(0, 100)]));
      f.set('request', fields);
      return f;
    }),
  );
  list.push(
    uploadCase('upload with a bomb', () => {
      const f = new FormData();
      f.set('image', new Blob([pngBomb(30000, 30000)]));
      f.set('request', fields);
      return f;
    }),
  );
  list.push(
    uploadCase('upload with an empty image', () => {
      const f = new FormData();
      f.set('image', new Blob([]));
      f.set('request', fields);
      return f;
    }),
  );
  list.push(
    uploadCase(
      'multipart with a wrong boundary',
      () => new Blob(['--abc\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--abc--']),
      'multipart/form-data; boundary=zzz',
    ),
  );
  list.push(
    uploadCase('multipart without a boundary', () => new Blob(['garbage']), 'multipart/form-data'),
  );
  list.push(
    uploadCase(
      'multipart cut short',
      () =>
        new Blob([
          '--zzz\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n\x89PNG',
        ]),
      'multipart/form-data; boundary=zzz',
    ),
  );
  list.push(
    uploadCase('upload as JSON', () => new Blob([JSON.stringify(good)]), 'application/json'),
  );
  return list;
}

/** The ErrorData of any error response: tRPC-shaped (object or batch array) or plain. */
function errorDataOf(text: string): ErrorData {
  const body = JSON.parse(text) as unknown;
  const first = Array.isArray(body) ? (body[0] as unknown) : body;
  const data =
    first && typeof first === 'object' && 'error' in first
      ? (first as { error: { data: unknown } }).error.data
      : first;
  return ErrorDataSchema.parse(data);
}

describe('fuzz', () => {
  it('answers every malformed request with a typed 4xx and keeps serving', async () => {
    const all = cases();
    expect(all.length).toBeGreaterThanOrEqual(200);
    const failures: string[] = [];
    const codes = new Map<string, number>();
    const batchSize = 8;
    for (let i = 0; i < all.length; i += batchSize) {
      await Promise.all(
        all.slice(i, i + batchSize).map(async (testCase) => {
          try {
            const response = await testCase.send();
            const text = await response.text();
            expectNoInternals(text);
            if (response.status < 400 || response.status >= 500) {
              failures.push(`${testCase.name}: HTTP ${response.status} ${text.slice(0, 200)}`);
              return;
            }
            const data = errorDataOf(text);
            expect(data.httpStatus).toBe(response.status);
            expect(data.requestId).toBe(response.headers.get('x-request-id'));
            codes.set(data.code, (codes.get(data.code) ?? 0) + 1);
          } catch (error) {
            failures.push(`${testCase.name}: ${String(error).slice(0, 300)}`);
          }
        }),
      );
    }
    expect(failures).toEqual([]);
    // Every kind of refusal was exercised.
    for (const code of [
      'INVALID_INPUT',
      'INVALID_IMAGE',
      'INVALID_MARKS',
      'PAYLOAD_TOO_LARGE',
      'NOT_FOUND',
    ]) {
      expect(codes.get(code), code).toBeGreaterThan(0);
    }

    // Still healthy: a good request gets a full answer.
    const response = await postTrpc(url, 'ask', askBody(images.png));
    expect(response.status).toBe(200);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    expect(running.server.app.server.listening).toBe(true);
  }, 180_000);
});
