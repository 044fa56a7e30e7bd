import { findMarksOutsideImage, isImageId, parseMarkReferences } from '@magma-som/schemas';
import type {
  AskFields,
  AskResponse,
  ErrorIssue,
  ImageUploadResponse,
  Mark,
  MarkedImage,
} from '@magma-som/schemas';
import type { AskCall } from '../trpc/context.js';
import type { ServerConfig } from '../config/config.js';
import { ApiError } from '../errors/api-error.js';
import { markSizing, parseImageString, readImageHeader } from '../images/index.js';
import type { MarkBox } from '../images/index.js';
import type { GenerateResult, ModelImage } from '../engine/types.js';
import { ImagePool, defaultImageWorkers } from '../image-pool/pool.js';
import type { ServerState } from '../lifecycle/server-state.js';
import type { ServerMetrics } from '../metrics/metrics.js';
import type { WorkQueue } from '../queue/work-queue.js';
import { ImageStore } from './image-store.js';
import { imageContentId, imageDigestOfId, prefixCacheKey, sha256 } from './prefix-key.js';
import { requestSignal } from './request-signal.js';
import { untilAborted } from '../lifecycle/until-aborted.js';

export interface AskPipelineDeps {
  readonly config: ServerConfig;
  readonly queue: WorkQueue;
  readonly state: ServerState;
  readonly metrics: ServerMetrics;
}

/**
 * One ask from validated input to response: limits -> queue admission -> image header, check
 * marks -> image pool (decode, draw marks, preprocess) -> wait for an engine slot -> generate ->
 * response. Every failure is an ApiError; the deadline, a client disconnect or shutdown abort
 * whatever stage is running.
 */
export class AskPipeline {
  /** Image work in worker threads, under a pixel budget across requests. */
  readonly imagePool: ImagePool;
  /** Uploaded images that asks name by id. */
  readonly images: ImageStore;
  /**
   * Prefix keys whose prefix an ask is computing now (decode, marks, vision, prefill), each
   * with a promise that settles when that ask has its answer or has failed. Concurrent asks
   * about the same new marked image wait for it instead of computing the same prefix again.
   */
  private readonly computing = new Map<string, Promise<void>>();

  constructor(private readonly deps: AskPipelineDeps) {
    const { decodePixelBudget, maxImagePixels, imageWorkers } = deps.config;
    this.imagePool = new ImagePool({
      threads: imageWorkers > 0 ? imageWorkers : defaultImageWorkers(),
      pixelBudget: decodePixelBudget > 0 ? decodePixelBudget : maxImagePixels,
    });
    deps.metrics.observePrefixCache(() => deps.state.engine?.prefixCacheStats?.());
    this.images = new ImageStore(deps.config.imageStoreBytes, deps.config.imageTtlMs);
  }

  /**
   * Stores an image for later asks by id (images.upload). Only its header is read here: a
   * file that is not an image is refused now, the rest is checked when an ask decodes it.
   */
  async uploadImage(bytes: Uint8Array): Promise<ImageUploadResponse> {
    const { maxUploadBytes, maxImagePixels } = this.deps.config;
    await readImageHeader(bytes, { maxBytes: maxUploadBytes, maxPixels: maxImagePixels });
    const imageId = this.images.put(bytes, await imageContentId(bytes));
    if (imageId === undefined) {
      throw new ApiError(
        'PAYLOAD_TOO_LARGE',
        `image is ${bytes.byteLength} bytes; this server keeps uploads of at most ${this.images.budgetBytes} bytes`,
      );
    }
    return { imageId, bytes: bytes.byteLength, ttlSeconds: this.images.ttlMs / 1000 };
  }

  /** Stops the image workers (server shutdown, after the last request). */
  close(): Promise<void> {
    return this.imagePool.close();
  }

