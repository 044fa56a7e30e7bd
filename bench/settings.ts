import { parseArgs } from 'node:util';
import type { PrefillPolicy } from '../packages/server/src/engine/index.js';

// Command-line settings of `npm run bench -- ...`. Quick mode shrinks every count so the whole
// suite smoke-tests in about a minute; a full run stays under about ten minutes on 2 CPU cores.

export const SECTIONS = [
  'overhead',
  'stream',
  'decode',
  'throughput',
  'eventloop',
  'memory',
  'prefix',
  'largeimages',
  'baseline',
  'batch',
] as const;
export type SectionName = (typeof SECTIONS)[number];

export interface BenchSettings {
  readonly quick: boolean;
  readonly sections: readonly SectionName[];
  /** Requests of the serving-overhead run (concurrency 1). */
  readonly overheadRequests: number;
  /** Sequential streamed asks. */
  readonly streamRequests: number;
  readonly concurrency: readonly number[];
  /** Requests per throughput point at concurrency c. */
  readonly pointRequests: (concurrency: number) => number;
  /** Requests of the memory run, after warm-up. */
  readonly memoryRequests: number;
  readonly eventLoopRequests: number;
  /** Prefix-cache section: distinct images, and questions asked about each. */
  readonly prefixImages: number;
  readonly prefixQuestions: number;
  /** Rounds of the prefix section's concurrency-8 workload per transport (fresh images each). */
  readonly prefixRounds: number;
  /** Rounds each server of the concurrency-8 comparison runs first, not counted (JIT warm-up). */
  readonly prefixWarmupRounds: number;
  /** Baseline comparison: c1 requests per server and image, c8 seconds per server and image. */
  readonly baselineRequests: number;
  readonly baselineSeconds: number;
  /** Items of each measured batch (and direct asks) in the batch-jobs section. */
  readonly batchItems: number;
  /** Measured rounds of each configuration there (medians are reported). */
  readonly batchRounds: number;
  readonly maxTokens: number;
  /** maxBatchSize of "batching on" (off is 1). */
  readonly batchSize: number;
  readonly prefillPolicy: PrefillPolicy | undefined;
  readonly maxPrefillTokens: number | undefined;
  readonly outDir: string;
}

export const USAGE = `Usage: npm run bench -- [options]
  --only a,b            sections to run: ${SECTIONS.join(', ')} (default: all)
  --quick               small counts, to smoke-test the suite
  --requests N          requests of the memory run (default 2000, quick 100)
  --concurrency 1,4,8   throughput concurrency levels (default 1,4,8,16)
  --max-tokens N        maxTokens of every ask (default 32)
  --prefix-images N     images of the prefix section (default 20, quick 3; env BENCH_PREFIX_IMAGES)
  --prefix-questions N  questions per image there (default 5, quick 3; env BENCH_PREFIX_QUESTIONS)
  --prefix-rounds N     rounds of its concurrency-8 workload, fresh images each (default 9, quick 1)
  --prefix-warmup-rounds N  rounds run first on each server there, not counted (default 20, quick 0)
  --baseline-requests N c1 requests per server and image in the baseline section (default 100, quick 8)
  --baseline-seconds N  c8 seconds per server and image there (default 20, quick 2)
  --batch-size N        maxBatchSize when batching is on (default 16)
  --batch-items N       items per batch in the batch-jobs section (default 200, quick 16)
  --prefill-policy P    interleave | prefill-first (engine default: interleave)
  --max-prefill-tokens N  prefill budget per decode step (engine default: 2048)
  --out DIR             where the JSON result goes (default bench-results)`;

function nonNegativeInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

export function parseSettings(argv: readonly string[]): BenchSettings | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      requests: { type: 'string' },
      concurrency: { type: 'string' },
      'max-tokens': { type: 'string' },
      'prefix-images': { type: 'string' },
      'prefix-questions': { type: 'string' },
      'prefix-rounds': { type: 'string' },
      'prefix-warmup-rounds': { type: 'string' },
      'baseline-requests': { type: 'string' },
      'baseline-seconds': { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-items': { type: 'string' },
      'prefill-policy': { type: 'string' },
      'max-prefill-tokens': { type: 'string' },
      out: { type: 'string', default: 'bench-results' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const sections =
    values.only === undefined ? [...SECTIONS] : values.only.split(',').map((s) => s.trim());
  for (const s of sections)
    if (!(SECTIONS as readonly string[]).includes(s))
      throw new Error(`unknown section "${s}"; see --help`);
  const policy = values['prefill-policy'];
  if (policy !== undefined && policy !== 'interleave' && policy !== 'prefill-first')
    throw new Error('--prefill-policy must be interleave or prefill-first');
  const quick = values.quick;
  const concurrency =
    values.concurrency === undefined
      ? quick
        ? [1, 4]
        : [1, 4, 8, 16]
      : values.concurrency.split(',').map((c) => positiveInt('concurrency', c)!);
  return {
    quick,
    sections: sections as SectionName[],
    overheadRequests: quick ? 15 : 200,
    streamRequests: quick ? 4 : 30,
    concurrency,
    pointRequests: (c) => (quick ? 2 * c + 2 : Math.max(60, 8 * c)),
    memoryRequests: positiveInt('requests', values.requests) ?? (quick ? 100 : 2000),
    eventLoopRequests: quick ? 24 : 160,
    prefixImages:
      positiveInt('prefix-images', values['prefix-images'] ?? process.env['BENCH_PREFIX_IMAGES']) ??
      (quick ? 3 : 20),
    prefixQuestions:
      positiveInt(
        'prefix-questions',
        values['prefix-questions'] ?? process.env['BENCH_PREFIX_QUESTIONS'],
      ) ?? (quick ? 3 : 5),
    prefixRounds: positiveInt('prefix-rounds', values['prefix-rounds']) ?? (quick ? 1 : 9),
    prefixWarmupRounds:
      nonNegativeInt('prefix-warmup-rounds', values['prefix-warmup-rounds']) ?? (quick ? 0 : 20),
    baselineRequests:
      positiveInt('baseline-requests', values['baseline-requests']) ?? (quick ? 8 : 100),
    baselineSeconds:
      positiveInt('baseline-seconds', values['baseline-seconds']) ?? (quick ? 2 : 20),
    batchItems: positiveInt('batch-items', values['batch-items']) ?? (quick ? 16 : 200),
    batchRounds: quick ? 1 : 3,
    maxTokens: positiveInt('max-tokens', values['max-tokens']) ?? 32,
    batchSize: positiveInt('batch-size', values['batch-size']) ?? 16,
    prefillPolicy: policy,
    maxPrefillTokens: positiveInt('max-prefill-tokens', values['max-prefill-tokens']),
    outDir: values.out,
  };
}

/** Engine batching options for "batching on" (or off: maxBatchSize 1). */
export function batchingOf(settings: BenchSettings, on: boolean) {
  return {
    maxBatchSize: on ? settings.batchSize : 1,
    ...(settings.prefillPolicy !== undefined ? { prefillPolicy: settings.prefillPolicy } : {}),
    ...(settings.maxPrefillTokens !== undefined
      ? { maxPrefillTokens: settings.maxPrefillTokens }
      : {}),
  };
}
