import { EngineError } from './errors.js';
import { isProcessedImage, selectCropGrid, visualTokenCount } from './image-processor.js';
import { cacheLength } from './magma-model.js';
import type { MagmaModel, StepOutput } from './magma-model.js';
import type { EncodedImage } from './magma-model.js';
import { entryBytes, slicePrefixKv, startsWith, templatePrefixIds } from './prefix-cache.js';
import type { PrefixCache, PrefixCacheChange, PrefixEntry } from './prefix-cache.js';
import type { PromptTokenizer } from './prompt.js';
import { Sequence } from './sequence.js';
import type { SchedulerRequest } from './sequence.js';
import type { EngineOptions, GenerateResult, PrefillPolicy } from './types.js';

// Continuous batching: every loop turn first prefills waiting requests into the batch (as the
// prefill policy allows), then advances all active sequences by one token in one batched decoder
// run. Finished sequences leave at once and waiting ones take their place on the next turn.
// Cancellation takes effect between runs, since onnxruntime cannot stop a run midway.

export interface SchedulerEvents {
  token(id: number, text: string): void;
  result(id: number, result: GenerateResult): void;
  error(id: number, error: unknown): void;
  /** A request without pixels whose cached prefix is gone: the engine resends it with the image. */
  prefixMiss?(id: number): void;
  /** Entries stored or evicted, and the counters after a request that used a prefix key. */
  prefixCache?(change: PrefixCacheChange): void;
}

export interface SchedulerSettings {
  readonly maxBatchSize: number;
  readonly prefillPolicy: PrefillPolicy;
  readonly maxPrefillTokens: number;
}

export const DEFAULT_SCHEDULER_SETTINGS: SchedulerSettings = {
  maxBatchSize: 4,
  prefillPolicy: 'interleave',
  maxPrefillTokens: 2048,
};

/** The scheduling options of EngineOptions with defaults filled in; throws RangeError on a bad value. */
export function schedulerSettings(
  options: Pick<EngineOptions, 'maxBatchSize' | 'prefillPolicy' | 'maxPrefillTokens'>,
): SchedulerSettings {
  const settings = { ...DEFAULT_SCHEDULER_SETTINGS };
  const { maxBatchSize, prefillPolicy, maxPrefillTokens } = options;
  if (maxBatchSize !== undefined) {
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1)
      throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
    settings.maxBatchSize = maxBatchSize;
  }
  if (prefillPolicy !== undefined) {
    if (prefillPolicy !== 'interleave' && prefillPolicy !== 'prefill-first')
      throw new RangeError(
        `prefillPolicy must be 'interleave' or 'prefill-first', got ${String(prefillPolicy)}`,
      );
    settings.prefillPolicy = prefillPolicy;
  }
  if (maxPrefillTokens !== undefined) {
    if (!Number.isInteger(maxPrefillTokens) || maxPrefillTokens < 1)
      throw new RangeError(`maxPrefillTokens must be a positive integer, got ${maxPrefillTokens}`);
    settings.maxPrefillTokens = maxPrefillTokens;
  }
  return settings;
}

/** How long the scheduler stays idle before the model drops its batch buffers. */
const BATCH_BUFFERS_IDLE_MS = 2000;

export class Scheduler {
  private readonly waiting: Sequence[] = [];
  private readonly active: Sequence[] = [];
  private readonly byId = new Map<number, Sequence>();
  private running = false;
  /** Drops the batch's buffers after an idle pause (run()). */
  private forgetTimer: ReturnType<typeof setTimeout> | undefined;
  private idleWaiters: Array<() => void> = [];
  /** Prompt ids before the question (prefix-cache.ts); null when the cache is off or the template has none. */
  private readonly templatePrefix: readonly number[] | null;

  constructor(
    private readonly model: MagmaModel,
    private readonly prompt: PromptTokenizer,
    private readonly settings: SchedulerSettings,
    private readonly events: SchedulerEvents,
    private readonly prefixCache?: PrefixCache,
  ) {
    this.templatePrefix = prefixCache?.enabled
      ? templatePrefixIds(prompt, model.config.imageTokenId)
      : null;
  }

