import type { AskInput, AskResponse, MagmaClient } from '@magma-som/sdk';
import type { BenchContext } from '../context.js';
import { withServer } from '../context.js';
import { benchClient } from '../load.js';
import { batchingOf } from '../settings.js';
import { round, summarize } from '../stats.js';
import { createWorkload } from '../workload.js';

const round3 = (value: number): number => round(value, 3);

// The prefix cache (MAGMA_PREFIX_CACHE_BYTES): repeated questions about one image.
// 1. Concurrency 1, cache on: for each image (a 1024x768 JPEG with 5 marks), its first question
//    (a miss: decode, draw, vision, whole prefill) and then the others (hits: only the question
//    is prefilled). End-to-end p50 of later questions / p50 of first questions; target <= 0.35.
// 2. Concurrency 8, `prefixQuestions` questions about each of `prefixImages` images, cache on vs
//    off (MAGMA_PREFIX_CACHE_BYTES=0), same requests in the same order: question k of every
//    image, then question k+1, as users asking follow-ups would. Throughput ratio; target >= 2.5.
//    Run `prefixRounds` times on fresh images, the two servers alternating, since one round of
//    100 asks lasts a few seconds and single rounds vary by +-20% on a shared machine; the
//    median round's ratio is the figure.
//    The answers of both runs are compared: the cache must not change any.
//    Each server first runs `prefixWarmupRounds` rounds of its own, not counted: a hit is mostly
//    JavaScript (HTTP, tRPC, the scheduler), which V8 optimizes only after a few thousand
//    requests, while a miss is mostly onnxruntime and libvips, so a cold server understates the
//    cache by some 10-20%. The warm-up rounds' ratios are kept in the result, to show that.
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

  // 2. throughput at concurrency 8, cache on vs off: both servers up at once, the workload run
  //    in alternating rounds (off then on, then on then off, ...), each round on images of its
  //    own so the cache starts cold; the ratio of each round, and their median and spread.
  const rounds = settings.prefixRounds;
  const warmupRounds = settings.prefixWarmupRounds;
  const concurrency = 8;
  const roundAsks = async (round: number): Promise<AskInput[]> => {
    const own =
      round === 0
        ? workloads
        : await Promise.all(
            Array.from({ length: images }, (_, j) => createWorkload(1000 + round * images + j)),
          );
    const list: AskInput[] = [];
    for (let q = 0; q < questions; q++)
      for (let j = 0; j < images; j++) list.push(own[j]!.ask(q, maxTokens));
    return list;
  };
  const transports: Record<string, unknown> = {};
  for (const transport of ['inline', 'by handle'] as const) {
    const measured = await withServer(
      context,
      { batching, env: cacheOff },
      (offServer, offInline) =>
        withServer(context, { batching, env: cacheOn }, async (onServer, onInline) => {
          const arms = {
            'cache off': { server: offServer, inline: offInline },
            'cache on': { server: onServer, inline: onInline },
          };
          const clients = Object.fromEntries(
            Object.entries(arms).map(([mode, arm]) => [
              mode,
              transport === 'inline'
                ? arm.inline
                : benchClient(arm.server.url, { reuseImages: true }),
            ]),
          ) as Record<keyof typeof arms, MagmaClient>;
          const totals = {
            'cache off': { samples: [] as Timed[], elapsedMs: 0, errors: 0, cpuMs: 0 },
            'cache on': { samples: [] as Timed[], elapsedMs: 0, errors: 0, cpuMs: 0 },
          };
          let firstError: string | undefined;
          const roundRatios: number[] = [];
          const warmupRatios: number[] = [];
          let differing = 0;
          try {
            for (let round = 0; round < warmupRounds + rounds; round++) {
              const asks = await roundAsks(round);
              const warmup = round < warmupRounds;
              const order: (keyof typeof arms)[] =
                round % 2 === 0 ? ['cache off', 'cache on'] : ['cache on', 'cache off'];
              const perMode: Partial<
                Record<keyof typeof arms, { rps: number; answers: string[] }>
              > = {};
              for (const mode of order) {
                const server = arms[mode].server;
                const cpu = server.cpuMs();
                const run = await runAsks(clients[mode], asks, concurrency);
                const used = server.cpuMs();
                if (run.errors > 0 && warmup)
                  throw new Error(`prefix warm-up round failed: ${run.firstError}`);
                const answers: string[] = [];
                for (const sample of run.samples) answers[sample.index] = sample.response.answer;
                perMode[mode] = {
                  rps: run.samples.length / (run.elapsedMs / 1000),
                  answers,
                };
                if (warmup) continue;
                const total = totals[mode];
                total.samples.push(...run.samples);
                total.elapsedMs += run.elapsedMs;
                total.errors += run.errors;
                total.cpuMs += used.main + used.other - cpu.main - cpu.other;
                firstError ??= run.firstError;
              }
              const off = perMode['cache off']!;
              const on = perMode['cache on']!;
              (warmup ? warmupRatios : roundRatios).push(round3(on.rps / off.rps));
              differing += off.answers.filter(
                (answer, i) => on.answers[i] !== undefined && on.answers[i] !== answer,
              ).length;
              const name = warmup
                ? `warm-up round ${round + 1}/${warmupRounds}`
                : `round ${round - warmupRounds + 1}/${rounds}`;
              log(
                `prefix c=${concurrency} ${transport} ${name}: off ${round3(off.rps)} req/s, on ${round3(on.rps)} req/s (${round3(on.rps / off.rps)}x)`,
              );
            }
          } finally {
            for (const [mode, client] of Object.entries(clients))
              if (client !== arms[mode as keyof typeof arms].inline) await client.close();
          }
          const modes = Object.fromEntries(
            Object.entries(totals).map(([mode, total]) => [
              mode,
              {
                concurrency,
                requests: total.samples.length,
                errors: total.errors,
                ...(firstError !== undefined ? { firstError } : {}),
                requestsPerSecond: round(total.samples.length / (total.elapsedMs / 1000), 3),
                latencyMs: summarize(total.samples.map((sample) => sample.wallMs)),
                answersFromCache: total.samples.filter((x) => x.response.usage.cachedTokens > 0)
                  .length,
                serverCpuMsPerRequest: round(total.cpuMs / Math.max(1, total.samples.length), 1),
              },
            ]),
          );
          return { modes, roundRatios, warmupRatios, differing };
        }),
    );
    const sorted = [...measured.roundRatios].sort((a, b) => a - b);
    const throughputRatio = sorted[Math.floor((sorted.length - 1) / 2)]!;
    log(
      `prefix ${transport}: cache on / off at c=${concurrency} = ${throughputRatio}x (median of ${rounds} rounds, ${sorted[0]}-${sorted[sorted.length - 1]}); ${measured.differing} answers differ`,
    );
    transports[transport] = {
      modes: measured.modes,
      rounds,
      roundRatios: measured.roundRatios,
      warmupRounds,
      warmupRatios: measured.warmupRatios,
      throughputRatio,
      answersDiffering: measured.differing,
    };
  }
  return {
    images,
    questionsPerImage: questions,
    maxTokens,
    sequential,
    concurrent: transports,
  };
}
