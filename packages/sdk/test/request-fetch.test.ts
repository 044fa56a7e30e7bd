import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient } from '../src/node.js';
import { requestFetch } from '../src/node/request-fetch.js';
import { FaultServer } from './support/fault-server.js';
import { smallPng } from './support/images.js';

// The Node entry's transport: calls answered in one piece go through undici's request() and
// come back as the Response fetch would have given; everything else goes to fetch.

/** A global dispatcher that counts what reaches it through request() and through dispatch(). */
function countingAgent() {
  const agent = new Agent();
  const counts = { request: 0, dispatch: 0 };
  const request = agent.request.bind(agent);
  const dispatch = agent.dispatch.bind(agent);
  let inRequest = false;
  agent.request = ((options: Parameters<typeof request>[0]) => {
    counts.request++;
    inRequest = true;
    try {
      return request(options);
    } finally {
      inRequest = false;
    }
  }) as typeof agent.request;
  agent.dispatch = (options, handler) => {
    // request() dispatches too: count only what came straight from fetch
    if (!inRequest) counts.dispatch++;
    return dispatch(options, handler);
  };
  return { agent, counts };
}

type Route = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

let http: Server;
let base: string;
const routes = new Map<string, Route>();

beforeAll(async () => {
  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const route = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
      if (route) route(req, res, Buffer.concat(chunks));
      else res.writeHead(404).end('no route');
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  routes.set('/echo', (req, res, body) => {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.writeHead(201, {
      'content-type': 'application/json',
      'x-seen': String(req.headers['x-test'] ?? ''),
    });
    res.end(JSON.stringify({ method: req.method, body: body.toString(), url: req.url }));
  });
  routes.set('/gzip', (_req, res) =>
    res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync('zipped answer')),
  );
  routes.set('/br', (_req, res) =>
    res.writeHead(200, { 'content-encoding': 'br' }).end(brotliCompressSync('brotli answer')),
  );
  routes.set('/empty', (_req, res) => res.writeHead(204).end());
  routes.set('/moved', (_req, res) => res.writeHead(307, { location: '/echo' }).end('moved'));
  routes.set('/slow-body', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('part of it');
  });
  // Node makes its global dispatcher on its first fetch
  await fetch(`${base}/empty`);
});

afterAll(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
});

afterEach(() => {
  vi.unstubAllGlobals();
});

async function withCountingDispatcher<T>(
  run: (counts: { request: number; dispatch: number }) => Promise<T>,
): Promise<T> {
  const previous = getGlobalDispatcher();
  const { agent, counts } = countingAgent();
  setGlobalDispatcher(agent);
  try {
    return await run(counts);
  } finally {
    setGlobalDispatcher(previous);
    await agent.close();
  }
}

