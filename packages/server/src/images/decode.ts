import sharp from 'sharp';
import type { Metadata } from 'sharp';
import { decodeNative } from './native-decoders.js';
import type { NativeDecoder } from './native-decoders.js';
import { ImageError } from './errors.js';
import { hasAscii, plainImageSize } from './plain-header.js';
import type { PixelScratch } from './pixel-scratch.js';
import type { RgbImage } from './types.js';

export { ImageError } from './errors.js';
export type { ImageErrorCode } from './errors.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';

export interface DecodeLimits {
  /** Largest encoded file accepted, in bytes. */
  readonly maxBytes: number;
  /** Largest width x height accepted; checked from the header, before any pixel is decoded. */
  readonly maxPixels: number;
  /**
   * 'sharp': every image through sharp. Default 'auto': plain JPEGs and PNGs through the
   * native decoders when they are built (same pixels, less overhead; see native-decoders.ts),
   * the rest through sharp.
   */
  readonly imageDecoder?: ImageDecoderChoice;
}

export type ImageDecoderChoice = 'auto' | 'sharp';

export interface DecodedImage {
  readonly image: RgbImage;
  readonly format: ImageFormat;
  /** Size after EXIF orientation (same as image.width/height). */
  readonly width: number;
  readonly height: number;
  /** Who decoded it: a native decoder (libjpeg-turbo, libpng), or sharp. */
  readonly decoder: NativeDecoder | 'sharp';
}

/** Recognises the four accepted formats by their first bytes, before sharp sees the data. */
function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const ascii = (start: number, text: string): boolean => hasAscii(bytes, start, text);
  if (bytes.length >= 8 && bytes[0] === 0x89 && ascii(1, 'PNG\r\n\x1a\n')) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff)
    return 'jpeg';
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'gif';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  return undefined;
}

function tooManyPixels(width: number, height: number, maxPixels: number): ImageError {
  return new ImageError(
    'PAYLOAD_TOO_LARGE',
    `image is ${width}x${height} (${width * height} pixels); the limit is ${maxPixels} pixels`,
  );
}

/** sharp's only message we act on; every other decoder message is replaced by our own. */
function isPixelLimitError(error: unknown): boolean {
  return error instanceof Error && /pixel limit/i.test(error.message);
}

/**
 * Width, height (of the first frame) and EXIF orientation from the file's header, without
 * decoding pixels: read here for a plain PNG or JPEG, by sharp otherwise.
 */
async function readSize(
  bytes: Uint8Array,
  format: ImageFormat,
): Promise<{ width: number; height: number; orientation: number }> {
  const plain = plainImageSize(bytes, format);
  if (plain !== undefined) return { ...plain, orientation: 1 };
  let header: Metadata;
  try {
    // No pixel limit here: the caller applies its own, with the size in the message.
    header = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata();
  } catch {
    throw new ImageError(
      'INVALID_IMAGE',
      `${format} image could not be read: it is corrupt or truncated`,
    );
  }
  const width = header.width;
  const height = header.pageHeight ?? header.height;
  if (header.format !== format || !width || !height) {
    throw new ImageError('INVALID_IMAGE', `${format} image has an unreadable header`);
  }
  return { width, height, orientation: header.orientation ?? 1 };
}

export interface ImageHeader {
  readonly format: ImageFormat;
  /** Size of the first frame, before EXIF orientation. */
  readonly width: number;
  readonly height: number;
  /** Size once decoded, EXIF orientation applied (orientations 5-8 turn the image a quarter). */
  readonly orientedWidth: number;
  readonly orientedHeight: number;
}

/**
 * Checks an encoded image without decoding any pixel: byte limit, format by magic bytes, and
 * the size its header declares against `maxPixels`. Cheap (the header only), so the caller can
 * budget the decode by its pixels before paying for it.
 */
