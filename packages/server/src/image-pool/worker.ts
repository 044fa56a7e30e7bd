import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { pixelBufferOf } from '../engine/image-processor.js';
import { runImageTask } from './task.js';
import type { ImageTask, ImageTaskResult } from './task.js';

// The image pool's worker entry (piscina calls the default export once per task).

/** Images from this size on are collected right after their task (a 4 MP image is 12 MB decoded). */
const COLLECT_FROM_PIXELS = 4_000_000;

// sharp's decoded pixels live outside V8's heap, and V8 does not count them: a worker that
// allocates little JavaScript would hold several 100 MB images until some later collection
// (measured: one 36 MP image stayed resident after its task, 108 MB). So after a large
// image's task the worker collects at once; a full collection of this small heap costs about
// a millisecond against the hundreds a large decode takes.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

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
  const large = task.header.width * task.header.height >= COLLECT_FROM_PIXELS;
  // Before too: a previous image whose release was still pending goes before this one decodes.
  if (large) collect();
  const result = await runImageTask(task);
  // Once the task's frame is gone, so its pixels are unreachable.
  if (large) setImmediate(collect);
  return movedResult(result);
}
