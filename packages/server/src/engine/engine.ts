import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ownsItsBuffer } from '../buffers/owned-bytes.js';
import { EngineError, deserializeError } from './errors.js';
import { isProcessedImage, pixelBufferOf } from './image-processor.js';
import type { FromWorker, ToWorker, WorkerOptions } from './protocol.js';
import { schedulerSettings } from './scheduler.js';
import type { SchedulerRequest } from './sequence.js';
import type { PrefixCacheChange, PrefixCacheStats } from './prefix-cache.js';
import type {
  CachedGenerateRequest,
  EngineOptions,
  GenerateRequest,
  GenerateResult,
  ModelImage,
  ModelInfo,
} from './types.js';

// The main-thread face of the engine. Every onnxruntime session lives in a worker thread;
// this class validates requests, hands pixels over (transferred, not copied), relays streamed
// text, cancels on abort, and restarts the worker if it dies.

interface Pending {
  readonly request: GenerateRequest | CachedGenerateRequest;
  /** What was posted to the worker: resent with pixels if its cached prefix was evicted. */
  readonly sequence: SchedulerRequest;
  resolve(result: GenerateResult): void;
  reject(error: unknown): void;
  cleanup(): void;
}

interface WorkerHandle {
  readonly worker: Worker;
  readonly ready: Promise<ModelInfo>;
  /** Settles when the worker thread has exited, for whatever reason. */
  readonly exited: Promise<void>;
}

// Terminating a worker inside session.run aborts the whole process (a native exception escapes
// onnxruntime-node), so close() lets the worker finish its run and exit; this is a last resort.
const CLOSE_TIMEOUT_MS = 60_000;

/**
 * Where the worker entry is: dist/engine/worker.js once built (tsup puts this module in dist/,
 * in the index or a shared chunk). From TypeScript sources (vitest, tsx) the worker is
 * worker.ts, loaded through a tiny bootstrap that registers tsx inside the worker thread:
 * Node 20 does not apply `--import tsx` from a worker's execArgv.
 */
