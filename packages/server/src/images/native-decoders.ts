import { loadAddon } from '../native/load-addon.js';
import type { RgbImage } from './types.js';

// The optional native decoders (native/*.c, built by scripts/build-native.mjs on install):
// the system's libjpeg-turbo and libpng called synchronously from the image worker. Same
// pixels as sharp's decode (for JPEG: the accurate integer IDCT and fancy upsampling; the
// tests compare every byte), without sharp's trips through libuv's pool and libvips' threads.
// Anything they do not handle exactly as sharp would is left to sharp.

export type NativeFormat = 'jpeg' | 'png';
export type NativeDecoder = 'libjpeg' | 'libpng';

interface NativeAddon {
  decode(
    bytes: Uint8Array,
    maxPixels: number,
    into?: ArrayBuffer,
  ): { width: number; height: number; data: ArrayBuffer } | null;
}

const ADDONS: Record<NativeFormat, { name: string; decoder: NativeDecoder }> = {
  jpeg: { name: 'jpeg-decode', decoder: 'libjpeg' },
  png: { name: 'png-decode', decoder: 'libpng' },
};

const loaded = {
  jpeg: loadAddon<NativeAddon>(ADDONS.jpeg.name),
  png: loadAddon<NativeAddon>(ADDONS.png.name),
};

/** Per format, whether it can skip sharp, and if not, why (for the start-up log). */
export function nativeDecoderStatus(format: NativeFormat): {
  readonly available: boolean;
  readonly reason?: string;
} {
  const { addon, missing } = loaded[format];
  return addon !== undefined ? { available: true } : { available: false, reason: missing ?? '' };
}

/**
 * Decodes a JPEG or PNG to RGB, or answers undefined when it is sharp's to do: no addon, or a
 * file sharp might treat differently (EXIF, ICC or gamma data, CMYK, 12- or 16-bit samples,
 * interlaced or translucent PNGs) or that the library reports anything about, warnings
 * included (sharp then gives its own result or error). The pixels are at the start of `into`
 * when it is given and large enough, else in an exactly sized, transferable buffer of their own.
 */
export function decodeNative(
  format: NativeFormat,
  bytes: Uint8Array,
  maxPixels: number,
  into?: ArrayBuffer,
): { readonly image: RgbImage; readonly decoder: NativeDecoder } | undefined {
  const decoded = loaded[format].addon?.decode(bytes, maxPixels, into);
  if (decoded === undefined || decoded === null) return undefined;
  const image = {
    data: new Uint8Array(decoded.data, 0, decoded.width * decoded.height * 3),
    width: decoded.width,
    height: decoded.height,
  };
  return { image, decoder: ADDONS[format].decoder };
}
