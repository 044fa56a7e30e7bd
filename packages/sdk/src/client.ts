import { createTRPCClient, httpBatchStreamLink, httpLink } from '@trpc/client';
import type { TRPCClient } from '@trpc/client';
import { isImageId } from '@magma-som/schemas/plain';
import type {
  AskResponse,
  AskStreamEvent,
  Health,
  ImageUploadResponse,
  Readiness,
  ServerInfo,
} from './contract/types.js';
import type { AppRouter } from './app-router.js';
import { Attempt } from './attempt.js';
import { classifyFailure } from './classify-error.js';
import {
  ClientClosedError,
  ImageNotFoundError,
  InternalServerError,
  InvalidImageError,
  InvalidInputError,
  MagmaError,
} from './errors.js';
import { DEFAULTS } from './options.js';
import type { ClientOptions, RequestOptions, RetryOptions } from './options.js';
import { imageAsBytes, loadImage } from './image-source.js';
import type { ImageSource, ReadImageFile } from './image-source.js';
import { prepareAsk } from './prepare-ask.js';
import type { AskInput } from './prepare-ask.js';
import { levelledLogger, resolveLogLevel } from './logger.js';
import type { Logger } from './logger.js';
import { Jobs } from './jobs/jobs.js';
import { withRetries } from './retry.js';
import { SDK_HEADER, runtimeName, userAgent } from './user-agent.js';
import { imageIdOf, randomUuid } from './web/web-crypto.js';

/**
 * Creates a client. Requests go through the runtime's fetch (in Node, its keep-alive pool, or
 * the `dispatcher` given). Close it (or `await using`) when done: that stops pending retries.
 */
export function createClient(options: ClientOptions): MagmaClient {
  return new MagmaClient(options);
}

/**
 * A typed client of a magma-som server, built on Web APIs only (fetch, Web Crypto, Blob,
 * streams): it runs in browsers, edge runtimes, Deno, Bun and Node. The Node entry's client
 * (`@magma-som/sdk` in Node, or `@magma-som/sdk/node`) also reads images from file paths.
 */
export class MagmaClient implements AsyncDisposable {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #streamIdleTimeoutMs: number;
  readonly #maxRetries: number;
  readonly #retry: RetryOptions;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #fetch: typeof fetch;
  /** For calls answered in one piece; undefined = #fetch. */
  readonly #unaryFetch: typeof fetch | undefined;
  readonly #uploadThresholdBytes: number;
  /** Node: the user's undici dispatcher; undefined = the runtime's own (global) one. */
  readonly #dispatcher: object | undefined;
  readonly #log: Logger;
  readonly #identity: Readonly<Record<string, string>>;
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;
  readonly #reuseImages: boolean;
  /** Ids this client uploaded (reuseImages): asked by id without uploading again. */
  readonly #uploaded = new Set<string>();

  /** Images stored on the server, for asks that name them by id instead of sending the bytes. */
  readonly images = {
    /**
     * Stores an image on the server for a while (its TTL, renewed by each ask using it) and
     * answers its id: pass `image: imageId` to ask() or askStream(). An expired id fails with
     * ImageNotFoundError. Same bytes, same id.
     */
    upload: (source: ImageSource, options: RequestOptions = {}): Promise<ImageUploadResponse> =>
      this.#uploadImage(source, options),
  };

