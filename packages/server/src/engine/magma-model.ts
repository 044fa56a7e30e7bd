import * as ort from 'onnxruntime-node';
import type { ModelConfig } from './bundle.js';
import { EngineError } from './errors.js';
import {
  isProcessedImage,
  preprocessImage,
  stitchImageFeatures,
  visualTokenCount,
} from './image-processor.js';
import type { CropGrid } from './image-processor.js';
import type { ModelSessions } from './model-sessions.js';
import { PrefixBatch } from './prefix-batch.js';
import type { PrefixKv } from './prefix-batch.js';
import type { ModelImage } from './types.js';
import {
  disposeTensor,
  emptyKv,
  floatTensor,
  int64Tensor,
  readFloats,
  tensorOf,
  tensorValues,
} from './tensors.js';

/** Blocks of at most this many ids take their embeddings from the kept rows. */
const ROW_CACHE_MAX_IDS = 64;
/** Bytes of embedding rows kept (8 MB: all of magma-tiny-som's, about 1,000 of Magma-8B's fp16 rows). */
const EMBED_ROW_BYTES = 8 * 1024 * 1024;

// The Magma forward pieces over the three ONNX sessions: image -> visual tokens, ids -> embeddings,
// and decoder steps with a KV cache, batched with left padding.

/**
 * A sequence's keys and values: row `row` of per-layer tensors [B, kv_heads, P, head_dim], in graph
 * input order (layer0.key, layer0.value, layer1.key, ...), whose first `pad` positions are left
 * padding. The sequences of a batched run share its present tensors, so a batch whose members do
 * not change feeds them straight back, without copying.
 */
export interface KvCache {
  readonly tensors: readonly ort.Tensor[];
  readonly row: number;
  readonly pad: number;
}

/** Positions a cache holds for its sequence (padding excluded). */
export function cacheLength(cache: KvCache): number {
  return cache.tensors[0]!.dims[2]! - cache.pad;
}

export interface EncodedImage {
  readonly grid: CropGrid;
  /** Stitched visual tokens [tokens, H]. */
  readonly features: Float32Array;
  readonly tokens: number;
  readonly preprocessMs: number;
  readonly visionMs: number;
}

export type { PrefixKv } from './prefix-batch.js';

/** A sequence's cache going into a decoder run. */
export interface StepInput {
  /** Positions before `past`. A graph without prefix inputs gets them as the past (then `past` must be empty). */
  readonly prefix?: PrefixKv | null;
  readonly past: KvCache | null;
  /** Positions in `past` (the prefix not included). */
  readonly pastLength: number;
  /**
   * The sequence's own positions among the run's T new ones, when fewer (default T): the others
   * are left padding, masked. Only with an empty past, so the padding stays at the left of the
   * present row.
   */
  readonly newLength?: number;
}

/** Input embeddings of a run, [B, T, H]: a float32 block or embed_tokens' output tensor. */
export type Embeddings = Float32Array | ort.Tensor;

export interface StepOutput {
  /** Logits of the last position. */
  readonly logits: Float32Array;
  /** The sequence's own cache after the run: its past and the new positions. */
  readonly present: KvCache;
  /** The prefix for its next run: the input's, or null where the graph took it as the past (it is in `present`). */
  readonly prefix: PrefixKv | null;
}

export class MagmaModel {
  readonly pastNames: string[] = [];
  readonly presentNames: string[] = [];
  readonly prefixNames: string[] = [];
  /** Embedding rows by id, oldest first (embed()): float16 bits or float32 values. */
  private readonly embedRows = new Map<number, Float32Array | Uint16Array>();
  /** Batched prefix inputs of decode steps and of prefills, each kept between runs (prefix-batch.ts). */
  private readonly prefixBatches: { step: PrefixBatch | null; prefill: PrefixBatch | null } = {
    step: null,
    prefill: null,
  };

