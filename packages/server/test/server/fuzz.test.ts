import { connect } from 'node:net';
import { deflateSync, crc32 } from 'node:zlib';
import { ERROR_CATALOG, ErrorDataSchema } from '@magma-som/schemas';
import type { ErrorCode, ErrorData } from '@magma-som/schemas';
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

// Hundreds of malformed requests, through fetch and as raw bytes on a socket (malformed HTTP
// that Node's parser refuses before Fastify sees it): every one must get exactly the
// documented error code and status, in the ErrorData shape, echoing nothing it was sent, and
// the server must answer a good request correctly afterwards.

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

/** A response, from fetch or read raw off a socket. */
interface Reply {
  readonly status: number;
  header(name: string): string | null;
  readonly text: string;
}

interface Case {
  readonly name: string;
  /** The documented code for this input; the status must be ERROR_CATALOG's for it. */
  readonly expect: ErrorCode;
  /** Text from the request that must not come back in the response. */
  readonly marker?: string;
  send(): Promise<Reply>;
}

async function replyOf(response: Response): Promise<Reply> {
  const text = await response.text();
  return { status: response.status, header: (name) => response.headers.get(name), text };
}

/** Sends raw bytes on a fresh connection and parses the one HTTP response that comes back. */
function rawExchange(data: Buffer | string): Promise<Reply> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      try {
        resolve(parseRawResponse(Buffer.concat(chunks)));
      } catch (error) {
        reject(error as Error);
      }
    });
    socket.end(data);
  });
}

function parseRawResponse(raw: Buffer): Reply {
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) throw new Error(`no HTTP response: ${JSON.stringify(raw.toString('latin1'))}`);
  const [statusLine, ...lines] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine!)?.[1]);
  const headers = new Map(
    lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
    }),
  );
  let body = raw.subarray(split + 4);
  if (headers.get('transfer-encoding') === 'chunked') {
    const parts: Buffer[] = [];
    for (let at = 0; ;) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  return { status, header: (name) => headers.get(name) ?? null, text: body.toString('utf8') };
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
  expect: ErrorCode = 'INVALID_IMAGE',
): Case {
  const value = typeof image === 'string' ? image : image.toString('base64');
  return {
    name,
    expect,
    send: async () =>
      replyOf(await postTrpc(url, 'ask', { ...askBody(Buffer.alloc(0)), image: value })),
  };
}

function bodyCase(
  name: string,
  body: unknown,
  expect: ErrorCode = 'INVALID_INPUT',
  procedure = 'ask',
  headers?: Record<string, string>,
): Case {
  return {
    name,
    expect,
    send: async () => replyOf(await postTrpc(url, procedure, body, { headers })),
  };
}

function uploadCase(
  name: string,
  build: () => FormData | Blob,
  expect: ErrorCode,
  contentType?: string,
): Case {
  return {
    name,
    expect,
    send: async () =>
      replyOf(
        await fetch(`${url}/trpc/askUpload`, {
          method: 'POST',
          body: build(),
          ...(contentType ? { headers: { 'content-type': contentType } } : {}),
        }),
      ),
  };
}

