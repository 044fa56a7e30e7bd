import type { KvCache, PrefixKv } from './magma-model.js';
import type { PrefixEntry } from './prefix-cache.js';
import { createRng, sampleToken } from './sampler.js';
import type { SamplingOptions } from './sampler.js';
import { TextStream } from './text-stream.js';
import type { FinishReason, GenerateResult, ModelImage } from './types.js';

// One request being generated: owns its KV cache, its position and its sampler state, so the
// scheduler can step any set of sequences together.

/** A generate request as the worker receives it (no callbacks, no signal). */
export interface SequenceRequest {
  readonly id: number;
  readonly image: ModelImage;
  /** Prefix-cache key of the marked image (prefix-cache.ts); absent = no caching. */
  readonly prefixKey?: string;
  readonly prompt: string;
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly stop: readonly string[];
  readonly suppressActionTokens: boolean;
  readonly stream: boolean;
}

/**
 * What the scheduler takes: the image may be left out when prefixKey names a cached prefix
 * (if it is gone, the worker answers 'prefix-miss' and the engine resends it with the image).
 */
export type SchedulerRequest = Omit<SequenceRequest, 'image'> & { readonly image?: ModelImage };

export interface SequenceSettings {
  readonly eosTokenIds: readonly number[];
  readonly sampling: SamplingOptions;
  readonly decode: (ids: readonly number[]) => string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class Sequence {
  /** Positions before `past`, read in place by the decoder (magma-model.ts PrefixKv). */
  prefixKv: PrefixKv | null = null;
  past: KvCache | null = null;
  /** Positions in `past`. */
  pastLength = 0;
  /** Last sampled id: the input of the next decode step. */
  lastToken = -1;
  generated = 0;
  finishReason: FinishReason | null = null;
  /** The decoder is running with this sequence's cache as input: GPU buffers must not be freed yet. */
  inFlight = false;
  /** The tokenized question, once the scheduler has planned the prompt. */
  promptIds: readonly number[] | null = null;
  promptTokens = 0;
  imageTokens = 0;
  /** The cached prefix this sequence reads (pinned until its prefill is done), if any. */
  prefix: PrefixEntry | null = null;
  /** Prompt positions taken from the prefix cache instead of being prefilled. */
  cachedTokens = 0;
  grid = { rows: 0, cols: 0 };
  readonly timings: Mutable<GenerateResult['timings']> = {
    queueMs: 0,
    preprocessMs: 0,
    visionMs: 0,
    prefillMs: 0,
    decodeMs: 0,
  };
  readonly receivedAt = performance.now();
  private readonly stream: TextStream;
  private readonly random: () => number;
  private readonly eos: ReadonlySet<number>;

  constructor(
    readonly request: SchedulerRequest,
    private readonly settings: SequenceSettings,
  ) {
    this.stream = new TextStream(settings.decode, request.stop);
    this.random = createRng(request.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.eos = new Set(settings.eosTokenIds);
  }

  get id(): number {
    return this.request.id;
  }

  get done(): boolean {
    return this.finishReason !== null;
  }

  /**
   * Chooses the next id from the logits and advances the text. Returns the newly final text;
   * sets finishReason when an end-of-sequence id, a stop string or the token budget ends it.
   */
  accept(logits: Float32Array): string {
    if (this.finishReason !== null) return '';
    const token = sampleToken(logits, this.settings.sampling, this.random);
    this.generated++;
    this.lastToken = token;
    let delta = '';
    if (this.eos.has(token)) {
      this.finishReason = 'stop';
    } else {
      const step = this.stream.push(token);
      delta = step.delta;
      if (step.stopped) this.finishReason = 'stop';
      else if (this.generated >= this.request.maxTokens) this.finishReason = 'length';
    }
    if (this.finishReason !== null) delta += this.stream.finish();
    return delta;
  }

  cancel(): void {
    if (this.finishReason === null) this.finishReason = 'cancelled';
  }

  result(): GenerateResult {
    return {
      text: this.stream.text,
      finishReason: this.finishReason ?? 'cancelled',
      usage: {
        promptTokens: this.promptTokens,
        imageTokens: this.imageTokens,
        completionTokens: this.generated,
        cachedTokens: this.cachedTokens,
      },
      timings: { ...this.timings },
      grid: { ...this.grid },
    };
  }
}
