// The size of a PNG or JPEG read from its first bytes, for files that carry no EXIF (where
// sharp would find an orientation to apply). Every miss reads an image's header before its
// decode is budgeted; asking sharp costs a trip through libuv's thread pool (about 0.8 ms in
// the busy server against microseconds here). Whenever a file is anything but plain, the
// answer is undefined and sharp reads the header, as before; the decode checks that the pixels
// have the size said here.

import type { ImageFormat } from './decode.js';

export interface PlainSize {
  readonly width: number;
  readonly height: number;
}

/**
 * Segments or chunks looked at before giving up: real headers have a few dozen, and the scan
 * runs on the event loop, so a file built of millions of empty segments goes to sharp instead.
 */
const MAX_STEPS = 256;

const readU16 = (bytes: Uint8Array, at: number): number => (bytes[at]! << 8) | bytes[at + 1]!;
const readU32 = (bytes: Uint8Array, at: number): number =>
  readU16(bytes, at) * 0x10000 + readU16(bytes, at + 2);
/** Whether `text` (ASCII) is spelled in `bytes` from `at` on: magic numbers, chunk and segment tags. */
export const hasAscii = (bytes: Uint8Array, at: number, text: string): boolean =>
  at + text.length <= bytes.length &&
  [...text].every((char, i) => bytes[at + i] === char.charCodeAt(0));

/** IHDR's size, when no eXIf chunk comes before the image data. */
function plainPngSize(bytes: Uint8Array): PlainSize | undefined {
  // signature (8), then IHDR: length (4), type (4), width (4), height (4)
  if (bytes.length < 33 || !hasAscii(bytes, 12, 'IHDR')) return undefined;
  const size = { width: readU32(bytes, 16), height: readU32(bytes, 20) };
  if (size.width === 0 || size.height === 0) return undefined; // invalid: sharp says so
  for (let at = 8, step = 0; at + 8 <= bytes.length && step < MAX_STEPS; step++) {
    if (hasAscii(bytes, at + 4, 'eXIf')) return undefined;
    if (hasAscii(bytes, at + 4, 'IDAT')) return size;
    at += 12 + readU32(bytes, at); // length, type, data, CRC
  }
  return undefined; // no image data, or too many chunks: sharp reads it
}

/** Start-of-frame markers (baseline, progressive, lossless, arithmetic): not DHT, JPG or DAC. */
const isStartOfFrame = (marker: number): boolean =>
  marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

/** The frame header's size, when no APP1 Exif segment comes before the scan. */
function plainJpegSize(bytes: Uint8Array): PlainSize | undefined {
  let size: PlainSize | undefined;
  for (let at = 2, step = 0; at + 4 <= bytes.length && step < MAX_STEPS; step++) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xda) return size; // start of scan: every header segment has been seen
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) return undefined;
    const length = readU16(bytes, at + 2);
    if (length < 2) return undefined;
    if (marker === 0xe1 && hasAscii(bytes, at + 4, 'Exif\0\0')) return undefined;
    if (isStartOfFrame(marker)) {
      if (size !== undefined || at + 9 > bytes.length) return undefined;
      const height = readU16(bytes, at + 5);
      const width = readU16(bytes, at + 7);
      // height 0: given later by a DNL marker, which sharp handles
      if (width === 0 || height === 0) return undefined;
      size = { width, height };
    }
    at += 2 + length;
  }
  return undefined;
}

/** Size of a plain PNG or JPEG from its header bytes; undefined for anything else or when unsure. */
export function plainImageSize(bytes: Uint8Array, format: ImageFormat): PlainSize | undefined {
  if (format === 'png') return plainPngSize(bytes);
  if (format === 'jpeg') return plainJpegSize(bytes);
  return undefined;
}