  async ask(call: AskCall): Promise<AskResponse> {
    const { config, queue, state } = this.deps;
    const started = performance.now();
    if (!state.isReady) throw state.notReadyError();
    this.checkLimits(call.fields, call.explicitMaxTokens === true);

    const ticket = queue.admit();
    const { signal, dispose } = requestSignal(
      call.signal,
      state.shutdownSignal,
      config.requestTimeoutMs,
    );
    // Set once the engine has the request: the slot is held until the engine lets go of it,
    // even when the client was answered earlier (deadline, disconnect).
    let generation: Promise<GenerateResult> | undefined;
    let computed: (() => void) | undefined;
    try {
      const imageStarted = performance.now();
      const bytes = this.uploadedBytes(call);
      const prefixKey = await this.prefixKeyOf(call, bytes);
      // A prefix the engine holds needs no pixels: decoding and drawing are skipped (and done
      // later only if the engine evicted it meanwhile). A marked image to return needs them.
      const reusable = prefixKey !== undefined && !call.fields.returnMarkedImage;
      const waitStarted = performance.now();
      const found = reusable ? await this.findPrefix(prefixKey, signal) : 'absent';
      const prefixWaitMs = performance.now() - waitStarted;
      const cached = found === 'held';
      // After waiting in vain (the prefix could not be kept) every waiter computes its own,
      // rather than queueing behind one another.
      if (reusable && found === 'absent') computed = this.startComputing(prefixKey);
      const prepared = cached
        ? undefined
        : await this.prepareImage(call, signal, bytes, call.fields.returnMarkedImage);
      const marks = call.fields.marks;
      const markedImage = prepared?.markedImage;
      let imageMs = performance.now() - imageStarted - prefixWaitMs;
      signal.throwIfAborted();

      const queueStarted = performance.now();
      await ticket.acquire(signal);
      const waitedMs = performance.now() - queueStarted;

      const engine = state.engine;
      if (engine === undefined) throw state.notReadyError();
      const options = call.fields.options;
      const common = {
        prompt: call.fields.prompt,
        maxTokens: Math.min(options.maxTokens, config.maxTokens),
        temperature: options.temperature,
        topP: options.topP,
        seed: options.seed,
        stop: options.stop,
        suppressActionTokens: options.suppressActionTokens,
        signal,
        onToken: call.onToken,
      };
      generation =
        prepared === undefined && engine.generateCached !== undefined
          ? engine.generateCached({
              ...common,
              prefixKey: prefixKey!,
              loadImage: async () => {
                const loadStarted = performance.now();
                const again = await this.prepareImage(call, signal, bytes);
                imageMs += performance.now() - loadStarted;
                return again.image;
              },
            })
          : engine.generate({
              ...common,
              image: prepared?.image ?? (await this.prepareImage(call, signal, bytes)).image,
              ...(prefixKey !== undefined ? { prefixKey } : {}),
              // the asks waiting for this prefix can go as soon as it is stored
              ...(computed !== undefined ? { onPrefixStored: computed } : {}),
            });
      const result = await untilAborted(generation, signal);

      const timings = {
        queueMs: prefixWaitMs + waitedMs + result.timings.queueMs,
        imageMs,
        preprocessMs: result.timings.preprocessMs,
        visionMs: result.timings.visionMs,
        prefillMs: result.timings.prefillMs,
        decodeMs: result.timings.decodeMs,
        totalMs: performance.now() - started,
      };
      this.record(timings, result.usage.promptTokens, result.usage.completionTokens);
      return {
        requestId: call.requestId,
        answer: result.text,
        references: parseMarkReferences(result.text, marks),
        finishReason: result.finishReason,
        usage: usageOf(result.usage),
        timings,
        model: { id: engine.info.name, revision: engine.info.revision },
        grid: { rows: result.grid.rows, cols: result.grid.cols },
        ...(markedImage ? { markedImage } : {}),
      };
    } finally {
      dispose();
      const release = (): void => {
        ticket.release();
        computed?.();
      };
      if (generation) generation.then(release, release);
      else release();
    }
  }

