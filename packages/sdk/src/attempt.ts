import { RETRY_COUNT_HEADER } from './user-agent.js';

/**
 * One HTTP attempt: its abort signal (the caller's signal or the timeout, whichever fires
 * first), and a fetch that uses the client's dispatcher (Node) and remembers the response, so
 * errors can be classified by status and headers even when the body is not tRPC-shaped.
 */
export class Attempt {
  readonly #controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #userSignal: AbortSignal | undefined;
  readonly #onUserAbort = () => this.#controller.abort(this.#userSignal?.reason);
  readonly #fetchImpl: typeof fetch;
  readonly #unaryFetchImpl: typeof fetch;
  readonly #dispatcher: object | undefined;
  readonly #headers: Record<string, string>;
  timedOut = false;
  /** The limit that fired or is running: timeoutMs, then a stream's idle timeout. */
  timeoutMs: number;
  /** Whether the running limit is a stream's idle timeout. */
  idle = false;
  response: Response | undefined;
  /** The body of an error response or a plain-route response: parsed JSON, else the text. */
  body: unknown;

  /** Which attempt of its call this is (1 = the first try). */
  readonly number: number;

  constructor(options: {
    number: number;
    timeoutMs: number;
    signal: AbortSignal | undefined;
    fetch: typeof fetch;
    /** For calls answered in one piece (not streams); `fetch` when absent. */
    unaryFetch?: typeof fetch | undefined;
    /** An undici Dispatcher for the fetch; undefined = the runtime's own (global) one. */
    dispatcher: object | undefined;
    headers: Record<string, string>;
  }) {
    this.#fetchImpl = options.fetch;
    this.#unaryFetchImpl = options.unaryFetch ?? options.fetch;
    this.#dispatcher = options.dispatcher;
    this.#headers = { ...options.headers, [RETRY_COUNT_HEADER]: String(options.number - 1) };
    this.#userSignal = options.signal;
    this.number = options.number;
    this.timeoutMs = options.timeoutMs;
    this.#arm(options.timeoutMs);
    if (this.#userSignal?.aborted) this.#onUserAbort();
    else this.#userSignal?.addEventListener('abort', this.#onUserAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Headers every request of this attempt carries. */
  get headers(): Record<string, string> {
    return this.#headers;
  }

  /** Fetch for a call whose whole answer is read at once. */
  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    this.#send(this.#unaryFetchImpl, input, init);

  /** Fetch for a streamed answer, whose body is read as it arrives. */
  readonly streamFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    this.#send(this.#fetchImpl, input, init);

  async #send(
    fetchImpl: typeof fetch,
    input: string | URL | Request,
    init: RequestInit | undefined,
  ): Promise<Response> {
    // A user's dispatcher is passed as undici's `dispatcher` option of the global fetch (undici's
    // own fetch mis-serializes Node's FormData). The attempt's signal covers reading the body too.
    const response = await fetchImpl(input, {
      ...init,
      signal: init?.signal ? AbortSignal.any([init.signal, this.signal]) : this.signal,
      ...(this.#dispatcher === undefined ? {} : { dispatcher: this.#dispatcher }),
    } as RequestInit);
    this.response = response;
    // An error's body is small: keep it (JSON if it parses) for the error's `body`.
    if (!response.ok && this.body === undefined) {
      const text = await response
        .clone()
        .text()
        .catch(() => undefined);
      this.body = text === undefined ? undefined : parseJsonOr(text);
    }
    return response;
  }

  /**
   * A stream's event arrived: from now on the attempt times out after `idleMs` without another
   * (each call restarts that clock).
   */
  restartIdleTimer(idleMs: number): void {
    if (this.timedOut) return;
    clearTimeout(this.#timer);
    this.timeoutMs = idleMs;
    this.idle = true;
    this.#arm(idleMs);
  }

  #arm(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.#controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError'));
    }, ms);
  }

  /** Stops the clock while a stream's consumer holds an event: only the server's gaps count. */
  pauseTimer(): void {
    clearTimeout(this.#timer);
  }

  /** Stops the request, e.g. when a stream's consumer stops reading. */
  abort(): void {
    this.#controller.abort(new DOMException('the consumer stopped reading', 'AbortError'));
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#userSignal?.removeEventListener('abort', this.#onUserAbort);
  }
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
