/**
 * Waits for `work`, but rejects with the signal's reason as soon as the signal aborts. The work
 * itself keeps running (a worker task or an ONNX run cannot be interrupted mid-way); the caller
 * just stops waiting for it. An abort wins over a result that settles in the same turn, so a
 * cancelled request never reports success.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
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
