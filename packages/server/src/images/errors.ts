/** Why an image was refused. Both the byte limit and the pixel limit are PAYLOAD_TOO_LARGE. */
export type ImageErrorCode = 'INVALID_IMAGE' | 'PAYLOAD_TOO_LARGE';

/**
 * An image the server will not use. Messages are written for the client: they never carry
 * file paths, stack contents or the decoder's own wording.
 */
export class ImageError extends Error {
  override readonly name = 'ImageError';

  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
  }
}
