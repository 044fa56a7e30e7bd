import pRetry, { AbortError } from 'p-retry';
import {
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  ClientClosedError,
  DeadlineExceededError,
  MagmaError,
} from './errors.js';
import { DEFAULTS } from './options.js';
import type { RetryEvent, RetryOptions } from './options.js';

export interface RetryContext {
  readonly operation: string;
  readonly maxRetries: number;
  readonly retry: RetryOptions;
  /** The caller's signal: aborting stops at once. */
  readonly signal: AbortSignal | undefined;
  /** Fires when the client is closed: no further attempts. */
  readonly closeSignal: AbortSignal;
  readonly idempotencyKey: string | undefined;
}

/** What to do after a failed attempt. */
export type RetryDecision =
  { retry: false; why: string } | { retry: true; delayMs: number; reason: string };

/**
 * Runs `attempt` until it succeeds, a failure is not retryable, or retries run out. `attempt`
 * must throw MagmaErrors. Waits with exponential backoff and jitter, or as Retry-After says.
 */
export async function withRetries<T>(
  context: RetryContext,
  attempt: (attemptNumber: number) => Promise<T>,
): Promise<T> {
  const stop = context.signal
    ? AbortSignal.any([context.signal, context.closeSignal])
    : context.closeSignal;
  let attempts = 0;
  try {
    return await pRetry(
      async (attemptNumber) => {
        attempts = attemptNumber;
        if (context.closeSignal.aborted) throw new AbortError(new ClientClosedError());
        try {
          return await attempt(attemptNumber);
        } catch (error) {
          if (error instanceof APIUserAbortError || error instanceof ClientClosedError)
            throw new AbortError(error);
          throw error;
        }
      },
      {
        retries: context.maxRetries,
        // p-retry's own delay is switched off: shouldRetry waits, so Retry-After can set the delay.
        minTimeout: 0,
        maxTimeout: 0,
        factor: 1,
        // Only the caller's signal: closing the client lets an attempt in flight finish.
        signal: context.signal,
        shouldRetry: async ({ error, retriesConsumed }) => {
          if (!(error instanceof MagmaError)) return false;
          const decision = decideRetry(error, retriesConsumed, context.retry);
          if (!decision.retry) return false;
          const event: RetryEvent = {
            operation: context.operation,
            attempt: retriesConsumed + 1,
            delayMs: decision.delayMs,
            reason: decision.reason,
            error,
            idempotencyKey: context.idempotencyKey,
          };
          context.retry.onRetry?.(event);
          await sleep(decision.delayMs, stop);
          return true;
        },
      },
    );
  } catch (error) {
    const typed = stopError(error, context) ?? error;
    if (typed instanceof MagmaError) typed.attempts = Math.max(attempts, 1);
    throw typed;
  }
}

/** Whether, and after how long, a failed attempt is tried again. */
export function decideRetry(
  error: MagmaError,
  retriesConsumed: number,
  options: RetryOptions,
): RetryDecision {
  if (error instanceof APIUserAbortError || error instanceof ClientClosedError) {
    return { retry: false, why: error.message };
  }
  const shouldRetry = error.headers?.get('x-should-retry');
  const retryable =
    shouldRetry === 'true' ? true : shouldRetry === 'false' ? false : error.retryable;
  if (!retryable) return { retry: false, why: `${describeFailure(error)} is not retryable` };
  if (
    error instanceof DeadlineExceededError &&
    shouldRetry !== 'true' &&
    !options.retryDeadlineExceeded
  ) {
    return { retry: false, why: `${describeFailure(error)}: the server's deadline ran out` };
  }

  const maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs;
  if (error.retryAfterMs !== undefined) {
    if (error.retryAfterMs > maxRetryAfterMs) {
      return {
        retry: false,
        why: `Retry-After ${error.retryAfterMs} ms exceeds maxRetryAfterMs ${maxRetryAfterMs}`,
      };
    }
    return {
      retry: true,
      delayMs: error.retryAfterMs,
      reason: `${describeFailure(error)}, Retry-After ${error.retryAfterMs} ms`,
    };
  }
  const delayMs = backoffDelay(retriesConsumed, options);
  return { retry: true, delayMs, reason: `${describeFailure(error)}, backoff ${delayMs} ms` };
}

/** min(initial * 2^n, max) * a random factor in [1 - jitter, 1]. */
export function backoffDelay(
  retriesConsumed: number,
  options: RetryOptions,
  random = Math.random(),
): number {
  const initial = options.initialDelayMs ?? DEFAULTS.initialDelayMs;
  const max = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
  const jitter = Math.min(Math.max(options.jitter ?? DEFAULTS.jitter, 0), 1);
  const base = Math.min(initial * 2 ** retriesConsumed, max);
  return Math.round(base * (1 - jitter * random));
}

function describeFailure(error: MagmaError): string {
  if (error instanceof APITimeoutError) return `timeout after ${error.timeoutMs} ms`;
  if (error instanceof APIConnectionError) return error.message;
  return error.status === undefined ? error.code : `HTTP ${error.status} ${error.code}`;
}

/** p-retry rethrows an aborted signal's reason; turn that into the SDK's error. */
function stopError(error: unknown, context: RetryContext): MagmaError | undefined {
  if (error instanceof MagmaError) return error;
  if (context.signal?.aborted) return new APIUserAbortError(undefined, { cause: error });
  if (context.closeSignal.aborted) return new ClientClosedError();
  return undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