  /**
   * Whether the engine holds this prefix ('held'), after waiting for an ask already computing
   * it, if there is one, to store it or end ('still absent' if it did not): concurrent
   * questions about one new image then pay for its prefix once.
   */
  private async findPrefix(
    key: string,
    signal: AbortSignal,
  ): Promise<'held' | 'absent' | 'still absent'> {
    const holds = (): boolean => this.deps.state.engine?.hasPrefix?.(key) === true;
    if (holds()) return 'held';
    const leader = this.computing.get(key);
    if (leader === undefined) return 'absent';
    await untilAborted(leader, signal);
    return holds() ? 'held' : 'still absent';
  }

  /**
   * Marks this ask as the one computing `key` (unless one already is); the returned function
   * ends that (idempotent): when the engine has stored the prefix, or the ask is over.
   */
  private startComputing(key: string): (() => void) | undefined {
    if (this.computing.has(key)) return undefined;
    let done!: () => void;
    const computing = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.computing.set(key, computing);
    return () => {
      if (this.computing.get(key) === computing) this.computing.delete(key);
      done();
    };
  }

  /** The server's own limits, which may be tighter than the contract's defaults. */
  private checkLimits(fields: AskFields, explicitMaxTokens: boolean): void {
    const { maxPromptChars, maxMarks, maxTokens } = this.deps.config;
    const issues: ErrorIssue[] = [];
    // Asked for more than the cap: refused, not silently cut. The schema's default (when
    // maxTokens is left out) is capped instead.
    if (explicitMaxTokens && fields.options.maxTokens > maxTokens) {
      issues.push({
        path: ['options', 'maxTokens'],
        message: `maxTokens is above this server's cap of ${maxTokens}`,
      });
    }
    if (fields.prompt.length > maxPromptChars) {
      issues.push({
        path: ['prompt'],
        message: `prompt is longer than ${maxPromptChars} characters`,
      });
    }
    if (fields.marks.length > maxMarks) {
      issues.push({ path: ['marks'], message: `at most ${maxMarks} marks` });
    }
    if (issues.length > 0) {
      throw new ApiError('INVALID_INPUT', issues.map((i) => i.message).join('; '), { issues });
    }
  }

  /** The image bytes as uploaded (base64 decoded, or stored under their id), not yet an image. */
  private uploadedBytes(call: AskCall): Uint8Array {
    const { maxImageBytes } = this.deps.config;
    if (call.image.kind === 'bytes') return call.image.bytes;
    if (isImageId(call.image.value)) {
      const stored = this.images.get(call.image.value);
      if (stored === undefined) {
        throw new ApiError(
          'IMAGE_NOT_FOUND',
          'unknown or expired image id; upload the image again (images.upload)',
          { issues: [{ path: ['image'], message: 'unknown or expired image id' }] },
        );
      }
      return stored;
    }
    return parseImageString(call.image.value, {
      maxBytes: maxImageBytes,
      checked: call.image.checked === true,
    });
  }

  /** The prefix-cache key of this ask, or undefined when the engine caches nothing or the ask opts out. */
  private async prefixKeyOf(call: AskCall, bytes: Uint8Array): Promise<string | undefined> {
    const engine = this.deps.state.engine;
    if (call.fields.cache === false || engine?.hasPrefix === undefined) return undefined;
    if ((engine.prefixCacheStats?.().budgetBytes ?? 0) <= 0) return undefined;
    // an id is the hash of its bytes: nothing to hash again
    const byId = call.image.kind !== 'bytes' && isImageId(call.image.value);
    const digest = byId ? imageDigestOfId(call.image.value) : await sha256(bytes);
    return prefixCacheKey(digest, call.fields, engine.info);
  }