function rawCase(name: string, data: Buffer | string, expect: ErrorCode, marker?: string): Case {
  return { name, expect, ...(marker ? { marker } : {}), send: () => rawExchange(data) };
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
  ]) {
    list.push(imageCase(`png bomb ${w}x${h}`, pngBomb(w!, h!), 'PAYLOAD_TOO_LARGE'));
  }
  // Under the pixel limit and complete: it decodes, and the marks lie outside its one row.
  list.push(imageCase('png 300000x1', pngBomb(300000, 1), 'INVALID_MARKS'));
  list.push(imageCase('gif bomb 65535x65535', gifBomb(), 'PAYLOAD_TOO_LARGE'));
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
    // Refused by the schema; 'abc' is valid unpadded base64 of two bytes, just not an image.
    const expect = image === 'abc' ? 'INVALID_IMAGE' : 'INVALID_INPUT';
    list.push(imageCase(`bad image string ${JSON.stringify(image.slice(0, 16))}`, image, expect));
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
      // A huge but valid x2/y2 passes the schema and lies outside the 96x80 image.
      const outside = (key === 'x2' || key === 'y2') && typeof value === 'number' && value > 50;
      list.push(
        bodyCase(
          `mark ${key} = ${JSON.stringify(value)}`,
          { ...good, marks: [mark] },
          outside ? 'INVALID_MARKS' : 'INVALID_INPUT',
        ),
      );
    }
  }
  // Literal overflowing numbers: JSON.parse turns 1e999 into Infinity.
  list.push(bodyCase('x2 = 1e999 literal', JSON.stringify(good).replace('"x2":65', '"x2":1e999')));
  list.push(
    bodyCase('label = -1e999 literal', JSON.stringify(good).replace('"label":1', '"label":-1e999')),
  );
  for (const [marks, expect] of [
    [
      [
        { label: 1, x1: 10, y1: 10, x2: 50, y2: 50 },
        { label: 1, x1: 1, y1: 1, x2: 5, y2: 5 },
      ],
      'INVALID_INPUT',
    ],
    [[{ label: 1.5, x1: 10, y1: 10, x2: 50, y2: 50 }], 'INVALID_INPUT'],
    [[{ label: 5000, x1: 10, y1: 10, x2: 50, y2: 50 }], 'INVALID_INPUT'],
    [[{ label: 1, x1: 10, y1: 10, x2: 50, y2: 50, style: { color: 'red' } }], 'INVALID_INPUT'],
    [[{ label: 1, x1: 10, y1: 10, x2: 500, y2: 50 }], 'INVALID_MARKS'],
    [[{ label: 1, x1: 10, y1: 10, x2: 50, y2: 81 }], 'INVALID_MARKS'],
    [[{ label: 1, x1: 10, y1: 10, x2: 10, y2: 50 }], 'INVALID_INPUT'],
    [
      Array.from({ length: 65 }, (_, i) => ({ label: i, x1: 0, y1: 0, x2: 1, y2: 1 })),
      'INVALID_INPUT',
    ],
  ] as const) {
    list.push(bodyCase(`marks ${JSON.stringify(marks).slice(0, 40)}`, { ...good, marks }, expect));
  }
  // Huge strings.
  list.push(bodyCase('prompt of 100k chars', { ...good, prompt: 'why '.repeat(25_000) }));
  list.push(bodyCase('prompt of spaces', { ...good, prompt: ' \n\t  ' }));
  list.push(
    bodyCase('image of 2M A', { ...good, image: 'A'.repeat(2_000_000) }, 'PAYLOAD_TOO_LARGE'),
  );
  list.push(
    bodyCase(
      'image of 3M chars, over the body limit',
      { ...good, image: 'QUJD'.repeat(750_000) },
      'PAYLOAD_TOO_LARGE',
    ),
  );
  // Just over the image byte limit, and far over it: the same 413 either way.
  for (const over of [1, 2, 3, 1000, 100_000]) {
    const image = Buffer.concat([images.png, Buffer.alloc(512 * 1024 - images.png.length + over)]);
    list.push(imageCase(`image of max + ${over} bytes`, image, 'PAYLOAD_TOO_LARGE'));
  }
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
  for (const type of [
    'text/plain',
    'application/xml',
    'application/x-www-form-urlencoded',
    'application/octet-stream',
    'image/png',
    'application/zqzq-marker',
  ]) {
    list.push(
      bodyCase(`${type} body`, JSON.stringify(good), 'UNSUPPORTED_MEDIA_TYPE', 'ask', {
        'content-type': type,
      }),
    );
  }
  list.push(bodyCase('info as a mutation with a body', good, 'METHOD_NOT_ALLOWED', 'info'));
  list.push(bodyCase('unknown procedure', good, 'NOT_FOUND', 'askAll'));
  list.push(
    bodyCase('batch of an unknown procedure', { 0: good }, 'NOT_FOUND', 'nope,alsoNope?batch=1'),
  );
  list.push({
    name: 'GET on a mutation',
    expect: 'METHOD_NOT_ALLOWED',
    send: async () =>
      replyOf(await fetch(`${url}/trpc/ask?input=${encodeURIComponent(JSON.stringify(good))}`)),
  });
  list.push({
    name: 'batch of 17 calls',
    expect: 'INVALID_INPUT',
    send: async () =>
      replyOf(
        await fetch(`${url}/trpc/${Array.from({ length: 17 }, () => 'info').join(',')}?batch=1`),
      ),
  });
  // Broken uploads.
  const fields = JSON.stringify({ prompt: 'What is #1?', marks: [] });
  list.push(
    uploadCase(
      'upload without image',
      () => {
        const f = new FormData();
        f.set('request', fields);
        return f;
      },
      'INVALID_INPUT',
    ),
  );
  list.push(
    uploadCase(
      'upload with image as text',
      () => {
        const f = new FormData();
        f.set('image', 'not a file');
        f.set('request', fields);
        return f;
      },
      'INVALID_INPUT',
    ),
  );
  list.push(
    uploadCase(
      'upload with request not JSON',
      () => {
        const f = new FormData();
        f.set('image', new Blob([images.png]));
        f.set('request', '{nope');
        return f;
      },
      'INVALID_INPUT',
    ),
  );
  list.push(
    uploadCase(
      'upload with request a JSON array',
      () => {
        const f = new FormData();
        f.set('image', new Blob([images.png]));
        f.set('request', '[]');
        return f;
      },
      'INVALID_INPUT',
    ),
  );
  list.push(
    uploadCase(
      'upload with a truncated image',
      () => {
        const f = new FormData();
        f.set('image', new Blob([images.jpeg.subarray(0, 100)]));
        f.set('request', fields);
        return f;
      },
      'INVALID_IMAGE',
    ),
  );
  list.push(
    uploadCase(
      'upload with a bomb',
      () => {
        const f = new FormData();
        f.set('image', new Blob([pngBomb(30000, 30000)]));
        f.set('request', fields);
        return f;
      },
      'PAYLOAD_TOO_LARGE',
    ),
  );
  list.push(
    uploadCase(
      'upload with an empty image',
      () => {
        const f = new FormData();
        f.set('image', new Blob([]));
        f.set('request', fields);
        return f;
      },
      'INVALID_IMAGE',
    ),
  );
  list.push(
    uploadCase(
      'multipart with a wrong boundary',
      () => new Blob(['--abc\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--abc--']),
      'INVALID_INPUT',
      'multipart/form-data; boundary=zzz',
    ),
  );
  list.push(
    uploadCase(
      'multipart without a boundary',
      () => new Blob(['garbage']),
      'INVALID_INPUT',
      'multipart/form-data',
    ),
  );
  list.push(
    uploadCase(
      'multipart cut short',
      () =>
        new Blob([
          '--zzz\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n\x89PNG',
        ]),
      'INVALID_INPUT',
      'multipart/form-data; boundary=zzz',
    ),
  );
  list.push(
    uploadCase(
      'upload as JSON',
      () => new Blob([JSON.stringify(good)]),
      'INVALID_INPUT',
      'application/json',
    ),
  );
  return list;
}

