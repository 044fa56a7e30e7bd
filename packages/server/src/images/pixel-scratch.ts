// A buffer that one thread decodes image after image into. A 36 MP image is 108 MB of RGB: a
// buffer of its own per image meant mapping and faulting in 108 MB each time, then a full
// garbage collection to give it back (V8 frees an ArrayBuffer's memory only when it collects
// it), and on 2 cores those collections' helper threads and the kernel's address-space lock
// took turns with the event loop. One buffer, reused while images keep coming and dropped
// after a pause, does neither.

export class PixelScratch {
  private buffer: ArrayBuffer | undefined;

  /** `maxBytes`: the most it holds; a larger image gets a buffer of its own. */
  constructor(readonly maxBytes = Number.POSITIVE_INFINITY) {}

  /** Whether an image of `bytes` is decoded into the scratch. */
  fits(bytes: number): boolean {
    return bytes <= this.maxBytes;
  }

  /**
   * A buffer of at least `bytes`: the one held, or a new one (then held) if that is smaller;
   * undefined when `bytes` is over maxBytes.
   */
  bufferFor(bytes: number): ArrayBuffer | undefined {
    if (!this.fits(bytes)) return undefined;
    if (this.buffer === undefined || this.buffer.byteLength < bytes) {
      this.buffer = undefined; // the old one can go before the new one is allocated
      this.buffer = new ArrayBuffer(bytes);
    }
    return this.buffer;
  }

  /** Bytes held now. */
  get heldBytes(): number {
    return this.buffer?.byteLength ?? 0;
  }

  /** Lets the buffer go (its memory returns at the next garbage collection). */
  release(): void {
    this.buffer = undefined;
  }
}