  /**
   * Batch jobs: `await client.jobs.create(asks, { idempotencyKey })` answers a handle with
   * status(), cancel(), wait({ onProgress }) and `for await (const result of handle.results())`.
   * The server needs Redis for them (an APIError with code JOBS_NOT_ENABLED otherwise).
   */
  readonly jobs = new Jobs({
    create: (request, options) =>
      this.#jobCall('jobs.create', options, true, (trpc, signal) =>
        trpc.jobs.create.mutate(request, { signal }),
      ),
    status: (batchId, options) =>
      this.#jobCall('jobs.status', options, false, (trpc, signal) =>
        trpc.jobs.status.query({ batchId }, { signal }),
      ),
    results: (batchId, cursor, limit, options) =>
      this.#jobCall('jobs.results', options, false, (trpc, signal) =>
        trpc.jobs.results.query({ batchId, cursor, limit }, { signal }),
      ),
    cancel: (batchId, options) =>
      this.#jobCall('jobs.cancel', options, true, (trpc, signal) =>
        trpc.jobs.cancel.mutate({ batchId }, { signal }),
      ),
    readFile: (path) => this.readImageFile(path),
  });

  constructor(options: ClientOptions) {
    if (!options?.baseUrl) throw new InvalidInputError('createClient() needs a baseUrl');
    const url = new URL(String(options.baseUrl));
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = checkedNumber('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs);
    this.#streamIdleTimeoutMs = checkedNumber(
      'streamIdleTimeoutMs',
      options.streamIdleTimeoutMs,
      DEFAULTS.streamIdleTimeoutMs,
    );
    this.#maxRetries = checkedNumber('maxRetries', options.maxRetries, DEFAULTS.maxRetries);
    this.#retry = options.retry ?? {};
    this.#headers = options.headers ?? {};
    // Called as a plain function: browsers reject a fetch called on another object.
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#unaryFetch = options.fetch === undefined ? this.runtimeUnaryFetch() : undefined;
    this.#uploadThresholdBytes = checkedNumber(
      'uploadThresholdBytes',
      options.uploadThresholdBytes,
      DEFAULTS.uploadThresholdBytes,
    );
    this.#reuseImages = options.reuseImages ?? false;
    this.#log = levelledLogger(resolveLogLevel(options.logLevel), options.logger);
    // No pool of its own: Node's fetch keeps connections alive in its global dispatcher, which
    // is also where a user's proxy (undici's setGlobalDispatcher) takes effect.
    this.#dispatcher = options.dispatcher;
    const runtime = runtimeName();
    // Browsers do not let a page set User-Agent: the SDK names itself in its own header there.
    this.#identity =
      runtime === 'browser' ? { [SDK_HEADER]: userAgent() } : { 'user-agent': userAgent() };
  }

  /** Asks a Set-of-Mark question and waits for the whole answer. */
  async ask(input: AskInput, options: RequestOptions = {}): Promise<AskResponse> {
    this.#assertOpen();
    if (this.#reuseImages) return this.#byImageId(input, (byId) => this.#ask(byId, options));
    return this.#ask(input, options);
  }

  async #ask(input: AskInput, options: RequestOptions): Promise<AskResponse> {
    const prepared = await prepareAsk(input, {
      uploadThresholdBytes: this.#uploadThresholdBytes,
      allowUpload: true,
      readFile: this.#readFile,
    });
    return this.#call('ask', options, true, async (attempt) => {
      const trpc = this.#trpc(attempt);
      const response =
        prepared.route === 'upload'
          ? await trpc.askUpload.mutate(prepared.form, { signal: attempt.signal })
          : await trpc.ask.mutate(prepared.request, { signal: attempt.signal });
      return response satisfies AskResponse;
    });
  }

  async #uploadImage(source: ImageSource, options: RequestOptions): Promise<ImageUploadResponse> {
    this.#assertOpen();
    const { bytes, mediaType } = imageAsBytes(await loadImage(source, this.#readFile));
    const response = await this.#call('uploadImage', options, true, async (attempt) => {
      const form = new FormData();
      form.append('image', new Blob([bytes], { type: mediaType }), 'image');
      return this.#trpc(attempt).uploadImage.mutate(form, { signal: attempt.signal });
    });
    this.#uploaded.add(response.imageId);
    return response;
  }

  /**
   * reuseImages: the ask by the image's id (the server's id is the SHA-256 of the bytes, so it
   * is known here without asking), uploading the image first if this client has not yet, and
   * again if the server let it expire.
   */
  async #byImageId<T>(input: AskInput, ask: (byId: AskInput) => Promise<T>): Promise<T> {
    if (typeof input?.image === 'string' && isImageId(input.image)) return ask(input);
    const { bytes } = imageAsBytes(await loadImage(input.image, this.#readFile));
    // Without Web Crypto's digest (a plain-http page) the upload itself answers the id.
    let imageId = await imageIdOf(bytes);
    if (imageId === undefined || !this.#uploaded.has(imageId))
      imageId = (await this.#uploadImage(bytes, {})).imageId;
    try {
      return await ask({ ...input, image: imageId });
    } catch (error) {
      if (!(error instanceof ImageNotFoundError)) throw error;
      await this.#uploadImage(bytes, {});
      return ask({ ...input, image: imageId });
    }
  }

  /**
   * Asks and streams the answer: `token` events as text is generated, then one `done` event with
   * the whole response. Failures before the first event are retried like `ask`; once events have
   * arrived a failure ends the stream with its error. Stopping the loop early cancels the request.
   * `timeoutMs` covers the wait for the first event; after it, `streamIdleTimeoutMs` the wait for
   * each next one (the server's deadline bounds the whole). Images go as base64 in JSON, whatever
   * their size.
   */
  async *askStream(
    input: AskInput,
    options: RequestOptions = {},
  ): AsyncGenerator<AskStreamEvent, void, undefined> {
    this.#assertOpen();
    const prepared = await prepareAsk(input, {
      uploadThresholdBytes: this.#uploadThresholdBytes,
      allowUpload: false,
      readFile: this.#readFile,
    });
    if (prepared.route !== 'json')
      throw new InvalidInputError('streamed asks send the image as JSON');
    let current: Attempt | undefined;
    const started = await this.#call(
      'askStream',
      options,
      true,
      async (attempt) => {
        current = attempt;
        const trpc = this.#trpcStream(attempt);
        const events = await trpc.askStream.mutate(prepared.request, { signal: attempt.signal });
        const iterator = events[Symbol.asyncIterator]();
        const first = await iterator.next();
        return { iterator, first };
      },
      { keepAttemptOpen: true },
    );
    const attempt = current!;
    const { iterator } = started;
    attempt.pauseTimer();
    const idleMs = checkedNumber(
      'streamIdleTimeoutMs',
      options.streamIdleTimeoutMs,
      this.#streamIdleTimeoutMs,
    );
    let finished = false;
    try {
      let result = started.first;
      let sawDone = false;
      while (!result.done) {
        const event = result.value;
        if (event.type === 'done') sawDone = true;
        yield event;
        // The idle clock runs only while waiting for the server, not while the consumer works.
        attempt.restartIdleTimer(idleMs);
        try {
          result = await iterator.next();
        } catch (error) {
          throw this.#classify(error, attempt, options.signal?.aborted);
        } finally {
          attempt.pauseTimer();
        }
      }
      finished = true;
      if (!sawDone) {
        throw new InternalServerError('the stream ended without a done event', {
          status: attempt.response?.status,
          requestId: attempt.response?.headers.get('x-request-id') ?? undefined,
          retryable: false,
        });
      }
    } catch (error) {
      // A failure after the first event is not retried: it ends this, the last, attempt.
      if (error instanceof MagmaError) error.attempts = attempt.number;
      throw error;
    } finally {
      if (!finished) {
        attempt.abort();
        await iterator.return?.().catch(() => undefined);
      }
      attempt.dispose();
    }
  }

  /** What the server runs and the limits in force. */
  async info(options: RequestOptions = {}): Promise<ServerInfo> {
    this.#assertOpen();
    return this.#call('info', options, false, async (attempt) => {
      const info = await this.#trpc(attempt).info.query(undefined, { signal: attempt.signal });
      return info satisfies ServerInfo;
    });
  }

  /** GET /health: whether the process is alive. */
  async health(options: RequestOptions = {}): Promise<Health> {
    this.#assertOpen();
    return this.#call('health', options, false, (attempt) =>
      this.#getJson<Health>(attempt, '/health', false),
    );
  }

  /** GET /ready: whether the model is loaded and warm. A 503 "not ready" answer is returned, not thrown. */
  async ready(options: RequestOptions = {}): Promise<Readiness> {
    this.#assertOpen();
    return this.#call('ready', options, false, (attempt) =>
      this.#getJson<Readiness>(attempt, '/ready', true),
    );
  }

  /**
   * Closes the client: requests in flight finish, pending retries stop with ClientClosedError,
   * new calls fail with it. Connections belong to the runtime's pool (or your `dispatcher`).
   * Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort(new ClientClosedError());
    })();
    return this.#closed;
  }

  /** `await using client = createClient(...)` closes the client when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Reads an image given as a file path or `file:` URL. This client uses Web APIs only and has
   * no files to read; the Node entry's MagmaClient overrides it.
   */
  protected readImageFile(path: string | URL): Promise<Uint8Array> {
    return Promise.reject(
      new InvalidImageError(
        `cannot read the image file ${JSON.stringify(String(path))}: file paths are read by the Node entry (@magma-som/sdk in Node, Deno and Bun, or @magma-som/sdk/node); elsewhere pass the bytes (Uint8Array, ArrayBuffer, Blob), base64 or a data URL`,
      ),
    );
  }

  /**
   * The runtime's faster way to make calls whose answer is read whole, used when no `fetch` was
   * given; undefined = the global fetch. The Node entry's client sends them through undici's
   * request().
   */
  protected runtimeUnaryFetch(): typeof fetch | undefined {
    return undefined;
  }

  readonly #readFile: ReadImageFile = (path) => this.readImageFile(path);

  /** One job procedure, with the same retries, timeouts and typed errors as ask(). */
  #jobCall<T>(
    operation: string,
    options: RequestOptions,
    mutation: boolean,
    run: (trpc: TRPCClient<AppRouter>, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    this.#assertOpen();
    return this.#call(operation, options, mutation, (attempt) =>
      run(this.#trpc(attempt), attempt.signal),
    );
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClientClosedError();
  }

  /** Runs one call: attempts with their own timeout, retried per policy, errors typed. */
  async #call<T>(
    operation: string,
    options: RequestOptions,
    mutation: boolean,
    run: (attempt: Attempt) => Promise<T>,
    { keepAttemptOpen = false } = {},
  ): Promise<T> {
    const idempotencyKey = mutation
      ? (options.idempotencyKey ?? `magma-${randomUuid()}`)
      : undefined;
    const headers = this.#requestHeaders(options, idempotencyKey);
    const maxRetries = checkedNumber('maxRetries', options.maxRetries, this.#maxRetries);
    const log = this.#log;
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const retry: RetryOptions = {
      ...this.#retry,
      onRetry: (event) => {
        log.info(`${operation}: retrying in ${event.delayMs} ms (${event.reason})`, {
          attempt: event.attempt,
          requestId: event.error.requestId,
          idempotencyKey,
        });
        this.#retry.onRetry?.(event);
      },
    };
    try {
      const result = await withRetries(
        {
          operation,
          maxRetries,
          retry,
          signal: options.signal,
          closeSignal: this.#closing.signal,
          idempotencyKey,
        },
        (attemptNumber) =>
          this.#attempt(operation, attemptNumber, options, headers, run, keepAttemptOpen),
      );
      log.debug(`${operation}: done in ${elapsed()} ms`);
      return result;
    } catch (error) {
      const typed = error as MagmaError;
      log.debug(`${operation}: failed after ${elapsed()} ms: ${typed.message}`, {
        code: typed.code,
        status: typed.status,
        attempts: typed.attempts,
        requestId: typed.requestId,
      });
      throw error;
    }
  }

  /** One attempt of a call: its own timeout and abort, the failure typed. */
  async #attempt<T>(
    operation: string,
    attemptNumber: number,
    options: RequestOptions,
    headers: Record<string, string>,
    run: (attempt: Attempt) => Promise<T>,
    keepAttemptOpen: boolean,
  ): Promise<T> {
    this.#log.debug(`${operation}: attempt ${attemptNumber}`, { baseUrl: this.baseUrl });
    if (options.signal?.aborted) throw this.#classify(options.signal.reason, undefined, true);
    const attempt = new Attempt({
      number: attemptNumber,
      timeoutMs: checkedNumber('timeoutMs', options.timeoutMs, this.#timeoutMs),
      signal: options.signal,
      fetch: this.#fetch,
      unaryFetch: this.#unaryFetch,
      dispatcher: this.#dispatcher,
      headers,
    });
    let ok = false;
    try {
      const result = await run(attempt);
      ok = true;
      // undici marks a fresh connection idle one macrotask after its response ends; yield
      // so that a call made right after this one reuses it instead of opening another.
      await nextMacrotask();
      return result;
    } catch (error) {
      throw this.#classify(error, attempt, options.signal?.aborted);
    } finally {
      if (!ok || !keepAttemptOpen) attempt.dispose();
    }
  }

  #classify(error: unknown, attempt: Attempt | undefined, userAborted = false): MagmaError {
    return classifyFailure({
      error,
      response: attempt?.response,
      body: attempt?.body,
      timedOut: attempt?.timedOut ?? false,
      timeoutMs: attempt?.timeoutMs ?? this.#timeoutMs,
      idle: attempt?.idle ?? false,
      userAborted,
      closed: this.#closed !== undefined && isPoolClosed(error),
    });
  }

  #requestHeaders(
    options: RequestOptions,
    idempotencyKey: string | undefined,
  ): Record<string, string> {
    return {
      ...this.#identity,
      ...this.#headers,
      ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}),
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      ...options.headers,
    };
  }

  // A tRPC client per attempt is a few small objects; it lets each attempt own its fetch, so
  // the response (status, Retry-After, request id) is known even when tRPC cannot parse it.
  #trpc(attempt: Attempt): TRPCClient<AppRouter> {
    return createTRPCClient<AppRouter>({
      links: [
        httpLink({
          url: `${this.baseUrl}/trpc`,
          fetch: attempt.fetch,
          headers: () => attempt.headers,
        }),
      ],
    });
  }

  #trpcStream(attempt: Attempt): TRPCClient<AppRouter> {
    return createTRPCClient<AppRouter>({
      links: [
        httpBatchStreamLink({
          url: `${this.baseUrl}/trpc`,
          maxItems: 1,
          fetch: attempt.streamFetch,
          headers: () => attempt.headers,
        }),
      ],
    });
  }

  async #getJson<T>(attempt: Attempt, path: string, acceptUnavailable: boolean): Promise<T> {
    const response = await attempt.fetch(`${this.baseUrl}${path}`, {
      method: 'GET',
      headers: { accept: 'application/json', ...attempt.headers },
    });
    const text = await response.text();
    const parsed = parseJson(text);
    // An error's non-JSON text, kept by the attempt, stays the error's body.
    if (parsed !== undefined || response.ok) attempt.body = parsed;
    // /ready answers 503 with a Readiness body while loading: that is an answer, not a failure.
    const isReadiness =
      typeof (attempt.body as { ready?: unknown } | undefined)?.ready === 'boolean';
    if (response.ok || (acceptUnavailable && response.status === 503 && isReadiness)) {
      if (attempt.body === undefined) throw new Error(`GET ${path} returned no JSON`);
      return attempt.body as T;
    }
    throw new Error(`GET ${path} failed with HTTP ${response.status}`);
  }
}

/** setImmediate where the runtime has it: setTimeout(0) waits at least a millisecond. */
function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof setImmediate === 'function') setImmediate(resolve);
    else setTimeout(resolve, 0);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isPoolClosed(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

function checkedNumber(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new InvalidInputError(`${name} must be a number >= 0`);
  }
  return value;
}
