import { z } from 'zod';
import { DEFAULT_LIMITS } from './limits.js';
import {
  IMAGE_ID_PATTERN,
  MAX_IMAGE_STRING_CHARS,
  isImageId,
  splitImageString,
} from './image-string.js';

export {
  IMAGE_ID_PATTERN,
  IMAGE_MEDIA_TYPES,
  MAX_IMAGE_STRING_CHARS,
  isImageId,
  splitImageString,
} from './image-string.js';
export type { ImageMediaType } from './image-string.js';

/**
 * An image as a string: plain base64 of the file bytes, a data URL
 * (`data:image/png;base64,...`) of PNG, JPEG, WebP or GIF, or the id of an image stored with
 * images.upload (`img_...`; IMAGE_NOT_FOUND once it expired). Whether the bytes really are such
 * an image is checked by the server when it decodes them.
 */
export const ImageInputSchema = z
  .string()
  .min(1, 'image is empty')
  .max(
    MAX_IMAGE_STRING_CHARS,
    `image is larger than ${DEFAULT_LIMITS.maxImageBytes} bytes; use the binary upload`,
  )
  .superRefine((value, ctx) => {
    if (isImageId(value)) return;
    const payload = splitImageString(value);
    if ('error' in payload) {
      ctx.addIssue({ code: 'custom', message: payload.error });
    }
  });

export type ImageInput = z.infer<typeof ImageInputSchema>;

export const ImageIdSchema = z.string().regex(IMAGE_ID_PATTERN, 'not an image id (img_...)');

/** What images.upload answers. */
export const ImageUploadResponseSchema = z.strictObject({
  /** Send it as an ask's `image` instead of the bytes. */
  imageId: ImageIdSchema,
  bytes: z.number().int().positive(),
  /** Kept at least this long after the upload and after each ask that uses it. */
  ttlSeconds: z.number().positive(),
});
export type ImageUploadResponse = z.infer<typeof ImageUploadResponseSchema>;
