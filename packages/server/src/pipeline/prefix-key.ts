import { createHash, webcrypto } from 'node:crypto';
import type { AskFields } from '@magma-som/schemas';
import type { ModelInfo } from '../engine/types.js';

// The prefix-cache key of an ask (engine/prefix-cache.ts), computed on the main thread from the
// request before anything is decoded, so a hit skips decoding and drawing too. It names what
// the model sees up to the question: the image bytes as uploaded (decoding is deterministic),
// the marks with everything that changes how they are drawn (label, box, colour, sizing mode,
// the bundle's mark minimums), and the model and processor that turn the pixels into features.
// Entries of another model revision or dtype can never match.

const KEY_VERSION = 2;
const IMAGE_ID_PREFIX = 'img_';

/** Up to this size a hash runs on the event loop (about 0.7 ms per MiB here); above, on libuv's pool. */
const SYNC_HASH_BYTES = 1 << 20;

/**
 * SHA-256 of bytes. Small inputs are hashed at once: handing them to the thread pool (as
 * WebCrypto does) costs more than the hash. Large ones go to the pool, so a 50 MB upload does
 * not stall the event loop.
 */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  if (bytes.byteLength <= SYNC_HASH_BYTES) return createHash('sha256').update(bytes).digest();
  return new Uint8Array(await webcrypto.subtle.digest('SHA-256', bytes));
}

/** Content hash of uploaded image bytes: the id of a stored image (image-store.ts). */
export async function imageContentId(bytes: Uint8Array): Promise<string> {
  return IMAGE_ID_PREFIX + Buffer.from(await sha256(bytes)).toString('base64url');
}

/** The image hash an id stands for (imageContentId's inverse), so an ask by id hashes nothing. */
export function imageDigestOfId(id: string): Uint8Array {
  return Buffer.from(id.slice(IMAGE_ID_PREFIX.length), 'base64url');
}

/**
 * The key: SHA-256 over the drawing and model settings and the image's own SHA-256 (`imageDigest`,
 * from sha256() or imageDigestOfId()), so equal bytes give equal keys however they were sent.
 */
export function prefixCacheKey(
  imageDigest: Uint8Array,
  fields: Pick<AskFields, 'marks' | 'markSizing'>,
  info: ModelInfo,
): string {
  const header = JSON.stringify({
    v: KEY_VERSION,
    model: [info.name, info.revision, info.dtype, info.executionProvider],
    processor: [info.cropSize, info.maxCrops],
    markMinimums: [info.markMinimums.labelTextHeight, info.markMinimums.outlineWidth],
    markSizing: fields.markSizing,
    // validated marks: keys in schema order, so equal marks serialize equally
    marks: fields.marks,
  });
  return createHash('sha256')
    .update(header)
    .update(new Uint8Array([0]))
    .update(imageDigest)
    .digest('base64url');
}
