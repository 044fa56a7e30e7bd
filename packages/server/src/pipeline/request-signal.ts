import { ApiError } from '../errors/api-error.js';

export interface RequestSignal {
  /** Aborts with an ApiError reason: CANCELLED, DEADLINE_EXCEEDED or the shutdown's error. */
  readonly signal: AbortSignal;
  /** Stops the deadline timer and detaches from the other signals. */
  dispose(): void;
}

/**
 * One signal for a request that aborts when the client goes away, when its deadline passes,
 * or when shutdown gives up on remaining work. The reason says which, as the client's error.
 */
export function requestSignal(
  client: AbortSignal,
  shutdown: AbortSignal,
  timeoutMs: number,
): RequestSignal {
  const controller = new AbortController();
  const abort = (reason: ApiError): void => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onClient = (): void =>
    abort(new ApiError('CANCELLED', 'the client closed the connection before the answer'));
  const onShutdown = (): void => abort(shutdown.reason as ApiError);
  const timer = setTimeout(
    () => abort(new ApiError('DEADLINE_EXCEEDED', `no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  timer.unref();

  if (client.aborted) onClient();
  else client.addEventListener('abort', onClient, { once: true });
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener('abort', onShutdown, { once: true });

  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      client.removeEventListener('abort', onClient);
      shutdown.removeEventListener('abort', onShutdown);
    },
  };
}
