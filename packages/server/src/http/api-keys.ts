import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** The key a request presents: `Authorization: Bearer <key>`, else `x-api-key`. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const header = headers['x-api-key'];
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined || value.length === 0 ? undefined : value.trim();
}

/**
 * Checks API keys in constant time: both sides are hashed first, so neither the content nor
 * the length of a configured key leaks through timing, and every key is compared every time.
 */
export class ApiKeys {
  private readonly digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(sha256);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  isValid(key: string | undefined): boolean {
    if (key === undefined) return false;
    const digest = sha256(key);
    let match = false;
    for (const known of this.digests) {
      if (timingSafeEqual(digest, known)) match = true;
    }
    return match;
  }
}

/** A name for a key that is safe to log and to rate-limit by: never the key itself. */
export function keyId(key: string): string {
  return `key:${sha256(key).toString('hex').slice(0, 12)}`;
}
