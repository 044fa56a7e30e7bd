import { describe, expect, it } from 'vitest';
import {
  ERROR_CATALOG,
  ERROR_CODES,
  ErrorDataSchema,
  errorCodeForStatus,
  errorData,
  HealthSchema,
  ReadinessSchema,
} from '../src/index.js';

describe('error catalog', () => {
  it('gives every code a status, a tRPC code and a retryability', () => {
    for (const code of ERROR_CODES) {
      const info = ERROR_CATALOG[code];
      expect(info.httpStatus).toBeGreaterThanOrEqual(400);
      expect(info.trpcCode).toMatch(/^[A-Z_]+$/);
      // Client faults are never worth retrying; server faults, 429 and 408 (too slow) are. 501
      // (JOBS_NOT_ENABLED) is how the server is configured, not a fault: asking again is no use.
      const fault = info.httpStatus >= 500 && info.httpStatus !== 501;
      const retry = fault || info.httpStatus === 429 || info.httpStatus === 408;
      if (retry) expect(info.retryable).toBe(true);
      else expect(info.retryable).toBe(false);
    }
  });

  it('maps the statuses the contract promises', () => {
    expect(ERROR_CATALOG.INVALID_MARKS.httpStatus).toBe(400);
    expect(ERROR_CATALOG.UNAUTHORIZED.httpStatus).toBe(401);
    expect(ERROR_CATALOG.PAYLOAD_TOO_LARGE.httpStatus).toBe(413);
    expect(ERROR_CATALOG.RATE_LIMITED.httpStatus).toBe(429);
    expect(ERROR_CATALOG.OVERLOADED.httpStatus).toBe(503);
    expect(ERROR_CATALOG.MODEL_NOT_READY.httpStatus).toBe(503);
    expect(ERROR_CATALOG.DEADLINE_EXCEEDED.httpStatus).toBe(504);
    expect(ERROR_CATALOG.INFERENCE_FAILED.httpStatus).toBe(500);
    expect(ERROR_CATALOG.METHOD_NOT_ALLOWED.httpStatus).toBe(405);
    expect(ERROR_CATALOG.REQUEST_TIMEOUT.httpStatus).toBe(408);
    expect(ERROR_CATALOG.URI_TOO_LONG.httpStatus).toBe(414);
    expect(ERROR_CATALOG.UNSUPPORTED_MEDIA_TYPE.httpStatus).toBe(415);
    expect(ERROR_CATALOG.HEADERS_TOO_LARGE.httpStatus).toBe(431);
  });

  it('builds valid error data and drops absent extras', () => {
    const data = errorData('RATE_LIMITED', 'slow down', {
      requestId: 'r1',
      retryAfterMs: 1000,
      issues: undefined,
    });
    expect(ErrorDataSchema.parse(data)).toEqual({
      code: 'RATE_LIMITED',
      message: 'slow down',
      httpStatus: 429,
      retryable: true,
      requestId: 'r1',
      retryAfterMs: 1000,
    });
    expect('issues' in data).toBe(false);
  });

  it('classifies bare statuses from proxies', () => {
    expect(errorCodeForStatus(502)).toBe('OVERLOADED');
    expect(errorCodeForStatus(500)).toBe('INFERENCE_FAILED');
    expect(errorCodeForStatus(507)).toBe('INTERNAL');
    expect(errorCodeForStatus(408)).toBe('REQUEST_TIMEOUT');
    expect(errorCodeForStatus(405)).toBe('METHOD_NOT_ALLOWED');
    expect(errorCodeForStatus(415)).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(errorCodeForStatus(418)).toBe('INVALID_INPUT');
  });
});

describe('health shapes', () => {
  it('accept what the server reports', () => {
    expect(HealthSchema.safeParse({ status: 'ok', version: '0.1.0', uptimeMs: 5 }).success).toBe(
      true,
    );
    expect(
      ReadinessSchema.safeParse({
        ready: false,
        modelLoaded: true,
        warm: false,
        shuttingDown: false,
        reason: 'warming up',
      }).success,
    ).toBe(true);
    expect(HealthSchema.safeParse({ status: 'down', version: '0.1.0', uptimeMs: 5 }).success).toBe(
      false,
    );
  });
});
