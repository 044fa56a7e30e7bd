import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { expectTrpcError, startTestEngine, startTestServer } from './helpers.js';
import type { RunningServer } from './helpers.js';

// The rate limit without API keys: per client address. Set explicitly here (the default is
// off). X-Forwarded-For is trusted (MAGMA_TRUST_PROXY) so one test can be several addresses.

let engine: Engine;
let server: RunningServer;

beforeAll(async () => {
  engine = await startTestEngine();
  server = await startTestServer(engine, {
    apiKeys: [],
    rateLimitMax: 2,
    // Long enough that a slow machine cannot see a window roll over mid-test.
    rateLimitWindowMs: 10 * 60_000,
    trustProxy: true,
  });
});

afterAll(async () => {
  await server?.server.shutdown();
  await engine?.close();
});

function info(address: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/trpc/info`, {
    headers: { 'x-forwarded-for': address, ...headers },
  });
}

async function statuses(responses: Promise<Response>[]): Promise<number[]> {
  const out: number[] = [];
  for (const pending of responses) {
    const response = await pending;
    out.push(response.status);
    await response.body?.cancel();
  }
  return out;
}

describe('per-address rate limit (no API keys)', () => {
  it('allows MAGMA_RATE_LIMIT_MAX calls per address, then 429 with Retry-After', async () => {
    expect(await statuses([info('10.9.0.1'), info('10.9.0.1')])).toEqual([200, 200]);
    const limited = await info('10.9.0.1');
    const data = await expectTrpcError(limited, 'RATE_LIMITED', 429);
    expect(data.retryable).toBe(true);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(Math.ceil(data.retryAfterMs! / 1000)).toBe(retryAfter);
  });

  it('counts each address separately', async () => {
    expect(await statuses([info('10.9.0.2'), info('10.9.0.2'), info('10.9.0.2')])).toEqual([
      200, 200, 429,
    ]);
    // Another address still has its whole budget.
    expect(await statuses([info('10.9.0.3'), info('10.9.0.3')])).toEqual([200, 200]);
  });

  it('does not give a caller a fresh budget per made-up key when keys are off', async () => {
    const asKey = (key: string) => info('10.9.0.4', { authorization: `Bearer ${key}` });
    expect(await statuses([asKey('a'), asKey('b'), asKey('c')])).toEqual([200, 200, 429]);
  });

  it('leaves /health, /ready and /metrics out of the count', async () => {
    for (let i = 0; i < 3; i++) {
      for (const path of ['/health', '/ready', '/metrics']) {
        const response = await fetch(`${server.url}${path}`, {
          headers: { 'x-forwarded-for': '10.9.0.5' },
        });
        expect(response.status).toBe(200);
        await response.body?.cancel();
      }
    }
    expect(await statuses([info('10.9.0.5'), info('10.9.0.5')])).toEqual([200, 200]);
  });
});