  /** Requests waiting or running. */
  get size(): number {
    return this.byId.size;
  }

  /** Positions held in KV caches right now, over all sequences (a memory gauge). */
  get cachedPositions(): number {
    let total = 0;
    for (const sequence of this.byId.values()) {
      if (sequence.past !== null) total += sequence.pastLength;
      total += sequence.prefixKv?.length ?? 0;
    }
    return total;
  }

  submit(request: SchedulerRequest): void {
    const { config } = this.model;
    const suppress = request.suppressActionTokens ? config.actionTokenRange : undefined;
    const sequence = new Sequence(request, {
      eosTokenIds: config.eosTokenIds,
      decode: (ids) => this.prompt.decode(ids),
      sampling: {
        temperature: request.temperature,
        topP: request.topP ?? config.defaultTopP,
        ...(suppress !== undefined ? { suppress } : {}),
      },
    });
    this.byId.set(request.id, sequence);
    this.waiting.push(sequence);
    void this.run();
  }

  /** Ends a request now with what it has generated; its cache is freed at once (or right after a run using it). */
  cancel(id: number): void {
    const sequence = this.byId.get(id);
    if (sequence === undefined) return;
    sequence.cancel();
    this.finish(sequence);
  }

  cancelAll(): void {
    for (const id of [...this.byId.keys()]) this.cancel(id);
  }

  /** Resolves when no request is waiting or running. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    clearTimeout(this.forgetTimer);
    try {
      while (this.waiting.length > 0 || this.active.length > 0) {
        await this.admit();
        if (this.active.length > 0) await this.decodeStep();
      }
    } finally {
      this.running = false;
      // Under load the batch empties for a moment between requests: dropping its buffers then
      // would rebuild and refill them (every prefix copied again) as it grows back. They go
      // only after a real pause.
      this.forgetTimer = setTimeout(() => this.model.forgetBatch(), BATCH_BUFFERS_IDLE_MS);
      this.forgetTimer.unref();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /**
   * Prefills waiting requests, first come first served, while the batch has room. Under
   * 'interleave' one turn prefills at most maxPrefillTokens prompt positions, but always at least
   * one request, so a long prompt cannot wait forever. Prefix-cache hits next to each other in
   * the queue share one run: only their questions are prefilled, each on its cached prefix.
   */
  private async admit(): Promise<void> {
    const { maxBatchSize, prefillPolicy, maxPrefillTokens } = this.settings;
    let budget = prefillPolicy === 'prefill-first' ? Infinity : maxPrefillTokens;
    let admitted = 0;
    // the next waiting request, planned, if there is room and the turn's budget allows it
    const take = (room: number, hitsOnly: boolean): Sequence | undefined => {
      while (room > 0 && this.waiting.length > 0) {
        const next = this.waiting[0]!;
        if (!this.plan(next)) continue; // failed and removed
        // a cached prefix is not prefilled again: only the rest counts against the budget
        const cost = next.promptTokens - next.cachedTokens;
        if (admitted > 0 && cost > budget) return undefined;
        if (hitsOnly && !this.prefillsTogether(next)) return undefined;
        this.waiting.shift();
        budget -= cost;
        admitted++;
        return next;
      }
      return undefined;
    };
    const room = (): number => maxBatchSize - this.active.length;
    for (let next = take(room(), false); next !== undefined; next = take(room(), false)) {
      if (!this.prefillsTogether(next)) {
        await this.prefill(next);
        continue;
      }
      const hits = [next];
      let more: Sequence | undefined;
      while ((more = take(room() - hits.length, true)) !== undefined) hits.push(more);
      await this.prefillHits(hits);
    }
  }

  /**
   * Whether a planned request is a prefix-cache hit whose question can share a run with other
   * hits: their new positions are then left-padded, which needs the prefix as an input of its own.
   */
  private prefillsTogether(sequence: Sequence): boolean {
    return sequence.cachedTokens > 0 && this.model.splitsPrefix;
  }