  constructor(
    readonly sessions: ModelSessions,
    readonly config: ModelConfig,
    /** Bytes of embedding rows kept by id (embed()). */
    private readonly embedRowBytes = EMBED_ROW_BYTES,
  ) {
    for (let i = 0; i < config.numLayers; i++) {
      this.pastNames.push(`past_key_values.${i}.key`, `past_key_values.${i}.value`);
      this.presentNames.push(`present.${i}.key`, `present.${i}.value`);
      this.prefixNames.push(`prefix_key_values.${i}.key`, `prefix_key_values.${i}.value`);
    }
  }

  /** Only one sequence per decoder run when the cache lives on the GPU (it cannot be re-padded there). */
  get canBatch(): boolean {
    return !this.sessions.kvOnDevice;
  }

  /**
   * Whether prefixes stay inputs of their own, read in place by every run: a step then moves
   * only the positions after the prefix in and out. Needs the graph's prefix inputs and the
   * cache in host memory.
   */
  get splitsPrefix(): boolean {
    return this.sessions.hasPrefixInputs && this.canBatch;
  }

  /** Drops the batched prefix kept between runs (when no sequence is running), so it does not hold memory. */
  forgetBatch(): void {
    this.prefixBatches.step = null;
    this.prefixBatches.prefill = null;
  }

  async encodeImage(image: ModelImage): Promise<EncodedImage> {
    const { config } = this;
    const started = performance.now();
    const processed = isProcessedImage(image) ? image : preprocessImage(image, config);
    const crops = processed.grid.rows * processed.grid.cols;
    const pixels = floatTensor(this.sessions.pixelType, processed.pixelValues, [
      crops,
      3,
      config.cropSize,
      config.cropSize,
    ]);
    const visionStarted = performance.now();
    const out = await this.sessions.vision.run({ pixel_values: pixels });
    const cells = readFloats(out['image_features']!);
    const separator = readFloats(out['row_separator']!);
    const features = stitchImageFeatures(cells, separator, processed.grid, config.cellsPerSide);
    return {
      grid: processed.grid,
      features,
      tokens: visualTokenCount(processed.grid, config.cellsPerSide),
      preprocessMs: visionStarted - started,
      visionMs: performance.now() - visionStarted,
    };
  }

  /**
   * Embeddings of a [batch, length] block of ids: embed_tokens' output [batch, length, H]. Short
   * blocks (decode steps, questions after a cached prefix) mostly hold ids seen before, an
   * answer's words: as a row depends on its id alone, rows are kept by id and only new ids run.
   */
  async embed(ids: readonly number[], batch: number): Promise<ort.Tensor> {
    if (ids.length > ROW_CACHE_MAX_IDS) return this.runEmbed(ids, [batch, ids.length / batch]);
    const rows = this.embedRows;
    const missing = [...new Set(ids.filter((id) => !rows.has(id)))];
    const fresh = new Map<number, Float32Array | Uint16Array>();
    if (missing.length > 0) {
      const out = await this.runEmbed(missing, [1, missing.length]);
      // a graph whose output stays on a device is used as it is
      if (out.location !== 'cpu') return this.runEmbed(ids, [batch, ids.length / batch]);
      const values = tensorValues(out);
      const hidden = values.length / missing.length;
      missing.forEach((id, i) => fresh.set(id, values.slice(i * hidden, (i + 1) * hidden)));
    }
    const rowOf = (id: number): Float32Array | Uint16Array => fresh.get(id) ?? rows.get(id)!;
    const first = rowOf(ids[0]!);
    const hidden = first.length;
    const float16 = first instanceof Uint16Array;
    const data = float16
      ? new Uint16Array(ids.length * hidden)
      : new Float32Array(ids.length * hidden);
    ids.forEach((id, i) => data.set(rowOf(id), i * hidden));
    // kept after use: making room may drop rows this block read
    const room = Math.max(1, Math.floor(this.embedRowBytes / first.byteLength));
    for (const [id, row] of fresh) {
      if (rows.size >= room) rows.delete(rows.keys().next().value!);
      rows.set(id, row);
    }
    return tensorOf(float16 ? 'float16' : 'float32', data, [batch, ids.length / batch, hidden]);
  }

  private async runEmbed(ids: readonly number[], dims: readonly number[]): Promise<ort.Tensor> {
    const out = await this.sessions.embed.run({ input_ids: int64Tensor(ids, dims) });
    return out['inputs_embeds']!;
  }

