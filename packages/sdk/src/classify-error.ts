import { TRPCClientError } from '@trpc/client';
import { ERROR_CODES } from '@magma-som/schemas/plain';
import type { ErrorCode, ErrorIssue } from './contract/types.js';
import {
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  ClientClosedError,
  MagmaError,
  errorForCode,
  errorForStatus,
} from './errors.js';

/** What the client knows about a failed attempt. */
export interface FailedAttempt {
  readonly error: unknown;
  /** The HTTP response, if one arrived before the failure. */
  readonly response?: Response | undefined;
  /** A JSON body already read from `response`, for plain (non-tRPC) routes. */
  readonly body?: unknown;
  readonly timedOut: boolean;
  readonly timeoutMs: number;
  /** The timeout that fired was the stream's idle timeout (timeoutMs is then that one). */
  readonly idle?: boolean;
  readonly userAborted: boolean;
  readonly closed: boolean;
}

/** Turns any failure of one attempt into the SDK's typed error. */
export function classifyFailure(attempt: FailedAttempt): MagmaError {
  const { error, response } = attempt;
  if (error instanceof MagmaError) return error;
  if (attempt.closed) return new ClientClosedError();
  if (attempt.userAborted) return new APIUserAbortError(undefined, { cause: error });
  if (attempt.timedOut)
    return new APITimeoutError(attempt.timeoutMs, { cause: error, idle: attempt.idle ?? false });

  const headers = response?.headers;
  const headerRequestId = headers?.get('x-request-id') ?? undefined;
  const headerRetryAfter = headers ? retryAfterFromHeaders(headers) : undefined;

  const body = attempt.body ?? trpcResponseJson(error);
  const data = readErrorData(trpcErrorData(error) ?? attempt.body);
  if (data) {
    const status = data.httpStatus ?? (response && !response.ok ? response.status : undefined);
    const init = {
      status,
      requestId: data.requestId ?? headerRequestId,
      // undefined: the class's own default (server faults, 408 and 429 are retryable)
      retryable: data.retryable,
      issues: data.issues,
      retryAfterMs: headerRetryAfter ?? data.retryAfterMs,
      headers,
      body,
      cause: error,
    };
    const message = data.message ?? describe(error);
    if (data.code) return errorForCode(data.code, message, init);
    if (status !== undefined) return errorForStatus(status, message, init);
  }

  // A response that is not the contract's error shape: a proxy's 502, Fastify's own 413.
  if (response && !response.ok) {
    return errorForStatus(response.status, httpMessage(response, body), {
      requestId: headerRequestId,
      retryAfterMs: headerRetryAfter,
      headers,
      body,
      cause: error,
    });
  }

  if (isNetworkFailure(error)) {
    return new APIConnectionError(`connection failed: ${networkDetail(error)}`, {
      requestId: headerRequestId,
      headers,
      cause: error,
    });
  }

  // A 200 whose body is not what the contract promises.
  return errorForCode('INTERNAL', `unexpected response from the server: ${describe(error)}`, {
    status: response?.status,
    requestId: headerRequestId,
    retryable: false,
    headers,
    cause: error,
  });
}

/** `retry-after-ms` (milliseconds), then `retry-after` (seconds or an HTTP date). */
export function retryAfterFromHeaders(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '') {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  }
  const after = headers.get('retry-after');
  if (after === null || after.trim() === '') return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.round(seconds * 1000) : undefined;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

interface LooseErrorData {
  code?: ErrorCode;
  message?: string;
  httpStatus?: number;
  retryable?: boolean;
  requestId?: string;
  issues?: ErrorIssue[];
  retryAfterMs?: number;
}

function trpcErrorData(error: unknown): unknown {
  return error instanceof TRPCClientError ? (error.data as unknown) : undefined;
}

function trpcResponseJson(error: unknown): unknown {
  if (!(error instanceof TRPCClientError)) return undefined;
  const meta = error.meta as { responseJSON?: unknown } | undefined;
  return meta?.responseJSON;
}

/**
 * Reads the contract's ErrorData leniently: a server that adds fields, or tRPC's default
 * formatter (whose `code` is a tRPC name), still yields what can be read.
 */
function readErrorData(value: unknown): LooseErrorData | undefined {
  if (!isRecord(value)) return undefined;
  const code = (ERROR_CODES as readonly unknown[]).includes(value.code)
    ? (value.code as ErrorCode)
    : undefined;
  const httpStatus = typeof value.httpStatus === 'number' ? value.httpStatus : undefined;
  if (code === undefined && httpStatus === undefined) return undefined;
  return {
    code,
    httpStatus,
    message: typeof value.message === 'string' ? value.message : undefined,
    retryable: typeof value.retryable === 'boolean' ? value.retryable : undefined,
    requestId: typeof value.requestId === 'string' ? value.requestId : undefined,
    issues: Array.isArray(value.issues) ? (value.issues as ErrorIssue[]) : undefined,
    retryAfterMs: typeof value.retryAfterMs === 'number' ? value.retryAfterMs : undefined,
  };
}

function httpMessage(response: Response, body: unknown): string {
  const detail = isRecord(body) && typeof body.message === 'string' ? `: ${body.message}` : '';
  return `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${detail}`;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  // Node's global dispatcher gives up after 300 s without headers or body data
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * fetch reports network failures as a TypeError: in Node "fetch failed" or "terminated" with a
 * coded cause; in browsers, which say nothing more (a refused connection and a CORS refusal look
 * alike), Chromium's "Failed to fetch", Firefox's "NetworkError when attempting to fetch
 * resource." and Safari's "Load failed".
 */
const FETCH_FAILURES = new Set([
  'fetch failed',
  'terminated',
  'Failed to fetch',
  'NetworkError when attempting to fetch resource.',
  'Load failed',
]);

function isNetworkFailure(error: unknown): boolean {
  for (const e of causeChain(error)) {
    if (isRecord(e) && typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
    if (e instanceof TypeError && FETCH_FAILURES.has(e.message)) return true;
  }
  return false;
}

function networkDetail(error: unknown): string {
  const coded = causeChain(error).find((e) => isRecord(e) && typeof e.code === 'string');
  if (isRecord(coded))
    return `${String(coded.code)}${typeof coded.message === 'string' ? ` (${coded.message})` : ''}`;
  return describe(error);
}

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current = error;
  while (current !== undefined && current !== null && chain.length < 8) {
    chain.push(current);
    current = isRecord(current) ? current.cause : undefined;
  }
  return chain;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
