// A buffer that one thread decodes image after image into. A 36 MP image is 108 MB of RGB: a
// buffer of its own per image meant mapping and faulting in 108 MB each time, then a full
// garbage collection to give it back (V8 frees an ArrayBuffer's memory only when it collects
// it), and on 2 cores those collections' helper threads and the kernel's address-space lock
// took turns with the event loop. One buffer, reused while images keep coming and dropped
// after a pause, does neither. It grows by keeping the decoder's own buffer when an image did
// not fit, so nothing is allocated for an image the native decoders leave to sharp.

export class PixelScratch {
  private buffer: ArrayBuffer | undefined;

  /** `maxBytes`: the most it holds; a larger image keeps a buffer of its own. */
  constructor(readonly maxBytes = Number.POSITIVE_INFINITY) {}

  /** Whether an image of `bytes` ends up in the scratch. */
  fits(bytes: number): boolean {
    return bytes <= this.maxBytes;
  }

  /** The buffer held, for a decoder to write into when it is large enough. */
  get held(): ArrayBuffer | undefined {
    return this.buffer;
  }

  /** Keeps a decoder's own buffer as the scratch when it fits and is larger than the one held. */
  keep(buffer: ArrayBuffer): void {
    if (this.fits(buffer.byteLength) && buffer.byteLength > this.heldBytes) this.buffer = buffer;
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