  /**
   * Prompt embeddings with the image written in: the single <image> id is expanded to the
   * visual-token count and the stitched features replace those rows, in order.
   */
  async promptEmbeddings(promptIds: readonly number[], image: EncodedImage): Promise<Float32Array> {
    const expanded = expandImageToken(promptIds, this.config.imageTokenId, image.tokens);
    // Magma zeroes the image ids before embedding; their rows are overwritten anyway.
    const embedIds = expanded.map((id) => (id === this.config.imageTokenId ? 0 : id));
    const embeds = Float32Array.from(readFloats(await this.embed(embedIds, 1)));
    writeImageFeatures(
      embeds,
      expanded,
      this.config.imageTokenId,
      image.features,
      this.config.hiddenSize,
    );
    return embeds;
  }

  /** One decoder run for one sequence: T new positions after pastLength cached ones. */
  async forward(embeds: Embeddings, input: StepInput): Promise<StepOutput> {
    const [out] = await this.forwardBatch(embeds, [input]);
    return out!;
  }

  /**
   * One decoder run over several sequences, each adding T positions (or fewer, left-padded: see
   * StepInput.newLength). When the sequences are, in order, the rows of one earlier run's present,
   * that present is fed as it is; otherwise their caches are copied into new tensors, shorter ones
   * left-padded with masked zeros. Prefixes are inputs of their own, ahead of the past in the
   * attention mask: a lone one as it is, a batch's in buffers kept between runs and edited as
   * sequences join and leave.
   */
  async forwardBatch(embeds: Embeddings, inputs: readonly StepInput[]): Promise<StepOutput[]> {
    const { config, sessions } = this;
    const batch = inputs.length;
    const newTokens =
      embeds instanceof Float32Array
        ? embeds.length / (batch * config.hiddenSize)
        : embeds.dims[1]!;
    if (batch > 1 && !this.canBatch)
      throw new Error('batched decoding needs the KV cache in host memory');
    const split = this.splitsPrefix;
    let steps = split ? inputs : inputs.map(prefixAsPast);
    const longestPrefix = Math.max(...steps.map((s) => s.prefix?.length ?? 0));
    // batched prefixes set the order of the run's rows and their width (prefix-batch.ts); the
    // rest follows them
    const prefix = sessions.hasPrefixInputs
      ? this.prefixFeeds(steps, longestPrefix, newTokens > 1 ? 'prefill' : 'step')
      : null;
    const order = prefix?.order;
    const prefixWidth = prefix?.width ?? 0;
    if (order !== undefined) steps = order.map((i) => steps[i]!);

    const shared = sharedPast(steps);
    const pastWidth = shared
      ? shared.tensors[0]!.dims[2]!
      : Math.max(...steps.map((s) => s.pastLength));
    // positions left of each row's own new ones: past padding, then new padding (past empty)
    const newPads = steps.map((s) => newPadding(s, newTokens));
    const pads = steps.map((s, b) =>
      shared ? s.past!.pad : pastWidth - s.pastLength + newPads[b]!,
    );

    const feeds: Record<string, ort.Tensor> = {};
    feeds['inputs_embeds'] = this.decoderEmbeds(
      order === undefined ? embeds : rowsInOrder(embeds, order),
      batch,
      newTokens,
    );
    // [prefix padding | prefix | past padding | past | new padding | new] per row, written
    // straight as int64 (a row has past or new padding, not both)
    const columns = prefixWidth + pastWidth + newTokens;
    const mask = new BigInt64Array(batch * columns).fill(1n);
    const positions: number[] = [];
    steps.forEach((s, b) => {
      const prefixLength = s.prefix?.length ?? 0;
      const newPad = newPads[b]!;
      mask.fill(0n, b * columns, b * columns + prefixWidth - prefixLength);
      mask.fill(0n, b * columns + prefixWidth, b * columns + prefixWidth + pads[b]!);
      // padding takes the first real position: masked, it changes nothing
      for (let t = 0; t < newTokens; t++)
        positions.push(prefixLength + s.pastLength + Math.max(0, t - newPad));
    });
    feeds['attention_mask'] = new ort.Tensor('int64', mask, [batch, columns]);
    feeds['position_ids'] = int64Tensor(positions, [batch, newTokens]);
    if (sessions.hasNumLogitsToKeep) feeds['num_logits_to_keep'] = int64Tensor([1], []);
    this.pastNames.forEach((name, k) => {
      feeds[name] = shared ? shared.tensors[k]! : this.paddedPast(steps, k, pastWidth);
    });
    if (prefix !== null) this.prefixNames.forEach((name, k) => (feeds[name] = prefix.tensors[k]!));

    const out = await sessions.decoder.run(feeds);
    const logitsTensor = out['logits']!;
    const logits = readFloats(logitsTensor);
    const rows = logitsTensor.dims[1]!;
    const vocab = logitsTensor.dims[2]!;
    const tensors = this.presentNames.map((name) => out[name]!);
    const outputs = steps.map((s, b) => {
      const start = (b * rows + rows - 1) * vocab;
      const own = Float32Array.from(logits.subarray(start, start + vocab));
      return {
        logits: own,
        present: { tensors, row: b, pad: pads[b]! },
        prefix: s.prefix ?? null,
      };
    });
    if (order === undefined) return outputs;
    const byInput: StepOutput[] = new Array<StepOutput>(batch);
    order.forEach((input, row) => (byInput[input] = outputs[row]!));
    return byInput;
  }