  /**
   * Reads the header (format, size, orientation: refused here if over the limits), checks the
   * marks against the size, then has the pool decode, draw the marks and preprocess; the
   * full-size pixels never reach the main thread.
   */
  private async prepareImage(
    call: AskCall,
    signal: AbortSignal,
    bytes: Uint8Array,
    withMarkedImage = false,
  ): Promise<{ image: ModelImage; markedImage?: MarkedImage }> {
    const { maxImageBytes, maxUploadBytes, maxImagePixels, imageDecoder } = this.deps.config;
    // stored images came through the upload path, under its limit
    const uploaded = call.image.kind === 'bytes' || isImageId(call.image.value);
    const maxBytes = uploaded ? maxUploadBytes : maxImageBytes;
    const limits = { maxBytes, maxPixels: maxImagePixels, imageDecoder };
    const header = await readImageHeader(bytes, limits);
    signal.throwIfAborted();
    const width = header.orientedWidth;
    const height = header.orientedHeight;

    const marks = call.fields.marks;
    const outside = findMarksOutsideImage(marks, width, height);
    if (outside.length > 0) {
      throw new ApiError('INVALID_MARKS', outside.map((issue) => issue.message).join('; '), {
        issues: outside.map((issue) => ({
          path: ['marks', issue.index],
          message: issue.message,
        })),
      });
    }
    const engine = this.deps.state.engine;
    if (engine === undefined) throw this.deps.state.notReadyError();
    const { info } = engine;
    const sizing = markSizing(width, height, info, info.markMinimums, call.fields.markSizing);
    const format = call.fields.markedImageFormat;
    this.deps.metrics.imagesPrepared.inc();
    const output = await this.imagePool.run(
      {
        bytes,
        limits,
        header,
        marks: marks.map(markBoxOf),
        sizing,
        // an engine that does not say how it normalises gets the marked pixels instead
        ...(info.imageMean && info.imageStd
          ? {
              processor: {
                cropSize: info.cropSize,
                maxCrops: info.maxCrops,
                imageMean: info.imageMean,
                imageStd: info.imageStd,
              },
            }
          : {}),
        ...(withMarkedImage ? { markedImageFormat: format } : {}),
      },
      signal,
    );
    this.deps.metrics.imageDecodes.inc({ decoder: output.decoder });
    const markedImage: MarkedImage | undefined =
      output.markedImage !== undefined
        ? {
            format,
            data: Buffer.from(
              output.markedImage.buffer,
              output.markedImage.byteOffset,
              output.markedImage.byteLength,
            ).toString('base64'),
            width: output.width,
            height: output.height,
          }
        : undefined;
    return { image: output.image, ...(markedImage ? { markedImage } : {}) };
  }

  private record(
    timings: AskResponse['timings'],
    promptTokens: number,
    completionTokens: number,
  ): void {
    const { metrics } = this.deps;
    metrics.observeStage('queue', timings.queueMs);
    metrics.observeStage('image', timings.imageMs);
    metrics.observeStage('preprocess', timings.preprocessMs);
    metrics.observeStage('vision', timings.visionMs);
    metrics.observeStage('prefill', timings.prefillMs);
    metrics.observeStage('decode', timings.decodeMs);
    metrics.promptTokens.inc(promptTokens);
    metrics.tokensGenerated.inc(completionTokens);
    if (completionTokens > 0 && timings.decodeMs > 0) {
      metrics.tokensPerSecond.observe(completionTokens / (timings.decodeMs / 1000));
    }
  }
}

/** Usage in the contract's shape, field by field (the response schema is strict). */
function usageOf(usage: GenerateResult['usage']): AskResponse['usage'] {
  const { promptTokens, imageTokens, completionTokens } = usage;
  return {
    promptTokens,
    imageTokens,
    completionTokens,
    totalTokens: promptTokens + completionTokens,
    cachedTokens: usage.cachedTokens ?? 0,
  };
}

function markBoxOf(mark: Mark): MarkBox {
  const { label, x1, y1, x2, y2 } = mark;
  return mark.style?.color ? { label, x1, y1, x2, y2, color: mark.style.color } : mark;
}
