import { decodePixels } from '../images/decode.js';
import type { DecodedImage, DecodeLimits, ImageHeader } from '../images/decode.js';
import { drawMarksInPlace } from '../images/draw-marks.js';
import { encodeImage } from '../images/encode.js';
import { ImageError } from '../images/errors.js';
import type { ImageErrorCode } from '../images/errors.js';
import type { MarkSizing } from '../images/mark-sizing.js';
import type { PixelScratch } from '../images/pixel-scratch.js';
import type { MarkBox, RgbImage } from '../images/types.js';
import { preprocessImage } from '../engine/image-processor.js';
import type { ProcessedImage, ProcessorSettings } from '../engine/image-processor.js';

// One ask's image work, from the uploaded bytes to what the model sees: decode, draw the marks
// into the decoded pixels, and (when the processor's settings are given) resize + normalise to
// the crop grid. Runs in the image pool's worker threads (worker.ts); plain data in and out, so
// it can also run in-process (tests). Nothing here imports the contract package: the worker
// loads only what the work needs.

export interface ImageTask {
  readonly bytes: Uint8Array;
  readonly limits: DecodeLimits;
  /** Read once on the main thread (format, size, orientation); the decode does not read it again. */
  readonly header: ImageHeader;
  readonly marks: readonly MarkBox[];
  readonly sizing: MarkSizing;
  /** The bundle's processor: the result is the preprocessed crops. Absent: the marked RGB pixels. */
  readonly processor?: ProcessorSettings;
  /** Also encode the marked image (the response's markedImage). */
  readonly markedImageFormat?: 'png' | 'jpeg';
}

export interface ImageTaskOutput {
  readonly image: ProcessedImage | RgbImage;
  /** Size of the decoded image (EXIF orientation applied). */
  readonly width: number;
  readonly height: number;
  readonly markedImage?: Uint8Array;
  /** Who decoded the image (the server counts them: magma_image_decodes_total). */
  readonly decoder: DecodedImage['decoder'];
  /** Bytes the worker's scratch buffer held when the task began (set by the pool's workers). */
  readonly scratchBytesAtStart?: number;
}

/** An ImageError as plain data: errors lose their class and code crossing a worker boundary. */
export type ImageTaskResult =
  | { readonly ok: true; readonly output: ImageTaskOutput }
  | { readonly ok: false; readonly code: ImageErrorCode; readonly message: string };

/**
 * `scratch`: a buffer the decoders may reuse across tasks (the image pool's workers keep one);
 * nothing of it leaves the task, the output's pixels are always in buffers of their own.
 */
export async function runImageTask(
  task: ImageTask,
  scratch?: PixelScratch,
): Promise<ImageTaskResult> {
  try {
    const { image, decoder } = await decodePixels(task.bytes, task.limits, task.header, scratch);
    // the decoder's buffer (or the scratch) is this task's: the marks go straight into it, no
    // full-image copy.
    drawMarksInPlace(image, task.marks, task.sizing);
    const markedImage =
      task.markedImageFormat !== undefined
        ? await encodeImage(image, task.markedImageFormat)
        : undefined;
    const { width, height } = image;
    const output: ImageTaskOutput = {
      // Without a processor the pixels leave the task: a buffer of their own, exactly sized.
      image:
        task.processor !== undefined
          ? preprocessImage(image, task.processor)
          : { data: new Uint8Array(image.data), width, height },
      width,
      height,
      ...(markedImage !== undefined ? { markedImage } : {}),
      decoder,
    };
    return { ok: true, output };
  } catch (error) {
    if (error instanceof ImageError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}

/** The task's outcome on the calling side: its output, or the ImageError it ended with. */
export function imageTaskOutput(result: ImageTaskResult): ImageTaskOutput {
  if (result.ok) return result.output;
  throw new ImageError(result.code, result.message);
}
