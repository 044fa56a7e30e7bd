import { createClient } from '@magma-som/sdk';
import type { AskResponse, MagmaClient } from '@magma-som/sdk';
import type { Workload } from './workload.js';

// A closed-loop load generator: `concurrency` callers, each sending its next request as soon as
// its last one is answered, until `requests` have been answered. Wall time is measured around
// each SDK call (validation, base64, HTTP, server, response parsing).

export interface Sample {
  readonly wallMs: number;
  readonly response: AskResponse;
}

export interface LoadResult {
  readonly samples: Sample[];
  readonly elapsedMs: number;
  readonly errors: number;
  readonly firstError?: string;
}

export function benchClient(baseUrl: string, options: { reuseImages?: boolean } = {}): MagmaClient {
  // No retries: a failure must show in the numbers, not be hidden by a second attempt.
  return createClient({ baseUrl, maxRetries: 0, timeoutMs: 600_000, ...options });
}

export async function runClosedLoop(
  client: MagmaClient,
  workload: Workload,
  options: {
    concurrency: number;
    requests: number;
    maxTokens: number;
    onAnswered?: (n: number) => void;
  },
): Promise<LoadResult> {
  const samples: Sample[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const caller = async (): Promise<void> => {
    while (next < options.requests) {
      const i = next++;
      const sent = performance.now();
      try {
        const response = await client.ask(workload.ask(i, options.maxTokens));
        samples.push({ wallMs: performance.now() - sent, response });
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      options.onAnswered?.(samples.length + errors);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, caller));
  return {
    samples,
    elapsedMs: performance.now() - started,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