describe('requestFetch', () => {
  it('sends a JSON call through request() and answers what fetch answers', async () => {
    await withCountingDispatcher(async (counts) => {
      const init = {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-test': 'yes' },
        body: JSON.stringify({ question: 'What is #1?' }),
      };
      const ours = await requestFetch(`${base}/echo?q=1`, init);
      expect(counts).toEqual({ request: 1, dispatch: 0 });
      const theirs = await fetch(`${base}/echo?q=1`, init);
      expect(counts).toEqual({ request: 1, dispatch: 1 });
      for (const response of [ours, theirs]) {
        expect(response.status).toBe(201);
        expect(response.ok).toBe(true);
        expect(response.statusText).toBe('Created');
        expect(response.headers.get('x-seen')).toBe('yes');
        expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
      }
      expect(await ours.json()).toEqual(await theirs.json());
    });
  });

  it('bytes bodies and URL objects go through request() too', async () => {
    await withCountingDispatcher(async (counts) => {
      const response = await requestFetch(new URL(`${base}/echo`), {
        method: 'PUT',
        body: new TextEncoder().encode('raw bytes'),
      });
      expect(await response.json()).toEqual({ method: 'PUT', body: 'raw bytes', url: '/echo' });
      expect(counts.request).toBe(1);
    });
  });

  it('undoes gzip and br as fetch does, and gives no body for a 204', async () => {
    expect(await (await requestFetch(`${base}/gzip`)).text()).toBe('zipped answer');
    expect(await (await requestFetch(`${base}/br`)).text()).toBe('brotli answer');
    const empty = await requestFetch(`${base}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
  });

  it('hands a redirect to fetch, which follows it', async () => {
    await withCountingDispatcher(async (counts) => {
      const response = await requestFetch(`${base}/moved`, { method: 'POST', body: 'again' });
      expect(response.status).toBe(201);
      expect(await response.json()).toMatchObject({ method: 'POST', body: 'again', url: '/echo' });
      expect(counts.request).toBe(1);
      expect(counts.dispatch).toBeGreaterThanOrEqual(1);
    });
  });

  it('sends FormData through fetch', async () => {
    await withCountingDispatcher(async (counts) => {
      const form = new FormData();
      form.append('field', 'value');
      const response = await requestFetch(`${base}/echo`, { method: 'POST', body: form });
      expect((await response.json()) as { body: string }).toMatchObject({
        body: expect.stringContaining('value') as unknown,
      });
      expect(counts).toEqual({ request: 0, dispatch: 1 });
    });
  });

  it('leaves the call to a fetch that is not Node’s own (a stub, a mock library)', async () => {
    const stub = vi.fn(() => Promise.resolve(new Response('from the stub', { status: 200 })));
    vi.stubGlobal('fetch', stub);
    const response = await requestFetch(`${base}/echo`, { method: 'POST', body: '{}' });
    expect(await response.text()).toBe('from the stub');
    expect(stub).toHaveBeenCalledTimes(1);
  });

  it('fails like fetch when nothing listens: TypeError "fetch failed" with the cause', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const error = (await requestFetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e)) as {
      message: string;
      cause: { code: string };
    };
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('fetch failed');
    expect(error.cause.code).toBe('ECONNREFUSED');
  });

  it('rejects with the signal’s reason, before sending and while reading the body', async () => {
    const reason = new Error('stopped by the caller');
    const before = new AbortController();
    before.abort(reason);
    await expect(requestFetch(`${base}/echo`, { signal: before.signal })).rejects.toBe(reason);
    const during = new AbortController();
    const pending = requestFetch(`${base}/slow-body`, { signal: during.signal });
    setTimeout(() => during.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
  });
});

describe("the Node entry's client", () => {
  it('asks and reads info through request(), and uploads through fetch', async () => {
    const server = await FaultServer.start();
    try {
      await withCountingDispatcher(async (counts) => {
        await using client = createClient({ baseUrl: server.url, maxRetries: 0 });
        const image = await smallPng();
        await client.ask({ image, prompt: 'What is in #1?', marks: [[1, 1, 20, 20]] });
        await client.info();
        expect(counts).toEqual({ request: 2, dispatch: 0 });
        // over the upload threshold the image goes as a multipart file
        await createClient({ baseUrl: server.url, uploadThresholdBytes: 1 }).ask({
          image,
          prompt: 'What is in #1?',
          marks: [[1, 1, 20, 20]],
        });
        expect(counts).toEqual({ request: 2, dispatch: 1 });
      });
    } finally {
      await server.close();
    }
  });

  it('a fetch given in the options carries every call', async () => {
    const server = await FaultServer.start();
    try {
      const given = vi.fn((input: string | URL | Request, init?: RequestInit) =>
        fetch(input, init),
      );
      await using client = createClient({ baseUrl: server.url, fetch: given });
      await client.info();
      await client.ask({ image: await smallPng(), prompt: 'What is in #1?' });
      expect(given).toHaveBeenCalledTimes(2);
    } finally {
      await server.close();
    }
  });
});