/** One HTTP/1.1 request as raw text; `Connection: close` so the server ends the exchange. */
function http(method: string, path: string, headers: readonly string[] = [], body = ''): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: fuzz', 'Connection: close', ...headers];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** A chunked body of `bytes` bytes of JSON-ish filler, in 64 KiB chunks. */
function chunkedBody(bytes: number): Buffer {
  const chunk = Buffer.concat([
    Buffer.from('10000\r\n'),
    Buffer.alloc(0x10000, 0x41),
    Buffer.from('\r\n'),
  ]);
  return Buffer.concat([
    ...Array.from({ length: Math.ceil(bytes / 0x10000) }, () => chunk),
    Buffer.from('0\r\n\r\n'),
  ]);
}

const PART_HEAD = '--zzz\r\nContent-Disposition: form-data; name="image"\r\n\r\n';

/** Malformed and unusual HTTP, written straight to a socket. */
function rawCases(): Case[] {
  const random = rng(20261201);
  const list: Case[] = [];
  const paths = [
    '/trpc/ask',
    '/trpc/info',
    '/trpc/nope',
    '/health',
    '/ready',
    '/metrics',
    '/nope',
    '/',
  ];
  // Methods Node parses but this server never serves: 405 on every path, never a 500.
  for (const method of [
    'PUT',
    'DELETE',
    'PATCH',
    'TRACE',
    'PROPFIND',
    'MKCOL',
    'LOCK',
    'PURGE',
    'SEARCH',
    'REPORT',
    'LINK',
    'COPY',
    'MOVE',
    'QUERY',
  ]) {
    for (const path of paths) {
      list.push(rawCase(`${method} ${path}`, http(method, path), 'METHOD_NOT_ALLOWED'));
    }
  }
  // Tokens Node's parser does not know as methods.
  for (const method of ['FOO', 'BREW', 'GETT', 'get']) {
    for (const path of ['/trpc/ask', '/health']) {
      list.push(
        rawCase(`unknown method ${method} ${path}`, http(method, path), 'METHOD_NOT_ALLOWED'),
      );
    }
  }
  list.push(
    rawCase('CONNECT', 'CONNECT fuzz:443 HTTP/1.1\r\nHost: fuzz:443\r\n\r\n', 'METHOD_NOT_ALLOWED'),
  );
  for (const path of ['/trpc/ask', '/health', '/nope']) {
    list.push(rawCase(`OPTIONS ${path} without CORS`, http('OPTIONS', path), 'METHOD_NOT_ALLOWED'));
  }
  list.push(
    rawCase('POST /health', http('POST', '/health', ['Content-Length: 0']), 'METHOD_NOT_ALLOWED'),
  );
  list.push(rawCase('GET /trpc/ask', http('GET', '/trpc/ask'), 'METHOD_NOT_ALLOWED'));
  list.push(rawCase('GET /trpc/nope', http('GET', '/trpc/nope'), 'NOT_FOUND'));
  list.push(rawCase('GET /nope', http('GET', '/nope'), 'NOT_FOUND'));
  list.push(rawCase('POST /nope', http('POST', '/nope', ['Content-Length: 0']), 'NOT_FOUND'));
  list.push(rawCase('bad percent-encoding', http('GET', '/trpc/%zz'), 'INVALID_INPUT'));
  list.push(
    rawCase('no Host header', 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n', 'INVALID_INPUT'),
  );

  // Framing that Node's parser refuses.
  const post = (headers: string[], body: string) =>
    http('POST', '/trpc/ask', ['Content-Type: application/json', ...headers], body);
  for (const [name, data] of [
    ['bad chunk size', post(['Transfer-Encoding: chunked'], 'zz\r\nabc\r\n0\r\n\r\n')],
    ['negative chunk size', post(['Transfer-Encoding: chunked'], '-1\r\nabc\r\n0\r\n\r\n')],
    ['chunk size overflow', post(['Transfer-Encoding: chunked'], 'fffffffffffffffffff\r\na\r\n')],
    ['chunk without CRLF', post(['Transfer-Encoding: chunked'], '3\r\nabcXY0\r\n\r\n')],
    ['duplicate Content-Length', post(['Content-Length: 2', 'Content-Length: 3'], '{}')],
    [
      'Content-Length and chunked',
      post(['Content-Length: 2', 'Transfer-Encoding: chunked'], '0\r\n\r\n'),
    ],
    ['negative Content-Length', post(['Content-Length: -5'], '{}')],
    ['Content-Length not a number', post(['Content-Length: abc'], '{}')],
    ['Content-Length with a space', post(['Content-Length: 1 2'], '{}')],
    ['Transfer-Encoding gzip only', post(['Transfer-Encoding: gzip'], '{}')],
    ['chunked not last', post(['Transfer-Encoding: chunked, gzip'], '0\r\n\r\n')],
    ['NUL in a header value', http('GET', '/health', ['X-A: a\0b'])],
    ['NUL in the path', http('GET', '/hea\0lth')],
    ['space in the path', 'GET /he alth HTTP/1.1\r\nHost: fuzz\r\n\r\n'],
    ['space before the colon', http('GET', '/health', ['X-A : b'])],
    ['bare LF line ends', 'GET /health HTTP/1.1\nHost: fuzz\nConnection: close\n\n'],
    ['version HTTP/9.9', 'GET /health HTTP/9.9\r\nHost: fuzz\r\n\r\n'],
    ['protocol HTTX', 'GET /health HTTX/1.1\r\nHost: fuzz\r\n\r\n'],
    ['header without a colon', http('GET', '/health', ['X-A b'])],
    ['empty header name', http('GET', '/health', [': b'])],
  ] as const) {
    list.push(rawCase(name, data, 'INVALID_INPUT'));
  }
  // Control characters in header values (HTAB is allowed, CR and LF end the line).
  const controls = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 20, 24, 27, 31, 127];
  for (let i = 0; i < 40; i++) {
    const control = String.fromCharCode(controls[Math.floor(random() * controls.length)]!);
    const value = `v${'x'.repeat(Math.floor(random() * 20))}${control}y`;
    list.push(
      rawCase(
        `control ${control.charCodeAt(0)} in a header value #${i}`,
        http('GET', '/health', [`X-Fuzz: ${value}`]),
        'INVALID_INPUT',
      ),
    );
  }
  // Characters that are not allowed in header names.
  const separators = '()<>@,;\\"/[]?={} \u0001\u007f';
  for (let i = 0; i < 30; i++) {
    const bad = separators[Math.floor(random() * separators.length)]!;
    list.push(
      rawCase(
        `header name with ${JSON.stringify(bad)} #${i}`,
        http('GET', '/trpc/info', [`X-F${bad}z: 1`]),
        'INVALID_INPUT',
      ),
    );
  }

  // Sizes: URLs over 8 KiB are 414, request heads over Node's 16 KiB are 431; nothing echoed.
  for (const length of [8_200, 9_000, 12_000, 15_000]) {
    list.push(
      rawCase(
        `URL of ${length} chars`,
        http('GET', `/health?q=${'zqzq'.repeat(length / 4)}`),
        'URI_TOO_LONG',
        'zqzqzqzq',
      ),
    );
    list.push(
      rawCase(
        `path of ${length} chars`,
        http('GET', `/trpc/${'zqzq'.repeat(length / 4)}`),
        'URI_TOO_LONG',
        'zqzqzqzq',
      ),
    );
  }
  list.push(
    rawCase(
      'path of 6000 chars',
      http('GET', `/trpc/${'zqzq'.repeat(1500)}`),
      'URI_TOO_LONG',
      'zqzqzqzq',
    ),
  );
  list.push(
    rawCase(
      'URL of 20000 chars',
      http('GET', `/${'zqzq'.repeat(5000)}`),
      'HEADERS_TOO_LARGE',
      'zqzqzqzq',
    ),
  );
  list.push(
    rawCase(
      'header of 20000 chars',
      http('GET', '/health', [`X-Big: ${'zqzq'.repeat(5000)}`]),
      'HEADERS_TOO_LARGE',
      'zqzqzqzq',
    ),
  );
  list.push(
    rawCase(
      '300 headers of 100 chars',
      http(
        'GET',
        '/health',
        Array.from({ length: 300 }, (_, i) => `X-H${i}: ${'zqzq'.repeat(25)}`),
      ),
      'HEADERS_TOO_LARGE',
      'zqzqzqzq',
    ),
  );

  // Bodies over the limit: declared, and chunked (the answer is readable: no reset).
  list.push(
    rawCase(
      'Content-Length of 1 TB',
      post(['Content-Length: 1000000000000'], '{}'),
      'PAYLOAD_TOO_LARGE',
    ),
  );
  for (const megabytes of [2, 4, 8]) {
    list.push(
      rawCase(
        `chunked JSON body of ${megabytes} MB`,
        Buffer.concat([
          Buffer.from(
            'POST /trpc/ask HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
          ),
          chunkedBody(megabytes * 1024 * 1024),
        ]),
        'PAYLOAD_TOO_LARGE',
      ),
    );
  }
  list.push(
    rawCase(
      'chunked multipart upload of 4 MB',
      Buffer.concat([
        Buffer.from(
          'POST /trpc/askUpload HTTP/1.1\r\nHost: fuzz\r\nContent-Type: multipart/form-data; boundary=zzz\r\nTransfer-Encoding: chunked\r\n\r\n',
        ),
        Buffer.from(`${PART_HEAD.length.toString(16)}\r\n${PART_HEAD}\r\n`),
        chunkedBody(4 * 1024 * 1024),
      ]),
      'PAYLOAD_TOO_LARGE',
    ),
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
  it('answers every malformed request with its documented typed error and keeps serving', async () => {
    const all = [...cases(), ...rawCases()];
    expect(all.length).toBeGreaterThanOrEqual(500);
    const failures: string[] = [];
    const codes = new Map<string, number>();
    let serverErrors = 0;
    const batchSize = 8;
    for (let i = 0; i < all.length; i += batchSize) {
      await Promise.all(
        all.slice(i, i + batchSize).map(async (testCase) => {
          try {
            const reply = await testCase.send();
            if (reply.status >= 500) serverErrors++;
            expectNoInternals(reply.text);
            if (testCase.marker) expect(reply.text).not.toContain(testCase.marker);
            const expected = ERROR_CATALOG[testCase.expect].httpStatus;
            if (reply.status !== expected) {
              failures.push(
                `${testCase.name}: HTTP ${reply.status}, expected ${expected} ${testCase.expect}: ${reply.text.slice(0, 200)}`,
              );
              return;
            }
            const data = errorDataOf(reply.text);
            expect(data.code, testCase.name).toBe(testCase.expect);
            expect(data.httpStatus).toBe(reply.status);
            expect(data.requestId).toBe(reply.header('x-request-id'));
            if (reply.status === 405) expect(reply.header('allow'), testCase.name).toBeTruthy();
            codes.set(data.code, (codes.get(data.code) ?? 0) + 1);
          } catch (error) {
            failures.push(`${testCase.name}: ${String(error).slice(0, 300)}`);
          }
        }),
      );
    }
    expect(failures).toEqual([]);
    expect(serverErrors).toBe(0);
    // Every kind of refusal was exercised.
    for (const code of [
      'INVALID_INPUT',
      'INVALID_IMAGE',
      'INVALID_MARKS',
      'PAYLOAD_TOO_LARGE',
      'NOT_FOUND',
      'METHOD_NOT_ALLOWED',
      'UNSUPPORTED_MEDIA_TYPE',
      'URI_TOO_LONG',
      'HEADERS_TOO_LARGE',
    ]) {
      expect(codes.get(code), code).toBeGreaterThan(0);
    }

    // Still healthy: a good request gets a full answer.
    const response = await postTrpc(url, 'ask', askBody(images.png));
    expect(response.status).toBe(200);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    expect(running.server.app.server.listening).toBe(true);
  }, 300_000);
});
