import { splitImageString } from '@magma-som/schemas';
import { ImageError } from './errors.js';
import { ownedBytes } from '../buffers/owned-bytes.js';

export interface ImageStringOptions {
  /** The most bytes accepted: an oversized payload is refused before it is decoded. */
  readonly maxBytes?: number;
  /**
   * The string already passed the contract's ImageInputSchema (the JSON asks), which checked
   * its base64: only a data-URL prefix is cut off here (Buffer's decoder skips line breaks).
   * A second pass over a 300 kB string cost 0.4-0.7 ms of the main thread.
   */
  readonly checked?: boolean;
}

/**
 * Bytes of an image sent as a string: plain base64, or a data URL
 * `data:image/<png|jpeg|webp|gif>;base64,...`. Parsing is the contract's own
 * (`splitImageString`), so the server accepts exactly what the schema accepts.
 */
export function parseImageString(value: string, options: ImageStringOptions = {}): Uint8Array {
  const { maxBytes, checked = false } = options;
  let base64 = checked ? withoutDataUrlPrefix(value) : checkedPayload(value);
  if (maxBytes !== undefined && decodedLength(base64) > maxBytes) {
    // line breaks count in a checked string's estimate: the exact size is the cleaned payload's
    if (checked) base64 = checkedPayload(value);
    const byteLength = decodedLength(base64);
    if (byteLength > maxBytes) {
      throw new ImageError(
        'PAYLOAD_TOO_LARGE',
        `image is ${byteLength} bytes; the limit is ${maxBytes} bytes`,
      );
    }
  }
  // a small Buffer is a view of the shared pool, a large one has a buffer of its own
  return ownedBytes(Buffer.from(base64, 'base64'));
}

/** The base64 payload, checked and without line breaks; an ImageError if it is not one. */
function checkedPayload(value: string): string {
  const split = splitImageString(value);
  if ('error' in split) throw new ImageError('INVALID_IMAGE', split.error);
  return split.base64;
}

function withoutDataUrlPrefix(value: string): string {
  return value.startsWith('data:') ? value.slice(value.indexOf(',') + 1) : value;
}

/** Bytes that a base64 payload without line breaks decodes to. */
function decodedLength(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return Math.floor((base64.length * 3) / 4) - padding;
}
