import type { Dispatcher } from 'undici';

/**
 * One HTTP attempt: its abort signal (the caller's signal or the timeout, whichever fires
 * first), and a fetch that uses the client's pool and remembers the response, so errors can
 * be classified by status and headers even when the body is not tRPC-shaped.
 */
export class Attempt {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #userSignal: AbortSignal | undefined;
  readonly #onUserAbort = () => this.#controller.abort(this.#userSignal?.reason);
  readonly #fetchImpl: typeof fetch;
  readonly #dispatcher: Dispatcher;
  readonly #headers: Record<string, string>;
  timedOut = false;
  response: Response | undefined;
  /** The parsed body of a plain-route response, when one was read. */
  body: unknown;

  constructor(options: {
    timeoutMs: number;
    signal: AbortSignal | undefined;
    fetch: typeof fetch;
    dispatcher: Dispatcher;
    headers: Record<string, string>;
  }) {
    this.#fetchImpl = options.fetch;
    this.#dispatcher = options.dispatcher;
    this.#headers = options.headers;
    this.#userSignal = options.signal;
    if (Number.isFinite(options.timeoutMs) && options.timeoutMs > 0) {
      this.#timer = setTimeout(() => {
        this.timedOut = true;
        this.#controller.abort(
          new DOMException(`timed out after ${options.timeoutMs} ms`, 'TimeoutError'),
        );
      }, options.timeoutMs);
    }
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

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // The pool is passed as undici's `dispatcher` option of the global fetch (undici's own fetch
    // mis-serializes Node's FormData). The attempt's signal covers reading the body too.
    const response = await this.#fetchImpl(input, {
      ...init,
      signal: init?.signal ? AbortSignal.any([init.signal, this.signal]) : this.signal,
      dispatcher: this.#dispatcher as unknown,
    } as RequestInit);
    this.response = response;
    return response;
  };

  /** Stops the request, e.g. when a stream's consumer stops reading. */
  abort(): void {
    this.#controller.abort(new DOMException('the consumer stopped reading', 'AbortError'));
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#userSignal?.removeEventListener('abort', this.#onUserAbort);
  }
}