  /**
   * Tokenizes the question and sizes the prompt from the crop grid alone, before any model work,
   * so the prefill budget and the context-length check need no inference. False if it failed.
   */
  private plan(sequence: Sequence): boolean {
    if (sequence.promptIds !== null) return true;
    try {
      const { config } = this.model;
      const { image, maxTokens, prompt, prefixKey } = sequence.request;
      const started = performance.now();
      const ids = this.prompt.encodeUserQuestion(prompt);
      if (prefixKey !== undefined && this.prefixCache?.enabled)
        sequence.prefix = this.prefixCache.acquire(prefixKey) ?? null;
      const entry = sequence.prefix;
      if (entry === null && image === undefined) {
        this.prefixGone(sequence);
        return false;
      }
      const grid =
        entry?.image.grid ??
        (isProcessedImage(image!)
          ? image.grid
          : selectCropGrid(image!.width, image!.height, config.cropSize, config.maxCrops));
      sequence.grid = { ...grid };
      sequence.imageTokens = visualTokenCount(grid, config.cellsPerSide);
      if (entry !== null && reusesKv(entry, ids)) sequence.cachedTokens = entry.positions;
      sequence.promptTokens = ids.length - 1 + sequence.imageTokens;
      const limit = config.maxPositionEmbeddings;
      if (sequence.promptTokens + maxTokens > limit) {
        throw new EngineError(
          'INVALID_INPUT',
          `prompt (${sequence.promptTokens} tokens, ${sequence.imageTokens} of them image) plus maxTokens ${maxTokens} exceeds the model's ${limit} positions`,
        );
      }
      sequence.promptIds = ids;
      sequence.timings.preprocessMs = performance.now() - started;
      return true;
    } catch (error) {
      this.fail(sequence, error);
      return false;
    }
  }

  private async prefill(sequence: Sequence): Promise<void> {
    if (sequence.done) return;
    const started = performance.now();
    sequence.timings.queueMs = started - sequence.receivedAt;
    sequence.inFlight = true;
    try {
      const out = await this.prefillPrompt(sequence);
      this.releasePrefix(sequence);
      sequence.inFlight = false;
      if (out === null) return;
      this.beginDecoding(sequence, out);
    } catch (error) {
      sequence.inFlight = false;
      this.fail(sequence, error);
    } finally {
      this.releasePrefix(sequence);
    }
  }

  /**
   * Prefix-cache hits prefilled in one run: each question, left-padded to the longest, on its
   * own cached prefix (prefillsTogether).
   */
  private async prefillHits(hits: readonly Sequence[]): Promise<void> {
    const cache = this.prefixCache!;
    const started = performance.now();
    for (const sequence of hits) {
      sequence.timings.queueMs = started - sequence.receivedAt;
      sequence.inFlight = true;
    }
    try {
      const outputs = await this.prefillQuestions(hits);
      const prefillMs = performance.now() - started;
      hits.forEach((sequence, b) => {
        sequence.timings.prefillMs = prefillMs;
        cache.countHit();
        this.releasePrefix(sequence);
        sequence.inFlight = false;
        this.beginDecoding(sequence, outputs[b]!);
      });
      this.events.prefixCache?.({ added: [], evicted: [], stats: cache.stats() });
    } catch (error) {
      for (const sequence of hits) {
        sequence.inFlight = false;
        this.fail(sequence, error);
      }
    } finally {
      for (const sequence of hits) this.releasePrefix(sequence);
    }
  }

  /**
   * One decoder run for the questions of prefix-cache hits (sequences whose pinned entry holds
   * keys and values their prompt starts with): each question left-padded to the longest, each on
   * its own cached prefix.
   */
  private async prefillQuestions(hits: readonly Sequence[]): Promise<StepOutput[]> {
    const questions = hits.map((s) => s.promptIds!.slice(s.prefix!.prefixIds.length));
    const width = Math.max(...questions.map((question) => question.length));
    // the padding's ids are masked out: any id will do
    const ids = questions.flatMap((question) => [
      ...new Array<number>(width - question.length).fill(question[0]!),
      ...question,
    ]);
    const embeds = await this.model.embed(ids, hits.length);
    // The cached tensors are an input: runs write their own present, so hits share them.
    return this.model.forwardBatch(
      embeds,
      hits.map((s, b) => ({
        prefix: { tensors: s.prefix!.kv!, length: s.prefix!.positions },
        past: null,
        pastLength: 0,
        newLength: questions[b]!.length,
      })),
    );
  }

