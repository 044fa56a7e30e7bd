import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { PixelBudget } from '../pipeline/decode-budget.js';
import { imageTaskOutput } from './task.js';
import type { ImageTask, ImageTaskOutput, ImageTaskResult } from './task.js';
import { untilAborted } from '../lifecycle/until-aborted.js';
import { ownedBytes } from '../buffers/owned-bytes.js';
import type { WorkerJsonBodyResult } from '../http/json-text.js';

// Image work (decode, marks, preprocessing) in worker threads, so a large image never stalls
// the event loop, bounded by a pixel budget, so a burst of large images waits its turn instead
// of holding gigabytes of decoded pixels at once. The same threads parse large JSON bodies
// (http/json-body.ts), which come with those images.

/** Threads when the configuration leaves it to the server: half the cores (the engine needs the rest), 1 to 4. */
export function defaultImageWorkers(): number {
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}

/** dist/image-pool/worker.js once built; from TypeScript sources, a bootstrap that registers tsx. */
function workerFile(): string {
  const here = import.meta.url;
  if (here.endsWith('.ts')) return fileURLToPath(new URL('./source-entry.mjs', here));
  for (const candidate of ['./image-pool/worker.js', './worker.js']) {
    const path = fileURLToPath(new URL(candidate, here));
    if (existsSync(path)) return path;
  }
  throw new Error(`image worker entry not found beside ${fileURLToPath(here)}`);
}

/** What each worker is started with. */
export interface ImageWorkerData {
  /** Most bytes the worker's scratch buffer holds (images/pixel-scratch.ts). */
  readonly scratchMaxBytes: number;
  /** The scratch is let go after this long without a task. */
  readonly scratchIdleMs: number;
}

/** How long an idle worker keeps its scratch buffer, by default. */
export const SCRATCH_IDLE_MS = 2000;

export interface ImagePoolOptions {
  /** Worker threads. */
  readonly threads: number;
  /** Pixels (width x height) of the images being worked on at once, across requests. */
  readonly pixelBudget: number;
  /** How long an idle worker keeps its scratch buffer (default SCRATCH_IDLE_MS). */
  readonly scratchIdleMs?: number;
}

export class ImagePool {
  readonly budget: PixelBudget;
  readonly size: number;
  private readonly piscina: Piscina;
  private closing: Promise<void> | undefined;

  /** The threads start now (idle ones do not keep the process alive), so the first ask does not wait for them. */
  constructor(options: ImagePoolOptions) {
    this.size = Math.max(1, options.threads);
    this.budget = new PixelBudget(options.pixelBudget);
    this.piscina = new Piscina({
      filename: workerFile(),
      minThreads: this.size,
      maxThreads: this.size,
      // One task per thread: the budget, not the pool, decides how many images are in flight.
      concurrentTasksPerWorker: 1,
      idleTimeout: Infinity,
      // Piscina's default parks an idle worker in Atomics.wait, which blocks its event loop
      // until the next task: the scratch's release after a pause and the collection after a
      // large image (worker.ts) never ran while the server was idle. Measured after 8 asks of
      // 36 MP (240 MiB before): 411 MiB 4 s later and 364 MiB 10 s later; waiting in the event
      // loop instead, 302 and 246 MiB. It made no difference to c1 latency.
      atomics: 'disabled',
      // RGB bytes of this thread's share of the budget: what every scratch holds, together, is
      // at most what the budget lets into work at once.
      workerData: {
        scratchMaxBytes: Math.floor(options.pixelBudget / this.size) * 3,
        scratchIdleMs: options.scratchIdleMs ?? SCRATCH_IDLE_MS,
      } satisfies ImageWorkerData,
    });
  }

  /**
   * Runs one image task in a worker once its pixels fit the budget. An abort (deadline,
   * disconnect, shutdown) answers at once, waiting or working; a task already in a worker
   * runs to its end (a worker is not killed mid-decode) and keeps its pixels counted until then.
   */
  async run(task: ImageTask, signal: AbortSignal): Promise<ImageTaskOutput> {
    const pixels = task.header.width * task.header.height;
    const release = await this.budget.acquire(pixels, signal);
    if (this.closing !== undefined) {
      release();
      throw new Error('the image pool is closed');
    }
    const working = this.piscina.run(task) as Promise<ImageTaskResult>;
    working.then(release, release);
    return imageTaskOutput(await untilAborted(working, signal));
  }

  /**
   * Parses a JSON body in a worker (http/json-text.ts). The bytes are moved there (copied only
   * if they share their buffer, buffers/owned-bytes.ts); they are the worker's from then on,
   * and come back if they are not JSON.
   */
  async parseJson(bytes: Uint8Array): Promise<WorkerJsonBodyResult> {
    if (this.closing !== undefined) throw new Error('the image pool is closed');
    const owned = ownedBytes(bytes);
    return (await this.piscina.run(owned, {
      name: 'parseJson',
      transferList: [owned.buffer as ArrayBuffer],
    })) as WorkerJsonBodyResult;
  }

  /** Stops the workers once their tasks are done. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= this.piscina.close();
    return this.closing;
  }
}
