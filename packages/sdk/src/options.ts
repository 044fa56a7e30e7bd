import type { MagmaError } from './errors.js';

/** What `onRetry` is told before the client waits and tries again. */
export interface RetryEvent {
  /** The call, e.g. 'ask', 'askStream', 'info'. */
  readonly operation: string;
  /** The attempt that just failed (1 = the first try). */
  readonly attempt: number;
  /** Milliseconds the client waits before the next attempt. */
  readonly delayMs: number;
  /** Why it retries, in words: "HTTP 503 OVERLOADED, Retry-After 1000 ms". */
  readonly reason: string;
  readonly error: MagmaError;
  readonly idempotencyKey: string | undefined;
}

export interface RetryOptions {
  /** First backoff delay; doubles on every retry. Default 500 ms. */
  readonly initialDelayMs?: number;
  /** Upper bound of a backoff delay. Default 8000 ms. */
  readonly maxDelayMs?: number;
  /** Each delay is multiplied by a random factor in [1 - jitter, 1]. Default 0.25. */
  readonly jitter?: number;
  /**
   * Longest Retry-After the client waits for. When the server asks for more, the call fails at
   * once with the error (its `retryAfterMs` says how long to wait). Default 60000 ms.
   */
  readonly maxRetryAfterMs?: number;
  /**
   * Retry a request the server gave up on at its own deadline (504 DEADLINE_EXCEEDED). Default
   * false: it ran for the whole deadline and would likely do so again.
   */
  readonly retryDeadlineExceeded?: boolean;
  /** Called before every retry: log it, count it. */
  readonly onRetry?: (event: RetryEvent) => void;
}

import type { LogLevel, Logger } from './logger.js';

export interface ClientOptions {
  /** Where the server listens, e.g. "http://localhost:8080". tRPC lives under `${baseUrl}/trpc`. */
  readonly baseUrl: string | URL;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
  /**
   * Limit for one attempt, from sending the request to the last byte of the body (for askStream:
   * to the first event). Default 150000: above the server's default request deadline (120 s,
   * `info().limits`), so a slow request ends with the server's DeadlineExceededError rather than
   * a client timeout. In Node, the global dispatcher also gives up after 300 s without response
   * headers or body data (undici's defaults): for longer limits pass a `dispatcher` with other
   * `headersTimeout` / `bodyTimeout`.
   */
  readonly timeoutMs?: number;
  /** askStream: longest wait between two events once the stream has started. Default 60000. */
  readonly streamIdleTimeoutMs?: number;
  /** Retries after the first attempt for retryable failures. Default 2. */
  readonly maxRetries?: number;
  readonly retry?: RetryOptions;
  /** Extra headers on every request. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A fetch implementation for every call; the global fetch by default (read when a request is
   * made, so a fetch patched later is used). Without it, the Node entry sends calls whose answer
   * is read whole through undici's request() on the same dispatcher, while globalThis.fetch is
   * Node's own. In Node it receives `dispatcher`, when given, as the undici `dispatcher` request
   * option.
   */
  readonly fetch?: typeof fetch;
  /**
   * Node: an undici Dispatcher (Agent, ProxyAgent, EnvHttpProxyAgent, ...) for every request.
   * Without it, requests use Node's global dispatcher: its keep-alive pool, or whatever was set
   * with undici's setGlobalDispatcher() (a proxy, a mock).
   */
  readonly dispatcher?: object;
  /**
   * What the client logs: requests, retries and timings at 'debug', retries at 'info'. Default:
   * the MAGMA_SDK_LOG environment variable, else 'warn'.
   */
  readonly logLevel?: LogLevel;
  /** Where log lines go; console by default. */
  readonly logger?: Logger;
  /**
   * Images larger than this many bytes are sent as a binary upload (multipart) instead of base64
   * inside JSON. Default 1 MiB.
   */
  readonly uploadThresholdBytes?: number;
  /**
   * Send each distinct image once (images.upload) and then only its id, for repeated asks about
   * the same image; an expired id is uploaded again transparently. Default false.
   */
  readonly reuseImages?: boolean;
}

/** Options of one call. */
export interface RequestOptions {
  /** Aborting it stops the call at once, retries included, with APIUserAbortError. */
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  readonly streamIdleTimeoutMs?: number;
  readonly maxRetries?: number;
  /**
   * Sent as `Idempotency-Key`, the same on every attempt of this call, so the server can tell a
   * retry from a new request. Default: a fresh random key per call.
   */
  readonly idempotencyKey?: string;
  /** Extra headers for this call. */
  readonly headers?: Readonly<Record<string, string>>;
}

export const DEFAULTS = {
  timeoutMs: 150_000,
  streamIdleTimeoutMs: 60_000,
  maxRetries: 2,
  initialDelayMs: 500,
  maxDelayMs: 8_000,
  jitter: 0.25,
  maxRetryAfterMs: 60_000,
  uploadThresholdBytes: 1024 * 1024,
} as const;
