interface Waiter {
  readonly pixels: number;
  readonly grant: () => void;
}

/**
 * A semaphore counted in pixels for decodes in flight: a burst of large images waits its turn
 * instead of decoding all at once (a 51 KB PNG may declare 40 M pixels: ~160 MB and seconds
 * of CPU each). First come, first served, so a large image is not starved by small ones.
 */
export class PixelBudget {
  private used = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly capacity: number) {}

  /** Pixels held by decodes now. */
  get inUse(): number {
    return this.used;
  }

  /** Decodes waiting for pixels. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Waits until `pixels` fit (an image larger than the whole budget waits until it is the only
   * one) and returns the release. Aborting the signal leaves the line with its reason.
   */
  acquire(pixels: number, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    const want = Math.min(pixels, this.capacity);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.used -= want;
      this.grantWaiting();
    };
    if (this.waiters.length === 0 && this.used + want <= this.capacity) {
      this.used += want;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pixels: want,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        this.grantWaiting();
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private grantWaiting(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.pixels <= this.capacity) {
      const waiter = this.waiters.shift()!;
      this.used += waiter.pixels;
      waiter.grant();
    }
  }
}
