import { findMarksOutsideImage, parseMarkReferences } from '@magma-som/schemas';
import type { AskFields, AskResponse, ErrorIssue, Mark, MarkedImage } from '@magma-som/schemas';
import type { AskCall } from '../trpc/context.js';
import type { ServerConfig } from '../config/config.js';
import { ApiError } from '../errors/api-error.js';
import { decodeImage, drawMarks, encodeImage, parseImageString } from '../images/index.js';
import type { MarkBox, RgbImage } from '../images/index.js';
import type { GenerateResult } from '../engine/types.js';
import type { ServerState } from '../lifecycle/server-state.js';
import type { ServerMetrics } from '../metrics/metrics.js';
import type { WorkQueue } from '../queue/work-queue.js';
import { requestSignal } from './request-signal.js';

export interface AskPipelineDeps {
  readonly config: ServerConfig;
  readonly queue: WorkQueue;
  readonly state: ServerState;
  readonly metrics: ServerMetrics;
}

/**
 * One ask from validated input to response: limits -> queue admission -> decode -> check marks
 * -> draw marks -> wait for an engine slot -> generate -> response. Every failure is an
 * ApiError; the deadline, a client disconnect or shutdown abort whatever stage is running.
 */
export class AskPipeline {
  constructor(private readonly deps: AskPipelineDeps) {}

  async ask(call: AskCall): Promise<AskResponse> {
    const { config, queue, state } = this.deps;
    const started = performance.now();
    if (!state.isReady) throw state.notReadyError();
    this.checkLimits(call.fields);

    const ticket = queue.admit();
    const { signal, dispose } = requestSignal(
      call.signal,
      state.shutdownSignal,
      config.requestTimeoutMs,
    );
    // Set once the engine has the request: the slot is held until the engine lets go of it,
    // even when the client was answered earlier (deadline, disconnect).
    let generation: Promise<GenerateResult> | undefined;
    try {
      const imageStarted = performance.now();
      const { image, marks } = await this.prepareImage(call, signal);
      const markedImage = call.fields.returnMarkedImage
        ? await markedImageOf(image, call.fields.markedImageFormat)
        : undefined;
      const imageMs = performance.now() - imageStarted;
      signal.throwIfAborted();

      const queueStarted = performance.now();
      await ticket.acquire(signal);
      const waitedMs = performance.now() - queueStarted;

      const engine = state.engine;
      if (engine === undefined) throw state.notReadyError();
      const options = call.fields.options;
      generation = engine.generate({
        image,
        prompt: call.fields.prompt,
        maxTokens: Math.min(options.maxTokens, config.maxTokens),
        temperature: options.temperature,
        topP: options.topP,
        seed: options.seed,
        stop: options.stop,
        suppressActionTokens: options.suppressActionTokens,
        signal,
        onToken: call.onToken,
      });
      const result = await untilAborted(generation, signal);

      const timings = {
        queueMs: waitedMs + result.timings.queueMs,
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
      const release = (): void => ticket.release();
      if (generation) generation.then(release, release);
      else release();
    }
  }

  /** The server's own limits, which may be tighter than the contract's defaults. */
  private checkLimits(fields: AskFields): void {
    const { maxPromptChars, maxMarks } = this.deps.config;
    const issues: ErrorIssue[] = [];
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

  /** Decodes the image, checks the marks against its size and draws them. */
  private async prepareImage(
    call: AskCall,
    signal: AbortSignal,
  ): Promise<{ image: RgbImage; marks: readonly Mark[] }> {
    const { maxImageBytes, maxUploadBytes, maxImagePixels } = this.deps.config;
    const maxBytes = call.image.kind === 'bytes' ? maxUploadBytes : maxImageBytes;
    const bytes =
      call.image.kind === 'bytes' ? call.image.bytes : parseImageString(call.image.value, maxBytes);
    const decoded = await decodeImage(bytes, { maxBytes, maxPixels: maxImagePixels });
    signal.throwIfAborted();

    const marks = call.fields.marks;
    const outside = findMarksOutsideImage(marks, decoded.width, decoded.height);
    if (outside.length > 0) {
      throw new ApiError('INVALID_MARKS', outside.map((issue) => issue.message).join('; '), {
        issues: outside.map((issue) => ({
          path: ['marks', issue.index],
          message: issue.message,
        })),
      });
    }
    return { image: drawMarks(decoded.image, marks.map(markBoxOf)), marks };
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
  };
}

/**
 * The engine's result, or the signal's reason as soon as it aborts: the client hears of its
 * deadline at the deadline, not when the engine gets round to stopping. An engine failure
 * after an abort (its own CANCELLED) is reported as the abort's cause too.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) reject(signal.reason as Error);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted ? (signal.reason as Error) : error);
      },
    );
  });
}

function markBoxOf(mark: Mark): MarkBox {
  const { label, x1, y1, x2, y2 } = mark;
  return mark.style?.color ? { label, x1, y1, x2, y2, color: mark.style.color } : mark;
}

/** The image exactly as the model sees it. Encoded before the engine takes the pixels away. */
async function markedImageOf(image: RgbImage, format: 'png' | 'jpeg'): Promise<MarkedImage> {
  const bytes = await encodeImage(image, format);
  return {
    format,
    data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    width: image.width,
    height: image.height,
  };
}
