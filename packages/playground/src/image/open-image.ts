/** Formats the server decodes. */
export const IMAGE_TYPES: readonly string[] = [
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/gif',
];

/** The server's limits on images (from `info().limits`). */
export interface ImageLimits {
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
}

export interface OpenedImage {
  readonly blob: Blob;
  readonly name: string;
  /** An object URL of the blob, for <img>; revoke it when the image is replaced. */
  readonly url: string;
  readonly width: number;
  readonly height: number;
}

/** An image the page will not send, and why, in words for the user. */
export class ImageRejectedError extends Error {
  override readonly name = 'ImageRejectedError';
}

/**
 * Checks an image against the server's limits before anything is sent (the server would
 * refuse it anyway, after the upload): its type, its bytes, then its pixels once decoded.
 */
export async function openImage(
  blob: Blob,
  name: string,
  limits: ImageLimits | undefined,
): Promise<OpenedImage> {
  if (!IMAGE_TYPES.includes(blob.type)) {
    throw new ImageRejectedError(
      `${name} is not a PNG, JPEG, WebP or GIF image${blob.type ? ` (${blob.type})` : ''}`,
    );
  }
  if (limits !== undefined && blob.size > limits.maxImageBytes) {
    throw new ImageRejectedError(
      `${name} is ${formatBytes(blob.size)}; this server takes images up to ${formatBytes(limits.maxImageBytes)}`,
    );
  }
  const url = URL.createObjectURL(blob);
  const image = new Image();
  image.src = url;
  try {
    await image.decode();
  } catch {
    URL.revokeObjectURL(url);
    throw new ImageRejectedError(`${name} could not be decoded as an image`);
  }
  const { naturalWidth: width, naturalHeight: height } = image;
  if (limits !== undefined && width * height > limits.maxImagePixels) {
    URL.revokeObjectURL(url);
    throw new ImageRejectedError(
      `${name} is ${width}×${height} = ${(width * height).toLocaleString('en')} pixels; this server takes up to ${limits.maxImagePixels.toLocaleString('en')}`,
    );
  }
  return { blob, name, url, width, height };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