export async function readImageHeader(
  bytes: Uint8Array,
  limits: DecodeLimits,
): Promise<ImageHeader> {
  if (bytes.length > limits.maxBytes) {
    throw new ImageError(
      'PAYLOAD_TOO_LARGE',
      `image is ${bytes.length} bytes; the limit is ${limits.maxBytes} bytes`,
    );
  }
  const format = sniffFormat(bytes);
  if (format === undefined) {
    throw new ImageError('INVALID_IMAGE', 'image is not a PNG, JPEG, WebP or GIF file');
  }
  const { width, height, orientation } = await readSize(bytes, format);
  if (width * height > limits.maxPixels) throw tooManyPixels(width, height, limits.maxPixels);
  const turned = orientation >= 5 && orientation <= 8;
  return {
    format,
    width,
    height,
    orientedWidth: turned ? height : width,
    orientedHeight: turned ? width : height,
  };
}

/** The marks were checked, and the decode budgeted, against the header's size: hold it to that. */
function checkDecodedSize(
  decoded: { readonly width: number; readonly height: number },
  header: ImageHeader | undefined,
): void {
  if (header === undefined) return;
  const { orientedWidth, orientedHeight } = header;
  if (decoded.width === orientedWidth && decoded.height === orientedHeight) return;
  throw new ImageError(
    'INVALID_IMAGE',
    `${header.format} image decoded to ${decoded.width}x${decoded.height}, but its header says ${orientedWidth}x${orientedHeight}`,
  );
}

/**
 * Decodes PNG, JPEG, WebP or GIF (first frame) to 8-bit sRGB pixels: EXIF orientation
 * applied, transparency flattened onto white. Refuses files over `maxBytes` before reading
 * them and images over `maxPixels` from their header, so a small file declaring a huge
 * image is never decoded. `header` (from readImageHeader) skips reading the header again.
 * The pixels are the decoder's own buffer (sharp's is not transferable), or for the native
 * decoders the start of `scratch`'s buffer, which keeps theirs when it was too small: use
 * decodeImage for a buffer of their own.
 */
export async function decodePixels(
  bytes: Uint8Array,
  limits: DecodeLimits,
  header?: ImageHeader,
  scratch?: PixelScratch,
): Promise<DecodedImage> {
  const { format, width, height } = header ?? (await readImageHeader(bytes, limits));
  if ((format === 'jpeg' || format === 'png') && limits.imageDecoder !== 'sharp') {
    const native = decodeNative(format, bytes, limits.maxPixels, scratch?.held);
    if (native !== undefined) {
      const { image, decoder } = native;
      scratch?.keep(image.data.buffer as ArrayBuffer);
      checkDecodedSize(image, header);
      return { image, format, width: image.width, height: image.height, decoder };
    }
  }
  const input = { limitInputPixels: limits.maxPixels, pages: 1, page: 0, failOn: 'error' } as const;

  try {
    const { data, info } = await sharp(bytes, input)
      .autoOrient() // EXIF orientation, as .rotate() without arguments
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new ImageError('INVALID_IMAGE', `${format} image did not decode to RGB pixels`);
    }
    checkDecodedSize(info, header);
    const image: RgbImage = { data, width: info.width, height: info.height };
    return { image, format, width: info.width, height: info.height, decoder: 'sharp' };
  } catch (error) {
    if (error instanceof ImageError) throw error;
    if (isPixelLimitError(error)) throw tooManyPixels(width, height, limits.maxPixels);
    throw new ImageError(
      'INVALID_IMAGE',
      `${format} image could not be decoded: it is corrupt or truncated`,
    );
  }
}

/** decodePixels, the pixels in an exactly sized buffer of their own (the engine transfers it to its worker). */
export async function decodeImage(
  bytes: Uint8Array,
  limits: DecodeLimits,
  header?: ImageHeader,
): Promise<DecodedImage> {
  const decoded = await decodePixels(bytes, limits, header);
  if (decoded.decoder !== 'sharp') return decoded; // already exactly sized and its own
  const image: RgbImage = { ...decoded.image, data: new Uint8Array(decoded.image.data) };
  return { ...decoded, image };
}
