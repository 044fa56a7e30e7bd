import { ApiError } from '../errors/api-error.js';

export interface IdempotencyStoreOptions {
  /** How long a finished request's result is kept for retries with the same key. */
  readonly ttlMs: number;
  /** Most keys kept at once; past it the oldest finished one is dropped. */
  readonly maxKeys: number;
  /**
   * How long a computation goes on after every request waiting on it has gone (a client that
   * timed out and will retry), before it is cancelled. Default 10 s.
   */
  readonly abandonGraceMs?: number;
  readonly now?: () => number;
}

interface Entry<T> {
  readonly fingerprint: string;
  readonly result: Promise<T>;
  readonly controller: AbortController;
  /** Requests waiting on the result; when the last one goes away, the computation stops. */
  waiters: number;
  /** Infinity while the computation runs. */
  expiresAt: number;
}

/**
 * Requests with an Idempotency-Key: the first one computes; one with the same key while it runs
 * joins it (also within abandonGraceMs after every earlier one disconnected); one after it finished gets the stored result until the TTL ends; one with the same
 * key but a different request is refused (IDEMPOTENCY_KEY_REUSED). Only successes are stored: a
 * failure leaves the key free, so a retry computes again.
 */
export class IdempotencyStore<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #ttlMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #abandonGraceMs: number;

  constructor(options: IdempotencyStoreOptions) {
    this.#ttlMs = options.ttlMs;
    this.#maxKeys = options.maxKeys;
    this.#now = options.now ?? Date.now;
    this.#abandonGraceMs = options.abandonGraceMs ?? 10_000;
  }

  /** Keys held now, running or stored. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * `compute` gets a signal that aborts once every request waiting on it has gone; `signal` is
   * this request's own (its client disconnecting).
   */
  run(
    key: string,
    fingerprint: string,
    signal: AbortSignal,
    compute: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    this.#dropExpired();
    const existing = this.#entries.get(key);
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        return Promise.reject(
          new ApiError(
            'IDEMPOTENCY_KEY_REUSED',
            'this Idempotency-Key was sent before with a different request; use a new key for a new request',
          ),
        );
      }
      return this.#wait(existing, signal);
    }
    if (!this.#makeRoom()) return compute(signal);

    const controller = new AbortController();
    const entry: Entry<T> = {
      fingerprint,
      controller,
      waiters: 0,
      expiresAt: Number.POSITIVE_INFINITY,
      result: compute(controller.signal).then(
        (value) => {
          entry.expiresAt = this.#now() + this.#ttlMs;
          // finished entries sit in the order they expire (one TTL for all; running ones may sit
          // among them): #dropExpired stops at the first finished one that has not expired
          if (this.#entries.get(key) === entry) {
            this.#entries.delete(key);
            this.#entries.set(key, entry);
          }
          return value;
        },
        (error: unknown) => {
          if (this.#entries.get(key) === entry) this.#entries.delete(key);
          throw error;
        },
      ),
    };
    // Waiters see the rejection; this keeps an abandoned computation's from being unhandled.
    entry.result.catch(() => undefined);
    this.#entries.set(key, entry);
    return this.#wait(entry, signal);
  }

  #wait(entry: Entry<T>, signal: AbortSignal): Promise<T> {
    if (entry.expiresAt !== Number.POSITIVE_INFINITY) return entry.result;
    entry.waiters++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        entry.waiters--;
        if (entry.waiters === 0) this.#abandonLater(entry, signal.reason);
        reject(new ApiError('CANCELLED', 'request cancelled: the client disconnected'));
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      entry.result.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error as Error);
        },
      );
    });
  }

  /** A client that sent a key may come back for the answer: give it a while to. */
  #abandonLater(entry: Entry<T>, reason: unknown): void {
    const timer = setTimeout(() => {
      if (entry.waiters === 0 && entry.expiresAt === Number.POSITIVE_INFINITY) {
        entry.controller.abort(reason);
      }
    }, this.#abandonGraceMs);
    timer.unref?.();
  }

  /**
   * Drops expired keys. Runs on every request, so it must not walk the whole store (up to
   * maxKeys): it passes over the running entries and stops at the first finished one that has
   * not expired, as every finished one after it expires later.
   */
  #dropExpired(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt === Number.POSITIVE_INFINITY) continue;
      if (entry.expiresAt > now) return;
      this.#entries.delete(key);
    }
  }

  /** Frees a slot if the store is full, dropping the oldest finished key; false if none is. */
  #makeRoom(): boolean {
    if (this.#entries.size < this.#maxKeys) return true;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt !== Number.POSITIVE_INFINITY) {
        this.#entries.delete(key);
        return true;
      }
    }
    return false;
  }
}
