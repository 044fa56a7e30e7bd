import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config/config.js';
import { ApiError } from '../errors/api-error.js';
import { ApiKeys, keyId, presentedKey } from './api-keys.js';

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

/**
 * Who may call the API, and how often: API keys (when configured) and the per-key (or
 * per-address) rate limit of @fastify/rate-limit. Applied to tRPC calls only; /health, /ready
 * and /metrics stay open for probes and scrapers.
 */
export class AccessControl {
  private readonly keys: ApiKeys;
  private readonly limiter: Limiter | undefined;

  /** Registers @fastify/rate-limit on `app` first (non-global). */
  constructor(app: FastifyInstance, config: ServerConfig) {
    this.keys = new ApiKeys(config.apiKeys);
    this.limiter =
      config.rateLimitMax > 0
        ? app.createRateLimit({
            max: config.rateLimitMax,
            timeWindow: config.rateLimitWindowMs,
            keyGenerator: (request) => this.clientKey(request),
          })
        : undefined;
  }

  /** The rate-limit and log identity of a caller: a hash of a valid key, else the address. */
  clientKey(request: FastifyRequest): string {
    const key = presentedKey(request.headers);
    return this.keys.enabled && key !== undefined && this.keys.isValid(key)
      ? keyId(key)
      : `ip:${request.ip}`;
  }

  /** Throws UNAUTHORIZED or RATE_LIMITED (with the wait) when the call may not proceed. */
  async check(request: FastifyRequest): Promise<void> {
    if (this.keys.enabled && !this.keys.isValid(presentedKey(request.headers))) {
      throw new ApiError('UNAUTHORIZED', 'missing or wrong API key (Authorization: Bearer <key>)');
    }
    if (this.limiter === undefined) return;
    const limit = await this.limiter(request);
    if (!limit.isAllowed && limit.isExceeded) {
      throw new ApiError('RATE_LIMITED', `more than ${limit.max} requests in the window`, {
        retryAfterMs: limit.ttl,
      });
    }
  }
}
