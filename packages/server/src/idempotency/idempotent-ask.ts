import { createHash } from 'node:crypto';
import type { AskResponse } from '@magma-som/schemas';
import { ApiError } from '../errors/api-error.js';
import type { AskCall } from '../trpc/context.js';
import type { IdempotencyStore } from './idempotency-store.js';

/** Longest Idempotency-Key accepted (Stripe's limit); longer ones are refused, not truncated. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * Runs an ask through the store when it carries an Idempotency-Key, so a client's retry of a
 * request that already ran (or still runs) costs no second inference. Streamed asks are not
 * deduplicated: their tokens cannot be replayed to a second reader.
 */
export function idempotentAsk(
  store: IdempotencyStore<AskResponse> | undefined,
  call: AskCall,
  ask: (call: AskCall) => Promise<AskResponse>,
): Promise<AskResponse> {
  const key = call.idempotencyKey;
  if (store === undefined || key === undefined || call.onToken !== undefined) return ask(call);
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    return Promise.reject(
      new ApiError('INVALID_INPUT', 'Idempotency-Key must be 1-255 visible ASCII characters', {
        issues: [{ path: ['Idempotency-Key'], message: 'invalid header value' }],
      }),
    );
  }
  // Keys are per client (API key or address): one client cannot read another's results.
  const scoped = `${call.clientKey ?? ''}\n${key}`;
  return store.run(scoped, fingerprint(call), call.signal, (signal) => ask({ ...call, signal }));
}

/** What makes two asks the same request: every field and the image. */
function fingerprint(call: AskCall): string {
  const hash = createHash('sha256').update(JSON.stringify(call.fields));
  hash.update(call.image.kind === 'base64' ? call.image.value : call.image.bytes);
  return hash.digest('base64url');
}