  /** A prefilled sequence takes its first token and joins the batch (or ends, if cancelled meanwhile). */
  private beginDecoding(sequence: Sequence, out: StepOutput): void {
    if (sequence.done) {
      this.model.release(out.present);
      return;
    }
    if (this.model.splitsPrefix && out.prefix === null) {
      // The prompt's keys and values become the sequence's prefix: later steps read them in
      // place and move only the generated positions.
      sequence.prefixKv = { tensors: out.present.tensors, length: cacheLength(out.present) };
      sequence.past = null;
      sequence.pastLength = 0;
    } else {
      sequence.prefixKv = out.prefix;
      sequence.past = out.present;
      sequence.pastLength = cacheLength(out.present);
    }
    this.advance(sequence, out.logits);
    if (!sequence.done) this.active.push(sequence);
  }

  /**
   * The prompt's decoder run. With a cached prefix whose ids the prompt starts with, only the
   * question is prefilled, on the cached keys and values; otherwise the whole prompt, with the
   * cached vision features if there are some, and a keyed miss stores its prefix. Null if the
   * sequence ended (cancelled) meanwhile.
   */
  private async prefillPrompt(sequence: Sequence): Promise<StepOutput | null> {
    const { model, prefixCache: cache } = this;
    const { prefixKey, image: pixels } = sequence.request;
    const ids = sequence.promptIds!;
    const keyed = prefixKey !== undefined && cache !== undefined && cache.enabled;
    // stored by an earlier request of the same image since this one was planned
    if (keyed && sequence.prefix === null) sequence.prefix = cache.acquire(prefixKey) ?? null;
    const entry = sequence.prefix;
    let out: StepOutput;
    if (entry !== null && reusesKv(entry, ids)) {
      sequence.cachedTokens = entry.positions;
      const prefillStarted = performance.now();
      [out] = (await this.prefillQuestions([sequence])) as [StepOutput];
      sequence.timings.prefillMs = performance.now() - prefillStarted;
      cache!.countHit();
    } else {
      sequence.cachedTokens = 0;
      let image: EncodedImage;
      if (entry !== null) {
        image = entry.image;
      } else {
        image = await model.encodeImage(pixels!);
        sequence.timings.preprocessMs += image.preprocessMs;
        sequence.timings.visionMs = image.visionMs;
      }
      if (sequence.done) return null;
      const prefillStarted = performance.now();
      const embeds = await model.promptEmbeddings(ids, image);
      out = await model.forward(embeds, { past: null, pastLength: 0 });
      sequence.timings.prefillMs = performance.now() - prefillStarted;
      if (keyed) {
        cache.countMiss();
        const change = entry === null ? this.storePrefix(prefixKey, ids, image, out) : undefined;
        this.events.prefixCache?.(change ?? { added: [], evicted: [], stats: cache.stats() });
        return sequence.done ? this.dropOutput(out) : out;
      }
    }
    if (keyed) this.events.prefixCache?.({ added: [], evicted: [], stats: cache.stats() });
    return sequence.done ? this.dropOutput(out) : out;
  }

  private dropOutput(out: StepOutput): null {
    this.model.release(out.present);
    return null;
  }

  /**
   * Stores a miss's prefix: its vision features, and the first positions of its present (the
   * prefix's keys and values: causal attention makes them independent of the question).
   */
  private storePrefix(
    key: string,
    ids: readonly number[],
    image: EncodedImage,
    out: StepOutput,
  ): PrefixCacheChange {
    const cache = this.prefixCache!;
    const prefix = this.templatePrefix;
    const fits = prefix !== null && startsWith(ids, prefix) && ids.length > prefix.length;
    const prefixIds = fits ? prefix : [];
    const positions = fits ? prefix.length - 1 + image.tokens : 0;
    // a GPU cache cannot be cut from JavaScript: then only the features are kept
    const kv = fits && this.model.canBatch ? slicePrefixKv(out.present.tensors, positions) : null;
    return cache.insert({ key, image, prefixIds, positions, kv, bytes: entryBytes(image, kv) });
  }

