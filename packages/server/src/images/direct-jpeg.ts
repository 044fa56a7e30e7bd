import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { RgbImage } from './types.js';

// The optional native JPEG decoder (native/jpeg-decode.c, built by scripts/build-native.mjs on
// install): libjpeg-turbo called synchronously from the image worker. Same pixels as sharp's
// decode (accurate integer IDCT, fancy upsampling; the tests compare every byte), without
// sharp's trips through libuv's pool and libvips' threads: 0.8 against 2.6-3.6 ms for a
// 1024x768 JPEG here. Anything it does not handle exactly as sharp would is left to sharp.

interface NativeJpeg {
  decode(
    bytes: Uint8Array,
    maxPixels: number,
  ): { width: number; height: number; data: ArrayBuffer } | null;
}

const ADDON = 'native/build/jpeg-decode.node';

/** The addon, or why there is none (not built: no compiler or libjpeg headers at install). */
function load(): { addon?: NativeJpeg; missing?: string } {
  // src/images/ and dist/ (dist/image-pool/ for the worker's chunk) sit at different depths.
  for (const up of ['../', '../../', '../../../']) {
    const path = fileURLToPath(new URL(up + ADDON, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      return { addon: createRequire(import.meta.url)(path) as NativeJpeg };
    } catch (error) {
      return { missing: `${path} did not load: ${(error as Error).message}` };
    }
  }
  return { missing: `${ADDON} is not built` };
}

const loaded = load();

/** Whether JPEGs can skip sharp, and if not, why (for the start-up log). */
export function directJpegStatus(): { readonly available: boolean; readonly reason?: string } {
  return loaded.addon !== undefined
    ? { available: true }
    : { available: false, reason: loaded.missing ?? 'unknown' };
}

/**
 * Decodes a JPEG to RGB, or answers undefined when it is sharp's to do: no addon, EXIF or ICC
 * data, CMYK, 12-bit, or anything libjpeg reports, warnings included (sharp then gives its own
 * result or error). The pixels are in an exactly sized, transferable buffer of their own.
 */
export function decodeJpegDirect(bytes: Uint8Array, maxPixels: number): RgbImage | undefined {
  const decoded = loaded.addon?.decode(bytes, maxPixels);
  if (decoded === undefined || decoded === null) return undefined;
  return { data: new Uint8Array(decoded.data), width: decoded.width, height: decoded.height };
}