  /** Frees a cache held in GPU memory; host caches, which batches may share, are left to the GC. */
  release(cache: KvCache | null): void {
    if (cache === null || cache.tensors[0]?.dims[0] !== 1) return;
    for (const tensor of cache.tensors) disposeTensor(tensor);
  }

  private decoderEmbeds(embeds: Embeddings, batch: number, newTokens: number): ort.Tensor {
    const type = this.sessions.decoderEmbedsType;
    if (!(embeds instanceof Float32Array) && embeds.type === type) return embeds;
    const values = embeds instanceof Float32Array ? embeds : readFloats(embeds);
    return floatTensor(type, values, [batch, newTokens, this.config.hiddenSize]);
  }

  /** Past k of every sequence, left-padded with zeros to `width`: [B, kv_heads, width, head_dim]. */
  private paddedPast(inputs: readonly StepInput[], k: number, width: number): ort.Tensor {
    const { numKeyValueHeads: heads, headDim } = this.config;
    const type = this.sessions.kvType;
    if (width === 0) return emptyKv(type, inputs.length, heads, headDim);
    const size = inputs.length * heads * width * headDim;
    const data = type === 'float16' ? new Uint16Array(size) : new Float32Array(size);
    inputs.forEach((s, b) => {
      if (s.past === null || s.pastLength === 0) return;
      const { tensors, row, pad } = s.past;
      const source = tensorValues(tensors[k]!);
      const sourceWidth = tensors[k]!.dims[2]!;
      const length = s.pastLength * headDim;
      for (let h = 0; h < heads; h++) {
        const from = ((row * heads + h) * sourceWidth + pad) * headDim;
        const to = ((b * heads + h) * width + width - s.pastLength) * headDim;
        data.set(source.subarray(from, from + length), to);
      }
    });
    return tensorOf(type, data, [inputs.length, heads, width, headDim]);
  }

  /**
   * Prefix inputs: empty, a lone sequence's own tensors, or the batch's (prefix-batch.ts), which
   * come with the order of the run's rows.
   */
  private prefixFeeds(
    steps: readonly StepInput[],
    width: number,
    kind: 'step' | 'prefill',
  ): {
    readonly tensors: readonly ort.Tensor[];
    readonly width: number;
    readonly order?: readonly number[];
  } {
    const { numKeyValueHeads: heads, headDim } = this.config;
    const type = this.sessions.kvType;
    const batch = steps.length;
    if (width === 0)
      return { tensors: this.prefixNames.map(() => emptyKv(type, batch, heads, headDim)), width };
    if (batch === 1) return { tensors: steps[0]!.prefix!.tensors, width };
    // prefills and steps alternate: buffers of their own keep each one's rows in place
    const batches = this.prefixBatches;
    batches[kind] ??= new PrefixBatch(type, this.prefixNames.length, heads, headDim);
    return batches[kind].arrange(
      steps.map((s) => s.prefix ?? null),
      width,
    );
  }
}