  private releasePrefix(sequence: Sequence): void {
    if (sequence.prefix === null) return;
    this.prefixCache?.unpin(sequence.prefix);
    sequence.prefix = null;
  }

  /** A request sent without pixels whose prefix was evicted: handed back to the engine. */
  private prefixGone(sequence: Sequence): void {
    if (this.events.prefixMiss === undefined) {
      this.fail(sequence, new EngineError('INVALID_INPUT', 'the request has no image'));
      return;
    }
    sequence.cancel();
    this.byId.delete(sequence.id);
    this.remove(sequence);
    this.events.prefixMiss(sequence.id);
  }

  private async decodeStep(): Promise<void> {
    // All active sequences fit one batch (admission keeps them at most maxBatchSize), unless the
    // cache lives on the GPU: then they take turns, one per run.
    const batchSize = this.model.canBatch ? this.settings.maxBatchSize : 1;
    const batch = this.active.slice(0, batchSize);
    // Rotate so that, when more are active than fit, every sequence gets its turn. A batch that
    // fits keeps its order, so its cache is fed back without copying.
    this.active.splice(0, batch.length);
    this.active.push(...batch);
    const started = performance.now();
    for (const sequence of batch) sequence.inFlight = true;
    try {
      const embeds = await this.model.embed(
        batch.map((s) => s.lastToken),
        batch.length,
      );
      const inputs = batch.map((s) => ({
        prefix: s.prefixKv,
        past: s.past,
        pastLength: s.pastLength,
      }));
      const outputs = await this.model.forwardBatch(embeds, inputs);
      const elapsed = performance.now() - started;
      batch.forEach((sequence, b) => {
        const out = outputs[b]!;
        sequence.inFlight = false;
        if (sequence.done) {
          this.model.release(out.present);
          this.model.release(sequence.past);
          sequence.past = null;
          sequence.prefixKv = null;
          return;
        }
        if (sequence.past?.tensors !== out.present.tensors) this.model.release(sequence.past);
        sequence.past = out.present;
        sequence.pastLength = cacheLength(out.present);
        sequence.prefixKv = out.prefix;
        sequence.timings.decodeMs += elapsed;
        this.advance(sequence, out.logits);
      });
    } catch (error) {
      for (const sequence of batch) {
        sequence.inFlight = false;
        this.fail(sequence, error);
      }
    }
  }

  /** Samples the next id from logits, streams new text, and finishes the sequence if it ended. */
  private advance(sequence: Sequence, logits: Float32Array): void {
    const delta = sequence.accept(logits);
    if (delta && sequence.request.stream) this.events.token(sequence.id, delta);
    if (sequence.done) this.finish(sequence);
  }

  private finish(sequence: Sequence): void {
    if (!this.byId.delete(sequence.id)) return;
    this.remove(sequence);
    this.events.result(sequence.id, sequence.result());
  }

  private fail(sequence: Sequence, error: unknown): void {
    sequence.cancel();
    if (!this.byId.delete(sequence.id)) return;
    this.remove(sequence);
    const wrapped =
      error instanceof EngineError
        ? error
        : new EngineError('INFERENCE_FAILED', (error as Error).message ?? String(error));
    this.events.error(sequence.id, wrapped);
  }

  private remove(sequence: Sequence): void {
    const waitingAt = this.waiting.indexOf(sequence);
    if (waitingAt >= 0) this.waiting.splice(waitingAt, 1);
    const activeAt = this.active.indexOf(sequence);
    if (activeAt >= 0) this.active.splice(activeAt, 1);
    if (!sequence.inFlight) {
      this.releasePrefix(sequence);
      this.model.release(sequence.past);
      sequence.past = null;
      sequence.prefixKv = null;
    }
  }
}

/** Whether a prompt can take an entry's keys and values: it starts with the entry's prefix and has more after it. */
function reusesKv(entry: PrefixEntry, ids: readonly number[]): boolean {
  return (
    entry.kv !== null && ids.length > entry.prefixIds.length && startsWith(ids, entry.prefixIds)
  );
}
