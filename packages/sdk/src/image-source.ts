import {
  DEFAULT_LIMITS,
  IMAGE_MEDIA_TYPES,
  MAX_IMAGE_STRING_CHARS,
  isImageId,
  splitImageString,
} from '@magma-som/schemas/plain';
import type { ImageMediaType } from './contract/types.js';
import { InvalidImageError } from './errors.js';
import { base64ToBytes, bytesToBase64 } from './web/base64.js';

/**
 * An image to ask about:
 * - the id of an image stored with `client.images.upload()` (`img_...`);
 * - Node (and Deno, Bun): a file path (string) or a `file:` URL;
 * - a data URL (`data:image/png;base64,...`);
 * - base64 of the file bytes (a string of 64 or more base64 characters);
 * - the file bytes as a Buffer, Uint8Array or ArrayBuffer, or a Blob.
 * PNG, JPEG, WebP and GIF are accepted.
 */
export type ImageSource = string | URL | Uint8Array | ArrayBuffer | Blob;

/** An image ready to send: the encoded file bytes, or a base64 / data-URL string. */
export type LoadedImage =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array; readonly mediaType: ImageMediaType }
  | { readonly kind: 'string'; readonly value: string; readonly byteLength: number };

/** Reads an image file by path or `file:` URL (the Node entry's client can; see client.ts). */
export type ReadImageFile = (path: string | URL) => Promise<Uint8Array>;

// Shorter strings are taken for file paths: no real image encodes to fewer base64 characters.
const MIN_BASE64_CHARS = 64;
const BASE64_CHARS = /^[A-Za-z0-9+/\s]+={0,2}\s*$/;

/** Reads or decodes just enough of an image source to send it. */
export async function loadImage(
  source: ImageSource,
  readFile: ReadImageFile,
): Promise<LoadedImage> {
  if (typeof source === 'string') {
    if (
      source.startsWith('data:') ||
      (source.length >= MIN_BASE64_CHARS && BASE64_CHARS.test(source))
    ) {
      return checkImageString(source);
    }
    return fromBytes(await readFile(source));
  }
  if (source instanceof URL) {
    if (source.protocol !== 'file:') {
      throw new InvalidImageError(
        `only file: URLs are read; fetch ${source.protocol} images yourself`,
      );
    }
    return fromBytes(await readFile(source));
  }
  if (source instanceof Uint8Array) return fromBytes(source);
  if (source instanceof ArrayBuffer) return fromBytes(new Uint8Array(source));
  if (source instanceof Blob) return fromBytes(new Uint8Array(await source.arrayBuffer()));
  throw new InvalidImageError(
    'image must be a path, data URL, base64 string, Buffer, Uint8Array, ArrayBuffer or Blob',
  );
}

/** Base64 of the image, for the JSON path. */
export function imageAsString(image: LoadedImage): string {
  return image.kind === 'string' ? image.value : bytesToBase64(image.bytes);
}

/** The image bytes, for the binary upload path. */
export function imageAsBytes(image: LoadedImage): { bytes: Uint8Array; mediaType: ImageMediaType } {
  if (image.kind === 'bytes') return image;
  const split = splitImageString(image.value);
  if ('error' in split) throw new InvalidImageError(split.error);
  const bytes = base64ToBytes(split.base64);
  return { bytes, mediaType: split.mediaType ?? sniffMediaType(bytes) ?? 'image/png' };
}

export function imageByteLength(image: LoadedImage): number {
  return image.kind === 'bytes' ? image.bytes.byteLength : image.byteLength;
}

/** The format of encoded image bytes, from their first bytes. */
export function sniffMediaType(bytes: Uint8Array): ImageMediaType | undefined {
  const starts = (...values: number[]) => values.every((value, i) => bytes[i] === value);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  const riff = starts(0x52, 0x49, 0x46, 0x46);
  const webp = bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50;
  if (riff && webp) return 'image/webp';
  return undefined;
}

function fromBytes(bytes: Uint8Array): LoadedImage {
  if (bytes.byteLength === 0) throw new InvalidImageError('image is empty');
  const mediaType = sniffMediaType(bytes);
  if (!mediaType) throw new InvalidImageError(`image is not ${IMAGE_MEDIA_TYPES.join(', ')}`);
  return { kind: 'bytes', bytes, mediaType };
}

function checkImageString(value: string): LoadedImage {
  const split = splitImageString(value);
  if ('error' in split) throw new InvalidImageError(split.error);
  // Only the first bytes are decoded: enough to recognise the format.
  const head = base64ToBytes(split.base64.slice(0, 16));
  if (!sniffMediaType(head))
    throw new InvalidImageError(`image is not ${IMAGE_MEDIA_TYPES.join(', ')}`);
  const padding = split.base64.endsWith('==') ? 2 : split.base64.endsWith('=') ? 1 : 0;
  const byteLength = Math.floor((split.base64.length * 3) / 4) - padding;
  return { kind: 'string', value, byteLength };
}

/**
 * Checks an image string as the contract's ImageInputSchema does, before it is sent.
 * `formChecked`: the string is known to be well-formed (loadImage checked it, or this SDK wrote
 * it from bytes), so only its size is checked.
 */
export function checkImageStringSchema(value: string, { formChecked = false } = {}): void {
  const problem =
    value.length === 0
      ? 'image is empty'
      : value.length > MAX_IMAGE_STRING_CHARS
        ? `image is larger than ${DEFAULT_LIMITS.maxImageBytes} bytes; use the binary upload`
        : formChecked || isImageId(value)
          ? undefined
          : (splitImageString(value) as { error?: string }).error;
  if (problem !== undefined) {
    throw new InvalidImageError(problem, { issues: [{ path: ['image'], message: problem }] });
  }
}
