import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { pixelBufferOf } from '../engine/image-processor.js';
import { PixelScratch } from '../images/pixel-scratch.js';
import { runImageTask } from './task.js';
import type { ImageTask, ImageTaskResult } from './task.js';
import type { ImageWorkerData } from './pool.js';
import { parseJsonBytes } from '../http/json-text.js';
import type { WorkerJsonBodyResult } from '../http/json-text.js';

// The image pool's worker entry: piscina calls the default export once per image task, and
// parseJson for a large JSON body (ImagePool.parseJson).

/** Images from this size on are collected right after their task (a 4 MP image is 12 MB decoded). */
const COLLECT_FROM_PIXELS = 4_000_000;

// Decoded pixels live outside V8's heap, and V8 does not count sharp's: a worker that allocates
// little JavaScript would hold several 100 MB images until some later collection (measured:
// one 36 MP image stayed resident after its task, 108 MB). So after a large image in a buffer
// of its own the worker collects at once. The native decoders write into the worker's scratch
// buffer instead (images/pixel-scratch.ts): no allocation and no collection per image, one
// collection when the scratch goes after a pause. The scratch holds at most this worker's
// share of the pool's pixel budget (ImagePool), so all workers' scratches together hold no
// more than the budget lets into work at once.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

const { scratchMaxBytes, scratchIdleMs } = workerData as ImageWorkerData;
const scratch = new PixelScratch(scratchMaxBytes);
let scratchTimer: ReturnType<typeof setTimeout> | undefined;

function releaseScratchWhenIdle(): void {
  clearTimeout(scratchTimer);
  scratchTimer = setTimeout(() => {
    const large = scratch.heldBytes >= COLLECT_FROM_PIXELS * 3;
    scratch.release();
    if (large) collect();
  }, scratchIdleMs);
  // an idle worker must not keep the process alive
  scratchTimer.unref();
}

/**
 * The result with its buffers moved, not copied, to the calling thread: the preprocessed crops
 * (about 0.8 MB for a 2x2 grid of the tiny model) or the marked RGB pixels, and the encoded
 * marked image, are each in an ArrayBuffer of their own (task.ts).
 */
function movedResult(result: ImageTaskResult): unknown {
  if (!result.ok) return result;
  const { image, markedImage } = result.output;
  const pixels = pixelBufferOf(image);
  const buffers = markedImage !== undefined ? [pixels, markedImage.buffer] : [pixels];
  return move({ [transferableSymbol]: buffers, [valueSymbol]: result });
}

export default async function runImageTaskThenCollect(task: ImageTask): Promise<unknown> {
  clearTimeout(scratchTimer);
  const scratchBytesAtStart = scratch.heldBytes;
  try {
    const result = await runImageTask(task, scratch);
    // Once the task's frame is gone, so are the pixels of an image not in the scratch.
    const pixels = task.header.width * task.header.height;
    const inScratch = result.ok && result.output.decoder !== 'sharp' && scratch.fits(pixels * 3);
    if (pixels >= COLLECT_FROM_PIXELS && !inScratch) setImmediate(collect);
    return movedResult(
      result.ok ? { ok: true, output: { ...result.output, scratchBytesAtStart } } : result,
    );
  } finally {
    releaseScratchWhenIdle();
  }
}

/** A large JSON body (ImagePool.parseJson); a body that is not JSON goes back with the result. */
export function parseJson(bytes: Uint8Array): unknown {
  const result = parseJsonBytes(bytes);
  if (result.ok) return result satisfies WorkerJsonBodyResult;
  const failed: WorkerJsonBodyResult = { ...result, bytes };
  return move({ [transferableSymbol]: [bytes.buffer], [valueSymbol]: failed });
}
