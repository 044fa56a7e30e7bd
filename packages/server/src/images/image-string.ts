import { ImageError } from './errors.js';

const DATA_URL_PREFIX = /^data:([^;,]*)((?:;[^;,]*)*);base64,/i;
const ACCEPTED_MEDIA_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Bytes of an image sent as a string: plain base64, or a data URL
 * `data:image/<png|jpeg|webp|gif>;base64,...`. Whitespace inside the base64 is ignored.
 * With `maxBytes`, an oversized payload is refused before it is decoded.
 */
export function parseImageString(value: string, maxBytes?: number): Uint8Array {
  let base64 = value;
  if (value.startsWith('data:')) {
    const match = DATA_URL_PREFIX.exec(value);
    if (!match) {
      throw new ImageError('INVALID_IMAGE', 'data URL must look like data:image/png;base64,...');
    }
    const mediaType = match[1]!.trim().toLowerCase();
    if (!ACCEPTED_MEDIA_TYPES.has(mediaType)) {
      throw new ImageError(
        'INVALID_IMAGE',
        `unsupported media type "${mediaType.slice(0, 64)}"; use image/png, image/jpeg, image/webp or image/gif`,
      );
    }
    base64 = value.slice(match[0].length);
  }
  base64 = base64.replace(/\s+/g, '');
  if (base64.length === 0) throw new ImageError('INVALID_IMAGE', 'image has no data');
  if (base64.length % 4 !== 0 || !BASE64.test(base64)) {
    throw new ImageError('INVALID_IMAGE', 'image is not valid base64');
  }
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  const byteLength = (base64.length / 4) * 3 - padding;
  if (maxBytes !== undefined && byteLength > maxBytes) {
    throw new ImageError(
      'PAYLOAD_TOO_LARGE',
      `image is ${byteLength} bytes; the limit is ${maxBytes} bytes`,
    );
  }
  const buffer = Buffer.from(base64, 'base64');
  // A fresh Uint8Array that owns its memory (Buffer.from may use the shared pool).
  return new Uint8Array(buffer);
}