function workerEntry(): URL {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const tsx = import.meta.resolve('tsx/esm/api');
    const worker = new URL('./worker.ts', here).href;
    const bootstrap = `const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(worker)});`;
    return new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`);
  }
  for (const candidate of ['./engine/worker.js', './worker.js']) {
    const url = new URL(candidate, here);
    if (existsSync(fileURLToPath(url))) return url;
  }
  throw new EngineError(
    'MODEL_NOT_READY',
    `engine worker entry not found beside ${fileURLToPath(here)}`,
  );
}

function spawnWorker(
  options: WorkerOptions,
  onMessage: (m: FromWorker) => void,
  onExit: (e: Error) => void,
): WorkerHandle {
  const worker = new Worker(workerEntry(), { workerData: options });
  let started = false;
  let lastError: Error | undefined;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const ready = new Promise<ModelInfo>((resolve, reject) => {
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        started = true;
        resolve(message.info);
      } else if (message.type === 'startup-error') {
        reject(deserializeError(message.error)); // the worker exits by itself
      } else {
        onMessage(message);
      }
    });
    worker.on('error', (error) => {
      lastError = error;
    });
    worker.on('exit', (code) => {
      const cause = lastError ?? new Error(`exit code ${code}`);
      if (!started) {
        reject(
          new EngineError(
            'MODEL_NOT_READY',
            `engine worker stopped while starting: ${cause.message}`,
            { cause },
          ),
        );
      } else {
        onExit(cause);
      }
    });
  });
  return { worker, ready, exited };
}

function invalidInput(message: string): EngineError {
  return new EngineError('INVALID_INPUT', message);
}

function checkRequest(req: GenerateRequest | CachedGenerateRequest): void {
  if (req.prefixKey !== undefined && typeof req.prefixKey !== 'string')
    throw invalidInput('prefixKey must be a string');
  const image = 'image' in req ? req.image : undefined;
  if (image == null && (!('loadImage' in req) || typeof req.loadImage !== 'function'))
    throw invalidInput('an image is required (or a prefixKey with loadImage)');
  if (typeof req.prompt !== 'string') throw invalidInput('prompt must be a string');
  if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1)
    throw invalidInput('maxTokens must be a positive integer');
  const temperature = req.temperature ?? 0;
  if (!Number.isFinite(temperature) || temperature < 0)
    throw invalidInput('temperature must be >= 0');
  if (req.topP !== undefined && !(req.topP > 0 && req.topP <= 1))
    throw invalidInput('topP must be in (0, 1]');
  if (req.seed !== undefined && !Number.isSafeInteger(req.seed))
    throw invalidInput('seed must be an integer');
}

/** An image's pixels, or a preprocessed image's crops, checked against the model's processor. */
function checkImage(image: ModelImage, info: ModelInfo): void {
  if (isProcessedImage(image)) {
    const { grid, pixelValues } = image;
    const { rows, cols } = grid;
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1)
      throw invalidInput(`crop grid ${rows}x${cols} is not a positive whole size`);
    if (rows * cols > info.maxCrops)
      throw invalidInput(`crop grid ${rows}x${cols} has more than ${info.maxCrops} crops`);
    const expected = rows * cols * 3 * info.cropSize * info.cropSize;
    if (!(pixelValues instanceof Float32Array) || pixelValues.length !== expected)
      throw invalidInput(`pixel values must be ${expected} floats for a ${rows}x${cols} grid`);
    return;
  }
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw invalidInput(`image size ${width}x${height} is not a positive whole size`);
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3)
    throw invalidInput(
      `image data must be ${width * height * 3} bytes of RGB for ${width}x${height}`,
    );
}

/**
 * The pixels (or crops) in a buffer of their own, so it can be transferred without taking
 * anything else along: copied when they share it (with the constructor: `slice()` on a Buffer
 * is a view of the same memory, whose transfer would detach the caller's whole buffer).
 */
function transferableImage(image: ModelImage): ModelImage {
  const data = isProcessedImage(image) ? image.pixelValues : image.data;
  if (ownsItsBuffer(data)) return image;
  return isProcessedImage(image)
    ? { grid: image.grid, pixelValues: new Float32Array(image.pixelValues) }
    : { data: new Uint8Array(image.data), width: image.width, height: image.height };
}

function cancelledResult(): GenerateResult {
  return {
    text: '',
    finishReason: 'cancelled',
    usage: { promptTokens: 0, imageTokens: 0, completionTokens: 0, cachedTokens: 0 },
    timings: { queueMs: 0, preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0 },
    grid: { rows: 0, cols: 0 },
  };
}

export class Engine {
  private handle: WorkerHandle;
  private readonly inFlight = new Map<number, Pending>();
  private waitingForWorker = 0;
  private nextId = 1;
  private restartCount = 0;
  private startFailure: EngineError | undefined;
  private closing: Promise<void> | undefined;
  /** Keys the worker's prefix cache holds, mirrored from its messages, so a hit is sent without pixels. */
  private readonly prefixKeys = new Set<string>();
  private prefixStats: PrefixCacheStats;
  /** Counters of workers that crashed, so the totals only grow. */
  private prefixBase = { hits: 0, misses: 0, evictions: 0 };

  private constructor(
    private readonly options: EngineOptions,
    handle: WorkerHandle,
    readonly info: ModelInfo,
  ) {
    this.handle = handle;
    this.prefixStats = emptyPrefixStats(options.prefixCacheBytes ?? 0);
  }

  /**
   * Spawns the worker, which validates and loads the bundle; rejects with INVALID_BUNDLE or
   * PROVIDER_UNAVAILABLE, or RangeError for a bad batching option.
   */
  static async start(options: EngineOptions): Promise<Engine> {
    schedulerSettings(options); // a bad batching option is the caller's mistake: throw before any work
    // The worker's events reach the engine once it exists (after 'ready').
    const target: { engine?: Engine } = {};
    const handle = spawnWorker(
      Engine.workerOptions(options),
      (message) => target.engine?.onMessage(message),
      (cause) => target.engine?.onCrash(cause),
    );
    const info = await handle.ready;
    target.engine = new Engine(options, handle, info);
    return target.engine;
  }

  private static workerOptions(options: EngineOptions): WorkerOptions {
    const { onRestart: _onRestart, ...plain } = options;
    return plain;
  }

  /** Requests accepted and not yet settled. */
  get pending(): number {
    return this.inFlight.size + this.waitingForWorker;
  }

  /** How many times the worker was restarted after a crash. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Why the engine cannot serve any more (its worker could not be restarted), else undefined. */
  get failure(): EngineError | undefined {
    return this.startFailure;
  }

  /** Whether the worker holds this prefix-cache key (as of its last message). */
  hasPrefix(key: string): boolean {
    return this.prefixKeys.has(key);
  }

  /** The prefix cache's counters (totals since start, across worker restarts) and size. */
  prefixCacheStats(): PrefixCacheStats {
    const { hits, misses, evictions } = this.prefixBase;
    const now = this.prefixStats;
    return {
      ...now,
      hits: hits + now.hits,
      misses: misses + now.misses,
      evictions: evictions + now.evictions,
    };
  }

  /** generate() without pixels, for a prefix the worker holds (hasPrefix); loadImage makes them if it does not any more. */
  generateCached(req: CachedGenerateRequest): Promise<GenerateResult> {
    return this.generate(req);
  }

  async generate(req: GenerateRequest | CachedGenerateRequest): Promise<GenerateResult> {
    if (this.closing !== undefined)
      throw new EngineError('MODEL_NOT_READY', 'the engine is closed');
    checkRequest(req);
    // Without pixels only while the worker holds the prefix; else they are made now.
    const given =
      'image' in req
        ? req.image
        : this.prefixKeys.has(req.prefixKey)
          ? undefined
          : await req.loadImage();
    if (given !== undefined) checkImage(given, this.info);
    const image = given === undefined ? undefined : transferableImage(given);
    this.waitingForWorker++;
    try {
      await this.handle.ready;
    } catch {
      throw new EngineError(
        'MODEL_NOT_READY',
        `the engine worker could not be restarted: ${this.startFailure?.message}`,
      );
    } finally {
      this.waitingForWorker--;
    }
    if (this.closing !== undefined) throw new EngineError('CANCELLED', 'the engine was closed');
    if (req.signal?.aborted) return cancelledResult();

    const id = this.nextId++;
    const request: SchedulerRequest = {
      id,
      ...(image !== undefined ? { image } : {}),
      ...(req.prefixKey !== undefined ? { prefixKey: req.prefixKey } : {}),
      prompt: req.prompt,
      maxTokens: req.maxTokens,
      temperature: req.temperature ?? 0,
      ...(req.topP !== undefined ? { topP: req.topP } : {}),
      ...(req.seed !== undefined ? { seed: req.seed } : {}),
      stop: req.stop ?? [],
      suppressActionTokens: req.suppressActionTokens ?? false,
      stream: req.onToken !== undefined,
    };
    return new Promise<GenerateResult>((resolve, reject) => {
      const onAbort = () => this.post({ type: 'cancel', id });
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.inFlight.set(id, {
        request: req,
        sequence: request,
        resolve,
        reject,
        cleanup: () => req.signal?.removeEventListener('abort', onAbort),
      });
      this.post({ type: 'generate', request }, image ? [pixelBufferOf(image)] : []);
    });
  }

  /** The worker evicted the prefix of a request sent without pixels: make them and send it again. */
  private resendWithImage(id: number, pending: Pending): void {
    const { request } = pending;
    if (!('loadImage' in request)) {
      this.inFlight.delete(id);
      pending.cleanup();
      pending.reject(
        new EngineError('INFERENCE_FAILED', 'the worker asked again for pixels it was sent'),
      );
      return;
    }
    const settle = (error: unknown): void => {
      if (this.inFlight.get(id) !== pending) return;
      this.inFlight.delete(id);
      pending.cleanup();
      if (request.signal?.aborted) pending.resolve(cancelledResult());
      else pending.reject(error);
    };
    let loading: Promise<ModelImage>;
    try {
      loading = request.loadImage();
    } catch (error) {
      settle(error);
      return;
    }
    loading.then((loaded) => {
      if (this.inFlight.get(id) !== pending) return; // failed meanwhile (crash, close)
      if (request.signal?.aborted) {
        settle(undefined);
        return;
      }
      let image: ModelImage;
      try {
        checkImage(loaded, this.info);
        image = transferableImage(loaded);
      } catch (error) {
        settle(error);
        return;
      }
      this.post({ type: 'generate', request: { ...pending.sequence, image } }, [
        pixelBufferOf(image),
      ]);
    }, settle);
  }

  private onPrefixCache(change: PrefixCacheChange): void {
    for (const key of change.evicted) this.prefixKeys.delete(key);
    for (const key of change.added) this.prefixKeys.add(key);
    this.prefixStats = change.stats;
    if (change.added.length === 0) return;
    const added = new Set(change.added);
    for (const { request } of this.inFlight.values()) {
      if (request.prefixKey === undefined || !added.has(request.prefixKey)) continue;
      try {
        request.onPrefixStored?.();
      } catch {
        // a throwing callback must not take the engine down
      }
    }
  }

  /** One short real inference, so the first user request does not pay for lazy initialisation. */
  async warmup(): Promise<void> {
    const side = this.info.cropSize;
    await this.generate({
      image: { data: new Uint8Array(side * side * 3).fill(128), width: side, height: side },
      prompt: 'Describe the image.',
      maxTokens: 2,
    });
  }

  /** Stops the worker; pending requests fail with CANCELLED. Safe to call more than once. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.failAll(new EngineError('CANCELLED', 'the engine was closed'));
    const { worker, ready, exited } = this.handle;
    void ready.then(
      () => this.post({ type: 'close' }),
      () => undefined, // a worker that failed to start exits by itself
    );
    const timer = setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT_MS);
    timer.unref();
    this.closing = exited.then(() => clearTimeout(timer));
    return this.closing;
  }

  /** For tests: makes the worker throw an uncaught error between two runs, as a crash would. */
  crashWorkerForTest(): void {
    this.post({ type: 'crash' });
  }

  private post(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.handle.worker.postMessage(message, transfer);
  }

  private onMessage(message: FromWorker): void {
    if (message.type === 'closed') return;
    if (message.type === 'ready' || message.type === 'startup-error') return;
    if (message.type === 'prefix-cache') {
      this.onPrefixCache(message.change);
      return;
    }
    const pending = this.inFlight.get(message.id);
    if (pending === undefined) return;
    if (message.type === 'prefix-miss') {
      this.resendWithImage(message.id, pending);
      return;
    }
    if (message.type === 'token') {
      try {
        pending.request.onToken?.(message.text);
      } catch {
        // a throwing callback must not take the engine down
      }
      return;
    }
    this.inFlight.delete(message.id);
    pending.cleanup();
    if (message.type === 'result') pending.resolve(message.result);
    else pending.reject(deserializeError(message.error));
  }

  private failAll(error: EngineError): void {
    const all = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const pending of all) {
      pending.cleanup();
      pending.reject(error);
    }
  }

  private onCrash(cause: Error): void {
    if (this.closing !== undefined) return;
    this.failAll(
      new EngineError('INFERENCE_FAILED', `the engine worker crashed (${cause.message})`, {
        cause,
      }),
    );
    this.restartCount++;
    this.startFailure = undefined;
    // the new worker starts with an empty cache
    const { hits, misses, evictions } = this.prefixCacheStats();
    this.prefixBase = { hits, misses, evictions };
    this.prefixKeys.clear();
    this.prefixStats = emptyPrefixStats(this.options.prefixCacheBytes ?? 0);
    try {
      this.options.onRestart?.(cause);
    } catch {
      // the callback is informational
    }
    try {
      this.handle = spawnWorker(
        Engine.workerOptions(this.options),
        (message) => this.onMessage(message),
        (next) => this.onCrash(next),
      );
    } catch (error) {
      // no worker to wait for: every later request fails fast with MODEL_NOT_READY
      const failed = Promise.reject(error as Error);
      this.handle = { worker: this.handle.worker, ready: failed, exited: Promise.resolve() };
    }
    this.handle.ready.catch((error: unknown) => {
      this.startFailure =
        error instanceof EngineError ? error : new EngineError('MODEL_NOT_READY', String(error));
    });
  }
}

function emptyPrefixStats(budgetBytes: number): PrefixCacheStats {
  return { hits: 0, misses: 0, evictions: 0, bytes: 0, entries: 0, budgetBytes };
}
