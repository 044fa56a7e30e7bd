import type { AskInput, AskResponse, MagmaClient } from '@magma-som/sdk';
import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { benchClient } from '../load.js';
import { batchingOf } from '../settings.js';
import { round, summarize } from '../stats.js';
import { createWorkload } from '../workload.js';

// The prefix cache (MAGMA_PREFIX_CACHE_BYTES): repeated questions about one image.
// 1. Concurrency 1, cache on: for each image (a 1024x768 JPEG with 5 marks), its first question
//    (a miss: decode, draw, vision, whole prefill) and then the others (hits: only the question
//    is prefilled). End-to-end p50 of later questions / p50 of first questions; target <= 0.35.
// 2. Concurrency 8, `prefixQuestions` questions about each of `prefixImages` images, cache on vs
//    off (MAGMA_PREFIX_CACHE_BYTES=0), same requests in the same order: question k of every
//    image, then question k+1, as users asking follow-ups would. Throughput ratio; target >= 2.5.
//    The answers of both runs are compared: the cache must not change any.
//    Measured twice: images sent inline with every ask, and by handle (the SDK's reuseImages:
//    each image uploaded once, then asked by id, as the SDK does for repeated asks when told
//    to). Both arms of each ratio use the same transport.

interface Timed {
  readonly wallMs: number;
  readonly response: AskResponse;
  readonly index: number;
}

/** The asks, `concurrency` callers taking the next one as soon as theirs is answered. */
async function runAsks(
  client: MagmaClient,
  asks: readonly AskInput[],
  concurrency: number,
): Promise<{ samples: Timed[]; elapsedMs: number; errors: number; firstError?: string }> {
  const samples: Timed[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const caller = async (): Promise<void> => {
    while (next < asks.length) {
      const index = next++;
      const sent = performance.now();
      try {
        const response = await client.ask(asks[index]!);
        samples.push({ wallMs: performance.now() - sent, response, index });
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  return {
    samples,
    elapsedMs: performance.now() - started,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}

export async function prefix(context: BenchContext) {
  const { settings, log } = context;
  const images = settings.prefixImages;
  const questions = settings.prefixQuestions;
  const maxTokens = settings.maxTokens;
  // distinct scenes (seeds unlike the warm-up workload's), each its own JPEG and marks
  const workloads = await Promise.all(
    Array.from({ length: images }, (_, j) => createWorkload(1000 + j)),
  );
  const askOf = (image: number, question: number): AskInput =>
    workloads[image]!.ask(question, maxTokens);
  const batching = batchingOf(settings, true);
  const cacheOn = { MAGMA_PREFIX_CACHE_BYTES: String(256 * 1024 * 1024) };
  const cacheOff = { MAGMA_PREFIX_CACHE_BYTES: '0' };

  // 1. latency at concurrency 1: first question of an image vs the later ones
  const sequential = await withServer(context, { batching, env: cacheOn }, async (_, client) => {
    const first: number[] = [];
    const later: number[] = [];
    let laterWithoutCache = 0;
    for (let j = 0; j < images; j++) {
      for (let q = 0; q < questions; q++) {
        const sent = performance.now();
        const response = await client.ask(askOf(j, q));
        const wallMs = performance.now() - sent;
        if (q === 0) first.push(wallMs);
        else {
          later.push(wallMs);
          if (response.usage.cachedTokens === 0) laterWithoutCache++;
        }
      }
    }
    const firstMs = summarize(first);
    const laterMs = summarize(later);
    const ratio = round(laterMs.p50 / firstMs.p50, 3);
    log(
      `prefix c=1: first question p50 ${round(firstMs.p50)} ms, later p50 ${round(laterMs.p50)} ms (${ratio}x)`,
    );
    return { firstMs, laterMs, laterOverFirstP50: ratio, laterWithoutCache };
  });

  // 2. throughput at concurrency 8, cache on vs off
  const order: Array<[number, number]> = [];
  for (let q = 0; q < questions; q++) for (let j = 0; j < images; j++) order.push([j, q]);
  const asks = order.map(([j, q]) => askOf(j, q));
  const concurrency = 8;
  const transports: Record<string, unknown> = {};
  for (const transport of ['inline', 'by handle'] as const) {
    const modes: Record<string, unknown> = {};
    const answers: Record<string, string[]> = {};
    for (const [mode, env] of [
      ['cache off', cacheOff],
      ['cache on', cacheOn],
    ] as const) {
      modes[mode] = await withServer(context, { batching, env }, async (server, inlineClient) => {
        const client =
          transport === 'inline' ? inlineClient : benchClient(server.url, { reuseImages: true });
        try {
          const cpu = server.cpuMs();
          const run = await runAsks(client, asks, concurrency);
          const used = server.cpuMs();
          const byIndex: string[] = [];
          for (const s of run.samples) byIndex[s.index] = s.response.answer;
          answers[mode] = byIndex;
          const cached = run.samples.filter((s) => s.response.usage.cachedTokens > 0).length;
          const point = {
            concurrency,
            requests: run.samples.length,
            errors: run.errors,
            ...(run.firstError !== undefined ? { firstError: run.firstError } : {}),
            requestsPerSecond: round(run.samples.length / (run.elapsedMs / 1000), 3),
            latencyMs: summarize(run.samples.map((s) => s.wallMs)),
            answersFromCache: cached,
            serverCpuMsPerRequest: round(
              (used.main + used.other - cpu.main - cpu.other) / Math.max(1, run.samples.length),
              1,
            ),
          };
          log(
            `prefix c=${concurrency} ${transport} [${mode}]: ${point.requestsPerSecond} req/s, p50 ${round(point.latencyMs.p50)} ms, ${cached} of ${point.requests} from the cache${run.errors ? `, ${run.errors} errors (${run.firstError})` : ''}`,
          );
          return point;
        } finally {
          if (client !== inlineClient) await client.close();
        }
      });
    }
    const rps = (mode: string) => (modes[mode] as { requestsPerSecond: number }).requestsPerSecond;
    const throughputRatio = round(rps('cache on') / rps('cache off'), 2);
    const off = answers['cache off'] ?? [];
    const on = answers['cache on'] ?? [];
    const differing = off.filter((answer, i) => on[i] !== undefined && on[i] !== answer).length;
    log(
      `prefix ${transport}: cache on / off at c=${concurrency} = ${throughputRatio}x; ${differing} answers differ`,
    );
    transports[transport] = { modes, throughputRatio, answersDiffering: differing };
  }
  return {
    images,
    questionsPerImage: questions,
    maxTokens,
    sequential,
    concurrent: transports,
  };
}
