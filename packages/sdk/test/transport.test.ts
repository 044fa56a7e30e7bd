import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Agent, ProxyAgent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LogLevel, Logger } from '../src/index.js';
import { runtimeName } from '../src/user-agent.js';
import { SDK_VERSION } from '../src/version.js';
import { createClient } from './support/entry.js';
import { FaultServer, trpcError } from './support/fault-server.js';
import { smallPng } from './support/images.js';

// What the client puts on the wire besides the request: who it is, which retry, through which
// connection (a proxy the user set), and what it logs.

let server: FaultServer;
let image: Buffer;
const question = () => ({ image, prompt: 'What is in #1?', marks: [[1, 1, 20, 20] as const] });

beforeAll(async () => {
  image = await smallPng();
});

beforeEach(async () => {
  server = await FaultServer.start();
});

afterEach(async () => {
  await server.close();
});

/** An HTTP CONNECT proxy (what undici's ProxyAgent speaks), counting the tunnels it opens. */
async function startProxy(): Promise<{ url: string; tunnels: string[]; close(): Promise<void> }> {
  const tunnels: string[] = [];
  const proxy: Server = createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req, client, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    close: () =>
      new Promise((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}

describe('identity headers', () => {
  it('User-Agent names the SDK and the runtime; the version is the package version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(SDK_VERSION).toBe(pkg.version);
    await using client = createClient({ baseUrl: server.url });
    await client.ask(question());
    await client.info();
    const agents = server.requests.map((r) => r.headers['user-agent']);
    expect(agents).toEqual([
      `magma-som-sdk/${pkg.version} node/${process.versions.node}`,
      `magma-som-sdk/${pkg.version} node/${process.versions.node}`,
    ]);
  });

  it('names Deno, Bun, browsers and edge runtimes by their globals', () => {
    expect(runtimeName({ Deno: { version: { deno: '2.1.4' } } })).toBe('deno/2.1.4');
    expect(
      runtimeName({ Bun: { version: '1.1.38' }, process: { versions: { node: '22.6.0' } } }),
    ).toBe('bun/1.1.38');
    expect(runtimeName({ document: {}, navigator: { userAgent: 'Mozilla/5.0' } })).toBe('browser');
    expect(runtimeName({ navigator: { userAgent: 'Cloudflare-Workers' } })).toBe(
      'edge/Cloudflare-Workers',
    );
  });

  it('a header the user sets wins over the default User-Agent', async () => {
    await using client = createClient({ baseUrl: server.url, headers: { 'user-agent': 'mine/1' } });
    await client.info();
    expect(server.requests[0]!.headers['user-agent']).toBe('mine/1');
  });

  it('each attempt says which retry it is', async () => {
    server.fail(trpcError('OVERLOADED', { extra: { retryAfterMs: 5 } }), trpcError('INTERNAL'));
    await using client = createClient({
      baseUrl: server.url,
      retry: { initialDelayMs: 5 },
    });
    await client.ask(question());
    expect(server.requests.map((r) => r.headers['x-magma-retry-count'])).toEqual(['0', '1', '2']);
  });
});

describe('dispatchers', () => {
  it('the dispatcher option carries every request (through a proxy)', async () => {
    const proxy = await startProxy();
    const dispatcher = new ProxyAgent(proxy.url);
    try {
      await using client = createClient({ baseUrl: server.url, dispatcher });
      await client.ask(question());
      await client.info();
      expect(proxy.tunnels.length).toBeGreaterThanOrEqual(1);
      expect(new Set(proxy.tunnels)).toEqual(new Set([new URL(server.url).host]));
      expect(server.requests).toHaveLength(2);
    } finally {
      await dispatcher.close();
      await proxy.close();
    }
  });

  it('a global proxy dispatcher (setGlobalDispatcher) carries every request', async () => {
    const proxy = await startProxy();
    const previous = getGlobalDispatcher();
    const dispatcher = new ProxyAgent(proxy.url);
    setGlobalDispatcher(dispatcher);
    try {
      await using client = createClient({ baseUrl: server.url });
      await client.ask(question());
      expect(proxy.tunnels).toEqual([new URL(server.url).host]);
    } finally {
      setGlobalDispatcher(previous);
      await dispatcher.close();
      await proxy.close();
    }
  });

  it("without a dispatcher, requests use Node's global one and its keep-alive pool", async () => {
    const previous = getGlobalDispatcher();
    let dispatched = 0;
    const agent = new Agent();
    const dispatch = agent.dispatch.bind(agent);
    agent.dispatch = (options, handler) => {
      dispatched++;
      return dispatch(options, handler);
    };
    setGlobalDispatcher(agent);
    try {
      await using client = createClient({ baseUrl: server.url });
      await client.info();
      await client.ask(question());
      await client.info();
      expect(server.requests).toHaveLength(3);
      expect(dispatched).toBe(3);
      // one connection, kept alive across the three calls
      expect(server.connections).toBe(1);
    } finally {
      setGlobalDispatcher(previous);
      await agent.close();
    }
  });
});

describe('logging', () => {
  function recorder() {
    const lines: [string, string][] = [];
    const logger: Logger = {
      error: (m) => lines.push(['error', m]),
      warn: (m) => lines.push(['warn', m]),
      info: (m) => lines.push(['info', m]),
      debug: (m) => lines.push(['debug', m]),
    };
    return { lines, logger };
  }

  it('debug logs attempts, retries and timings; info only retries; off nothing', async () => {
    const runs: Record<string, [string, string][]> = {};
    for (const level of ['debug', 'info', 'off'] as LogLevel[]) {
      const { lines, logger } = recorder();
      server.fail(trpcError('OVERLOADED', { extra: { retryAfterMs: 5 } }));
      await using client = createClient({ baseUrl: server.url, logLevel: level, logger });
      await client.ask(question());
      runs[level] = lines;
    }
    expect(runs.debug!.map(([level]) => level)).toEqual(['debug', 'info', 'debug', 'debug']);
    expect(runs.debug![0]![1]).toContain('ask: attempt 1');
    expect(runs.debug![1]![1]).toMatch(/ask: retrying in 5 ms \(HTTP 503 OVERLOADED/);
    expect(runs.debug![3]![1]).toMatch(/ask: done in \d+ ms/);
    expect(runs.info).toEqual([runs.debug![1]]);
    expect(runs.off).toEqual([]);
  });

  it('MAGMA_SDK_LOG sets the level when the options do not', async () => {
    const { lines, logger } = recorder();
    const saved = process.env.MAGMA_SDK_LOG;
    process.env.MAGMA_SDK_LOG = 'debug';
    try {
      await using client = createClient({ baseUrl: server.url, logger });
      await client.info();
    } finally {
      if (saved === undefined) delete process.env.MAGMA_SDK_LOG;
      else process.env.MAGMA_SDK_LOG = saved;
    }
    expect(lines.map(([, m]) => m)).toEqual([
      expect.stringContaining('info: attempt 1'),
      expect.stringMatching(/info: done in \d+ ms/),
    ]);
  });
});
