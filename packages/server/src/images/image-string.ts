import { splitImageString } from '@magma-som/schemas';
import { ImageError } from './errors.js';

/**
 * Bytes of an image sent as a string: plain base64, or a data URL
 * `data:image/<png|jpeg|webp|gif>;base64,...`. Parsing is the contract's own
 * (`splitImageString`), so the server accepts exactly what the schema accepts.
 * With `maxBytes`, an oversized payload is refused before it is decoded.
 */
export function parseImageString(value: string, maxBytes?: number): Uint8Array {
  const split = splitImageString(value);
  if ('error' in split) throw new ImageError('INVALID_IMAGE', split.error);
  const { base64 } = split;
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  const byteLength = Math.floor((base64.length * 3) / 4) - padding;
  if (maxBytes !== undefined && byteLength > maxBytes) {
    throw new ImageError(
      'PAYLOAD_TOO_LARGE',
      `image is ${byteLength} bytes; the limit is ${maxBytes} bytes`,
    );
  }
  // A fresh Uint8Array that owns its memory (Buffer.from may use the shared pool).
  return new Uint8Array(Buffer.from(base64, 'base64'));
}
