import { describe, expect, it } from 'vitest';
import { retryAfterFromHeaders } from '../src/classify-error.js';
import { backoffDelay, decideRetry } from '../src/retry.js';
import {
  APIConnectionError,
  APIUserAbortError,
  InvalidInputError,
  OverloadedError,
  RateLimitError,
} from '../src/index.js';

describe('backoffDelay', () => {
  it('doubles from 500 ms up to 8 s, scaled by a jitter factor in [0.75, 1]', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, {}, 0))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000, 8000,
    ]);
    expect(backoffDelay(0, {}, 1)).toBe(375);
    expect(backoffDelay(4, {}, 1)).toBe(6000);
    expect(backoffDelay(2, { initialDelayMs: 10, maxDelayMs: 25, jitter: 0 }, 0.9)).toBe(25);
  });
});

describe('retryAfterFromHeaders', () => {
  const headers = (init: Record<string, string>) => new Headers(init);
  it('prefers retry-after-ms, then retry-after seconds, then an HTTP date', () => {
    expect(retryAfterFromHeaders(headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(
      250,
    );
    expect(retryAfterFromHeaders(headers({ 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2026-11-21T00:00:00Z');
    expect(
      retryAfterFromHeaders(headers({ 'retry-after': 'Sat, 21 Nov 2026 00:00:03 GMT' }), now),
    ).toBe(3000);
    expect(retryAfterFromHeaders(headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterFromHeaders(headers({}))).toBeUndefined();
  });
});

describe('decideRetry', () => {
  it('retries retryable errors and never client errors or aborts', () => {
    expect(decideRetry(new OverloadedError('busy', { status: 503 }), 0, { jitter: 0 })).toEqual({
      retry: true,
      delayMs: 500,
      reason: 'HTTP 503 OVERLOADED, backoff 500 ms',
    });
    expect(
      decideRetry(new APIConnectionError('connection failed: ECONNRESET'), 1, { jitter: 0 }).retry,
    ).toBe(true);
    expect(decideRetry(new InvalidInputError('bad', { status: 400 }), 0, {}).retry).toBe(false);
    expect(decideRetry(new APIUserAbortError(), 0, {}).retry).toBe(false);
  });

  it('waits as long as Retry-After says, up to maxRetryAfterMs', () => {
    const limited = new RateLimitError('slow down', { status: 429, retryAfterMs: 1500 });
    expect(decideRetry(limited, 0, {})).toMatchObject({ retry: true, delayMs: 1500 });
    expect(decideRetry(limited, 0, { maxRetryAfterMs: 1000 }).retry).toBe(false);
  });
});
