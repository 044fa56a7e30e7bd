import type { RgbImage } from '../images/types.js';
import type { BundleDtype } from './bundle.js';
import type { ProcessedImage } from './image-processor.js';
import type { MemoryReport } from './memory.js';

/** Execution providers the engine can run on. */
export type ExecutionProviderName = 'cpu' | 'cuda' | 'webgpu';

/** How prefills of new requests are scheduled against decode steps of running ones (EngineOptions.prefillPolicy). */
export type PrefillPolicy = 'interleave' | 'prefill-first';

export interface EngineOptions {
  /** Folder of a model bundle (docs/BUNDLE.md). */
  readonly modelDir: string;
  readonly executionProvider?: ExecutionProviderName;
  /** GPU index for cuda/webgpu. */
  readonly deviceId?: number;
  readonly intraOpNumThreads?: number;
  readonly interOpNumThreads?: number;
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Let onnxruntime's idle pool threads spin waiting for work (session option allow_spinning).
   * Default false: on a shared CPU, spinning takes the cores the server's main thread needs
   * (measured here: about 2x the throughput without it; see BENCHMARKS.md).
   */
  readonly spinWait?: boolean;
  /**
   * Which graph files to load: 'fp32' (X.onnx), 'fp16' (X_fp16.onnx), 'q4'/'q8' (X_q4.onnx,
   * X_q8.onnx, weight-only quantized; 'q4f16'/'q8f16' from the fp16 graphs), 'auto' (fp16 if
   * present on GPU, else fp32).
   */
  readonly dtype?: BundleDtype | 'auto';
  /**
   * Refuse to start (MEMORY_BUDGET_EXCEEDED) when the weights plus maxBatchSize full-context KV
   * caches exceed this many bytes. 0 or absent: no check.
   */
  readonly memoryBudgetBytes?: number;
  /** Most sequences decoded together in one batched step (continuous batching). Default 4; 1 = no batching. */
  readonly maxBatchSize?: number;
  /**
   * When waiting requests are prefilled into the running batch. 'interleave' (default): between
   * two decode steps, at most maxPrefillTokens prompt positions are prefilled (always at least one
   * request), so running streams keep producing tokens while new requests join. 'prefill-first':
   * every waiting request that fits the batch is prefilled before the next decode step (fuller
   * batches sooner, but running streams pause meanwhile).
   */
  readonly prefillPolicy?: PrefillPolicy;
  /** Prompt positions (image tokens included) prefilled between two decode steps under 'interleave'. Default 2048. */
  readonly maxPrefillTokens?: number;
  /**
   * Bytes of vision features and prompt-prefix KV caches kept for repeated questions about one
   * marked image (prefix-cache.ts), least recently used evicted first. Default 0 = off.
   */
  readonly prefixCacheBytes?: number;
  /** Called when the engine worker crashed and is restarted (in-flight requests failed with INFERENCE_FAILED). */
  readonly onRestart?: (cause: Error) => void;
}

/**
 * What a request shows the model: the marked image's pixels (the worker preprocesses them), or
 * the same image already preprocessed by the caller (`preprocessImage` with the bundle's
 * settings, ModelInfo.imageMean/imageStd: the server's image pool does this).
 */
export type ModelImage = RgbImage | ProcessedImage;

export interface GenerateRequest {
  /** The image exactly as the model should see it (marks already drawn). Its buffer is transferred to the worker. */
  readonly image: ModelImage;
  /**
   * Prefix-cache key of this marked image (the server's hash of the upload, marks and drawing
   * options, model and processor). A hit skips vision and the prefill of the prompt up to the
   * question; a miss stores it. Absent = no caching for this request.
   */
  readonly prefixKey?: string;
  /** The user's question; the engine wraps it in Magma's chat template. */
  readonly prompt: string;
  readonly maxTokens: number;
  /** 0 (default) = greedy. */
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  /** Generation ends when the decoded text ends with any of these; the stop text is not returned. */
  readonly stop?: readonly string[];
  /** Mask Magma's robot action-token range (config.action_token_range). */
  readonly suppressActionTokens?: boolean;
  /** Aborting cancels between decode steps; the sequence's KV cache is freed at once. */
  readonly signal?: AbortSignal;
  /** Called with each new piece of decoded text as it is generated. */
  readonly onToken?: (text: string) => void;
  /** Called once the engine holds this request's prefix (stored after its prefill), before the answer is done. */
  readonly onPrefixStored?: () => void;
}

/**
 * A request sent without pixels, for a prefix the engine holds (Engine.hasPrefix): if the worker
 * evicted it meanwhile, loadImage makes the image and the request is sent again with it.
 */
export type CachedGenerateRequest = Omit<GenerateRequest, 'image' | 'prefixKey'> & {
  readonly prefixKey: string;
  readonly loadImage: () => Promise<ModelImage>;
};

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface GenerateResult {
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly usage: {
    /** All tokens fed to the decoder, image positions included. */
    readonly promptTokens: number;
    /** Visual tokens (rows*g*(cols*g+1)). */
    readonly imageTokens: number;
    readonly completionTokens: number;
    /** Prompt positions read from the prefix cache instead of being prefilled (0 on a miss). */
    readonly cachedTokens?: number;
  };
  /** Milliseconds per stage, measured inside the worker. */
  readonly timings: {
    readonly queueMs: number;
    readonly preprocessMs: number;
    readonly visionMs: number;
    readonly prefillMs: number;
    readonly decodeMs: number;
  };
  /** Crop grid the image was processed with. */
  readonly grid: { readonly rows: number; readonly cols: number };
}

export interface ModelInfo {
  readonly name: string;
  readonly revision: string;
  readonly executionProvider: ExecutionProviderName;
  readonly dtype: BundleDtype;
  readonly cropSize: number;
  readonly maxCrops: number;
  /** What the model reads, in model pixels: the server sizes marks from it (images/mark-sizing.ts). */
  readonly markMinimums: { readonly labelTextHeight: number; readonly outlineWidth: number };
  /** The processor's normalisation, so a caller can preprocess images itself (ModelImage). */
  readonly imageMean?: readonly [number, number, number];
  readonly imageStd?: readonly [number, number, number];
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  /** Bytes per graph and dtype, KV bytes per token, worst case (memory.ts). */
  readonly memory?: MemoryReport;
}
