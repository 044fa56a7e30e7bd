import { ApiError } from '../errors/api-error.js';

export interface WorkQueueOptions {
  /** Tickets holding an engine slot at once. */
  readonly maxConcurrency: number;
  /** Tickets admitted beyond those holding a slot. */
  readonly queueSize: number;
}

/** Bounds for the Retry-After hint given to refused requests. */
const MIN_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;

/**
 * The bounded queue in front of the engine. A request is admitted first (or refused with
 * OVERLOADED when queueSize + maxConcurrency requests are already admitted), so the memory of
 * decoded images is bounded too; it then waits for one of maxConcurrency engine slots.
 */
export class WorkQueue {
  private admitted = 0;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  /** Moving average of how long a slot is held, for the Retry-After estimate. */
  private averageRunMs = 0;

  constructor(private readonly options: WorkQueueOptions) {}

  /** Admitted requests not yet holding an engine slot. */
  get depth(): number {
    return this.admitted - this.running;
  }

  /** Requests holding an engine slot. */
  get inFlight(): number {
    return this.running;
  }

  get capacity(): number {
    return this.options.queueSize + this.options.maxConcurrency;
  }

  /** How long a refused client should wait before trying again. */
  retryAfterMs(): number {
    const rounds = Math.ceil((this.depth + 1) / this.options.maxConcurrency);
    const estimate = Math.round(this.averageRunMs * rounds);
    return Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, estimate));
  }

  /** Takes a place in the queue, or throws OVERLOADED when there is none. */
  admit(): Ticket {
    if (this.admitted >= this.capacity) {
      throw new ApiError(
        'OVERLOADED',
        `the server is busy (${this.admitted} requests queued or running); try again later`,
        { retryAfterMs: this.retryAfterMs() },
      );
    }
    this.admitted++;
    return new Ticket(this);
  }

  /** Resolves once every admitted request has been released. */
  idle(): Promise<void> {
    if (this.admitted === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** @internal Ticket.acquire */
  requestSlot(grant: () => void): () => void {
    if (this.running < this.options.maxConcurrency && this.waiting.length === 0) {
      this.running++;
      grant();
      return () => {};
    }
    const entry = (): void => {
      this.running++;
      grant();
    };
    this.waiting.push(entry);
    return () => {
      const index = this.waiting.indexOf(entry);
      if (index !== -1) this.waiting.splice(index, 1);
    };
  }

  /** @internal Ticket.release */
  releaseTicket(heldSlotMs: number | undefined): void {
    this.admitted--;
    if (heldSlotMs !== undefined) {
      this.running--;
      this.averageRunMs =
        this.averageRunMs === 0 ? heldSlotMs : 0.8 * this.averageRunMs + 0.2 * heldSlotMs;
      this.waiting.shift()?.();
    }
    if (this.admitted === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}

/** One admitted request's place in the queue. Release it exactly once, in a finally. */
export class Ticket {
  private slotSince: number | undefined;
  private released = false;

  constructor(private readonly queue: WorkQueue) {}

  /**
   * Waits for an engine slot. If the signal aborts first, the ticket leaves the line and the
   * promise rejects with the signal's reason.
   */
  acquire(signal: AbortSignal): Promise<void> {
    if (this.released) throw new Error('ticket already released');
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        leaveLine();
        reject(signal.reason as Error);
      };
      const leaveLine = this.queue.requestSlot(() => {
        signal.removeEventListener('abort', onAbort);
        this.slotSince = performance.now();
        resolve();
      });
      if (this.slotSince === undefined) signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    const held = this.slotSince === undefined ? undefined : performance.now() - this.slotSince;
    this.queue.releaseTicket(held);
  }
}
