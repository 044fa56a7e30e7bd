// Uploaded images kept for repeated asks (images.upload, then asks with `image: "img_..."`):
// the bytes as uploaded, under their content hash, so the same upload always gets the same id
// and the prefix cache's key of an ask by id is the key of the same ask with the bytes. Kept
// for a TTL after the upload and after each use, within a byte budget (least recently used
// first). Main thread, memory only: a restarted server knows no ids (IMAGE_NOT_FOUND).

interface Stored {
  readonly bytes: Uint8Array;
  expiresAt: number;
}

export class ImageStore {
  private readonly images = new Map<string, Stored>();
  private held = 0;

  constructor(
    readonly budgetBytes: number,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.images.size;
  }

  /**
   * Stores the bytes under `id`, their content hash (imageContentId), or refreshes the same
   * upload; returns the id. Undefined if they cannot fit the budget.
   */
  put(bytes: Uint8Array, id: string): string | undefined {
    this.expire();
    const existing = this.images.get(id);
    if (existing !== undefined) {
      this.touch(id, existing);
      return id;
    }
    if (bytes.byteLength > this.budgetBytes) return undefined;
    for (const [oldId, old] of this.images) {
      if (this.held + bytes.byteLength <= this.budgetBytes) break;
      this.drop(oldId, old);
    }
    // a copy of its own: the caller's buffer may be a view into a larger one
    this.images.set(id, { bytes: bytes.slice(), expiresAt: this.now() + this.ttlMs });
    this.held += bytes.byteLength;
    return id;
  }

  /** The bytes of an id, its TTL renewed; undefined if unknown or expired. */
  get(id: string): Uint8Array | undefined {
    const stored = this.images.get(id);
    if (stored === undefined) return undefined;
    if (stored.expiresAt <= this.now()) {
      this.drop(id, stored);
      return undefined;
    }
    this.touch(id, stored);
    return stored.bytes;
  }

  private touch(id: string, stored: Stored): void {
    stored.expiresAt = this.now() + this.ttlMs;
    this.images.delete(id);
    this.images.set(id, stored);
  }

  private expire(): void {
    const now = this.now();
    // least recently used first, so the expired ones are at the front
    for (const [id, stored] of this.images) {
      if (stored.expiresAt > now) break;
      this.drop(id, stored);
    }
  }

  private drop(id: string, stored: Stored): void {
    this.images.delete(id);
    this.held -= stored.bytes.byteLength;
  }
}
