import type * as ort from 'onnxruntime-node';
import type { EncodedImage } from './magma-model.js';
import type { PromptTokenizer } from './prompt.js';
import { disposeTensor, tensorOf, tensorValues } from './tensors.js';

// Multimodal prefix cache (worker side). Magma's chat template puts the system prompt and the
// image before the question, so every question about one marked image shares the prompt up to
// "<image_end>\n": its vision features and the decoder's keys and values for those positions.
// An entry holds both, under a key the main thread computes from the request (image bytes as
// uploaded, marks and their drawing options, model and processor): a hit skips vision and the
// prefix prefill. Entries are bounded by bytes (least recently used goes first), and are only
// ever read: the KV tensors are fed as `past` inputs, which onnxruntime does not write, so any
// number of hits may share them.

export interface PrefixEntry {
  readonly key: string;
  /** Vision output of the marked image: lets a hit whose question does not tokenize after the prefix still skip vision. */
  readonly image: EncodedImage;
  /** Prompt ids of the prefix, the <image> placeholder not expanded. */
  readonly prefixIds: readonly number[];
  /** Decoder positions of the prefix (image tokens expanded). */
  readonly positions: number;
  /** Keys and values of the prefix, [1, kv_heads, positions, head_dim] per graph input; null when the cache lives on the GPU. */
  readonly kv: readonly ort.Tensor[] | null;
  readonly bytes: number;
}

export interface PrefixCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly bytes: number;
  readonly entries: number;
  readonly budgetBytes: number;
}

/** What changed in the cache: the main thread mirrors the keys to route hits without pixels. */
export interface PrefixCacheChange {
  readonly added: readonly string[];
  readonly evicted: readonly string[];
  readonly stats: PrefixCacheStats;
}

export class PrefixCache {
  /** In least-recently-used order (a Map keeps insertion order; a use re-inserts). */
  private readonly entries = new Map<string, PrefixEntry>();
  /** Entries a planned or running sequence reads: never evicted until let go. */
  private readonly pins = new Map<string, number>();
  private held = 0;
  private hitCount = 0;
  private missCount = 0;
  private evictionCount = 0;

  constructor(readonly budgetBytes: number) {}

  get enabled(): boolean {
    return this.budgetBytes > 0;
  }

  get bytes(): number {
    return this.held;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The entry, marked as just used, and pinned: call unpin when done with it. */
  acquire(key: string): PrefixEntry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1);
    return entry;
  }

  unpin(entry: PrefixEntry): void {
    const count = (this.pins.get(entry.key) ?? 0) - 1;
    if (count > 0) this.pins.set(entry.key, count);
    else this.pins.delete(entry.key);
  }

  countHit(): void {
    this.hitCount++;
  }

  countMiss(): void {
    this.missCount++;
  }

  /**
   * Stores an entry, evicting least recently used unpinned ones until it fits. An entry that
   * cannot fit (bigger than the budget, or the rest is pinned) is not stored: the budget holds.
   */
  insert(entry: PrefixEntry): PrefixCacheChange {
    const evicted: string[] = [];
    if (!this.enabled || this.entries.has(entry.key) || entry.bytes > this.budgetBytes)
      return this.change([], evicted);
    for (const [key, old] of this.entries) {
      if (this.held + entry.bytes <= this.budgetBytes) break;
      if (this.pins.has(key)) continue;
      this.drop(old);
      evicted.push(key);
    }
    if (this.held + entry.bytes > this.budgetBytes) return this.change([], evicted);
    this.entries.set(entry.key, entry);
    this.held += entry.bytes;
    return this.change([entry.key], evicted);
  }

  /** Empties the cache (unpinned entries; pinned ones go when the cache is dropped). */
  clear(): PrefixCacheChange {
    const evicted: string[] = [];
    for (const [key, entry] of this.entries) {
      if (this.pins.has(key)) continue;
      this.drop(entry);
      evicted.push(key);
    }
    return this.change([], evicted);
  }

  stats(): PrefixCacheStats {
    return {
      hits: this.hitCount,
      misses: this.missCount,
      evictions: this.evictionCount,
      bytes: this.held,
      entries: this.entries.size,
      budgetBytes: this.budgetBytes,
    };
  }

  private drop(entry: PrefixEntry): void {
    this.entries.delete(entry.key);
    this.held -= entry.bytes;
    this.evictionCount++;
    // Only GPU buffers need freeing; nothing reads an unpinned entry.
    for (const tensor of entry.kv ?? []) disposeTensor(tensor);
  }

  private change(added: readonly string[], evicted: readonly string[]): PrefixCacheChange {
    return { added, evicted, stats: this.stats() };
  }
}

/**
 * The prompt ids every question shares: those before the question text. Found as the common
 * start of two one-character questions that cannot merge with what precedes them; null (no
 * prefix caching) if that start does not hold the image placeholder.
 */
export function templatePrefixIds(
  prompt: PromptTokenizer,
  imageTokenId: number,
): readonly number[] | null {
  const a = prompt.encodeUserQuestion('A');
  const b = prompt.encodeUserQuestion('?');
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  const prefix = a.slice(0, n);
  return prefix.includes(imageTokenId) ? prefix : null;
}

export function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  if (ids.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (ids[i] !== prefix[i]) return false;
  return true;
}

/**
 * The first `positions` positions of a lone sequence's present ([1, heads, P, head_dim], no
 * padding), copied into tensors of their own: the sequence goes on growing its own cache.
 */
export function slicePrefixKv(present: readonly ort.Tensor[], positions: number): ort.Tensor[] {
  return present.map((tensor) => {
    const [batch, heads, width, headDim] = tensor.dims as [number, number, number, number];
    if (batch !== 1 || width < positions)
      throw new Error(`cannot take ${positions} positions of a [${tensor.dims.join(', ')}] cache`);
    const source = tensorValues(tensor);
    const data =
      source instanceof Uint16Array
        ? new Uint16Array(heads * positions * headDim)
        : new Float32Array(heads * positions * headDim);
    for (let h = 0; h < heads; h++) {
      const from = h * width * headDim;
      data.set(source.subarray(from, from + positions * headDim), h * positions * headDim);
    }
    return tensorOf(tensor.type as 'float32' | 'float16', data, [1, heads, positions, headDim]);
  });
}

/** Bytes an entry holds: its visual tokens and its keys and values. */
export function entryBytes(image: EncodedImage, kv: readonly ort.Tensor[] | null): number {
  let bytes = image.features.byteLength;
  for (const tensor of kv ?? []) bytes += (tensor.data as ArrayBufferView).byteLength;
  return bytes;
}
