import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** Longest request id accepted from a client; longer ones are replaced. */
export const MAX_REQUEST_ID_LENGTH = 128;
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]+$/;

/**
 * The id of a request: the client's `x-request-id` when it is short and made of safe
 * characters (so it can go into logs and headers as is), else a fresh UUID.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  if (
    value !== undefined &&
    value.length > 0 &&
    value.length <= MAX_REQUEST_ID_LENGTH &&
    SAFE_REQUEST_ID.test(value)
  ) {
    return value;
  }
  return randomUUID();
}

/**
 * The id of the request being handled, for code that gets no request or context (tRPC's error
 * formatter when an error happens before the context exists). Entered just before each
 * handler runs, after the body is parsed (body parsing callbacks would lose it).
 */
export const currentRequest = new AsyncLocalStorage<string>();