/** The rows of [B, T, H] embeddings in the given order (a copy, unless the order is the same). */
function rowsInOrder(embeds: Embeddings, order: readonly number[]): Embeddings {
  if (order.every((input, row) => input === row)) return embeds;
  const values = embeds instanceof Float32Array ? embeds : tensorValues(embeds);
  const rowSize = values.length / order.length;
  const out =
    values instanceof Float32Array
      ? new Float32Array(values.length)
      : new Uint16Array(values.length);
  order.forEach((input, row) =>
    out.set(values.subarray(input * rowSize, (input + 1) * rowSize), row * rowSize),
  );
  if (embeds instanceof Float32Array) return out as Float32Array;
  return tensorOf(embeds.type as 'float32' | 'float16', out, embeds.dims);
}

/** Left padding among a run's `newTokens` new positions for this input (StepInput.newLength). */
function newPadding(input: StepInput, newTokens: number): number {
  const own = input.newLength ?? newTokens;
  if (!Number.isInteger(own) || own < 1 || own > newTokens)
    throw new Error(`newLength ${own} must be between 1 and the run's ${newTokens} new positions`);
  if (own < newTokens && (input.past !== null || input.pastLength > 0))
    throw new Error('new positions can be padded only in a sequence without a past');
  return newTokens - own;
}

/**
 * For a graph without prefix inputs: the prefix fed as the past. A prefix only ever starts a
 * sequence (its first run, the question after a cached image), when the past is still empty.
 */
function prefixAsPast(input: StepInput): StepInput {
  const { prefix } = input;
  if (prefix === undefined || prefix === null) return { ...input, prefix: null };
  if (input.past !== null && input.pastLength > 0)
    throw new Error('a prefix can stand in for the past only while the past is empty');
  return {
    prefix: null,
    past: { tensors: prefix.tensors, row: 0, pad: 0 },
    pastLength: prefix.length,
    // kept so that padded new positions are refused (newPadding): the prefix is now a past
    ...(input.newLength !== undefined ? { newLength: input.newLength } : {}),
  };
}

/**
 * The present of one earlier run, when the inputs are exactly its rows in order (a batch that did
 * not change since its last step, or a lone sequence's own cache).
 */
function sharedPast(inputs: readonly StepInput[]): KvCache | null {
  const first = inputs[0]?.past;
  if (first === null || first === undefined) return null;
  if (first.tensors[0]!.dims[0] !== inputs.length) return null;
  const same = inputs.every(
    (s, b) =>
      s.past !== null &&
      s.past.tensors === first.tensors &&
      s.past.row === b &&
      s.past.pad + s.pastLength === first.tensors[0]!.dims[2],
  );
  return same ? first : null;
}

/** Replaces the single image placeholder by `count` copies of it. */
export function expandImageToken(
  ids: readonly number[],
  imageTokenId: number,
  count: number,
): number[] {
  const at = ids.indexOf(imageTokenId);
  if (at < 0 || ids.indexOf(imageTokenId, at + 1) >= 0) {
    throw new EngineError('INVALID_INPUT', 'the prompt must contain exactly one image placeholder');
  }
  return [
    ...ids.slice(0, at),
    ...new Array<number>(count).fill(imageTokenId),
    ...ids.slice(at + 1),
  ];
}

/** Writes visual tokens [n, H] over the rows of `embeds` whose id is the image token, in order. */
export function writeImageFeatures(
  embeds: Float32Array,
  ids: readonly number[],
  imageTokenId: number,
  features: Float32Array,
  hidden: number,
): void {
  let next = 0;
  ids.forEach((id, position) => {
    if (id !== imageTokenId) return;
    embeds.set(features.subarray(next * hidden, (next + 1) * hidden), position * hidden);
    next++;
  });
  if (next * hidden !== features.length) {
    throw new EngineError(
      'INFERENCE_FAILED',
      `image has ${features.length / hidden} visual tokens but ${next} positions`,
    );
  }
}
