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
  /** Counts failed authentications per address (only failures are counted). */
  private readonly failureLimiter: Limiter | undefined;
  /** Addresses over the failure limit, until when: they get 429 whatever key they send. */
  private readonly blockedUntil = new Map<string, number>();

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
    this.failureLimiter =
      this.keys.enabled && config.authFailureMax > 0
        ? app.createRateLimit({
            max: config.authFailureMax,
            timeWindow: config.authFailureWindowMs,
            keyGenerator: (request) => `auth-failure:${request.ip}`,
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

  /**
   * Throws UNAUTHORIZED or RATE_LIMITED (with the wait) when the call may not proceed. Runs in
   * an onRequest hook, before the body is read. An address that failed authentication more
   * than MAGMA_AUTH_FAILURE_MAX times in the window gets 429 for the rest of it, even with a
   * right key, so keys cannot be guessed at speed.
   */
  async check(request: FastifyRequest): Promise<void> {
    if (this.keys.enabled) {
      const until = this.blockedUntil.get(request.ip);
      if (until !== undefined && until > Date.now()) throw this.authBlocked(until - Date.now());
      if (until !== undefined) this.blockedUntil.delete(request.ip);
      if (!this.keys.isValid(presentedKey(request.headers))) {
        await this.countFailure(request);
        throw new ApiError(
          'UNAUTHORIZED',
          'missing or wrong API key (Authorization: Bearer <key>)',
        );
      }
    }
    if (this.limiter === undefined) return;
    const limit = await this.limiter(request);
    if (!limit.isAllowed && limit.isExceeded) {
      throw new ApiError('RATE_LIMITED', `more than ${limit.max} requests in the window`, {
        retryAfterMs: limit.ttl,
      });
    }
  }

  private async countFailure(request: FastifyRequest): Promise<void> {
    if (this.failureLimiter === undefined) return;
    const limit = await this.failureLimiter(request);
    if (limit.isAllowed || !limit.isExceeded) return;
    // Bounded: the oldest entry goes first (Map keeps insertion order).
    if (this.blockedUntil.size >= MAX_BLOCKED_ADDRESSES) {
      this.blockedUntil.delete(this.blockedUntil.keys().next().value!);
    }
    this.blockedUntil.set(request.ip, Date.now() + limit.ttl);
    throw this.authBlocked(limit.ttl);
  }

  private authBlocked(waitMs: number): ApiError {
    return new ApiError('RATE_LIMITED', 'too many failed authentications from this address', {
      retryAfterMs: Math.max(0, Math.ceil(waitMs)),
    });
  }
}

/** Addresses remembered as blocked at once; beyond it the oldest is forgotten. */
const MAX_BLOCKED_ADDRESSES = 10_000;
