import { createHash, webcrypto } from 'node:crypto';
import type { AskFields } from '@magma-som/schemas';
import type { ModelInfo } from '../engine/types.js';

// The prefix-cache key of an ask (engine/prefix-cache.ts), computed on the main thread from the
// request before anything is decoded, so a hit skips decoding and drawing too. It names what
// the model sees up to the question: the image bytes as uploaded (decoding is deterministic),
// the marks with everything that changes how they are drawn (label, box, colour, sizing mode,
// the bundle's mark minimums), and the model and processor that turn the pixels into features.
// Entries of another model revision or dtype can never match.

const KEY_VERSION = 1;

export async function prefixCacheKey(
  imageBytes: Uint8Array,
  fields: Pick<AskFields, 'marks' | 'markSizing'>,
  info: ModelInfo,
): Promise<string> {
  const header = JSON.stringify({
    v: KEY_VERSION,
    model: [info.name, info.revision, info.dtype, info.executionProvider],
    processor: [info.cropSize, info.maxCrops],
    markMinimums: [info.markMinimums.labelTextHeight, info.markMinimums.outlineWidth],
    markSizing: fields.markSizing,
    // validated marks: keys in schema order, so equal marks serialize equally
    marks: fields.marks,
  });
  // WebCrypto hashes on libuv's thread pool: a 50 MB upload does not stall the event loop
  const digest = await webcrypto.subtle.digest(
    'SHA-256',
    Buffer.concat([Buffer.from(header), Buffer.from([0]), imageBytes]),
  );
  return Buffer.from(digest).toString('base64url');
}

/** Content hash of uploaded image bytes: the id of a stored image (image-store.ts). */
export function imageContentId(bytes: Uint8Array): string {
  return `img_${createHash('sha256').update(bytes).digest('base64url')}`;
}
