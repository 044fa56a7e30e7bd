/**
 * Runs `work`, which reports text through its `onToken` callback, and yields that text as it
 * arrives; the generator's return value is the work's result (or its error, thrown). If the
 * consumer stops early, the work is left to its own cancellation (the request's signal).
 */
export async function* streamTokens<T>(
  work: (onToken: (text: string) => void) => Promise<T>,
): AsyncGenerator<string, T, unknown> {
  const pending: string[] = [];
  let wake: (() => void) | undefined;
  let settled = false;
  const result = work((text) => {
    pending.push(text);
    wake?.();
  });
  const onSettled = (): void => {
    settled = true;
    wake?.();
  };
  result.then(onSettled, onSettled);
  try {
    for (;;) {
      while (pending.length > 0) yield pending.shift()!;
      if (settled) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    return await result;
  } finally {
    // A consumer that left early must not turn the work's failure into an unhandled rejection.
    result.catch(() => {});
  }
}
