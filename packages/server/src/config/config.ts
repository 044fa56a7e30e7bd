import { resolve } from 'node:path';
import { DEFAULT_LIMITS, JOB_LIMITS } from '@magma-som/schemas';
import { z } from 'zod';
import { findBundledModelDir } from './model-dir.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Everything the server is configured with; see the table in README.md. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly modelDir: string;
  readonly executionProvider: 'cpu' | 'cuda' | 'webgpu';
  readonly deviceId: number;
  readonly dtype: 'auto' | 'fp32' | 'fp16' | 'q4' | 'q8' | 'q4f16' | 'q8f16';
  /** Weights + maxBatchSize full-context KV caches must fit in this many bytes at start-up; 0 = no check. */
  readonly memoryBudgetBytes: number;
  /** How often nvidia-smi is read for /metrics (off by itself where it is absent); 0 = never. */
  readonly gpuMetricsIntervalMs: number;
  /** Bytes of vision features and prompt-prefix KV caches kept for repeated questions about one image; 0 = off. */
  readonly prefixCacheBytes: number;
  /** Bytes of uploaded images kept for `imageId` asks (images.upload); 0 = uploads refused. */
  readonly imageStoreBytes: number;
  /** How long an uploaded image is kept after its last use. */
  readonly imageTtlMs: number;
  /** 0 = onnxruntime's default. */
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  readonly graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  /** Image bytes on the JSON (base64) path. */
  readonly maxImageBytes: number;
  /** Whole multipart body on the binary upload path. */
  readonly maxUploadBytes: number;
  readonly maxImagePixels: number;
  /** Pixels of image work (decode, marks, preprocessing) in flight across requests (more wait); 0 = maxImagePixels. */
  readonly decodePixelBudget: number;
  /** Worker threads for image work; 0 = half the cores, 1 to 4. */
  readonly imageWorkers: number;
  /** 'auto': plain JPEGs and PNGs through the native decoders when built; 'sharp': all through sharp. */
  readonly imageDecoder: 'auto' | 'sharp';
  readonly maxMarks: number;
  readonly maxPromptChars: number;
  /** Cap on new tokens: an explicit larger request is refused; the default is capped. */
  readonly maxTokens: number;
  /** Requests admitted beyond those running; more are refused with OVERLOADED. */
  readonly queueSize: number;
  /** Requests handed to the engine at once. */
  readonly maxConcurrency: number;
  /** Sequences decoded together in one batched step; 0 = maxConcurrency. */
  readonly maxBatchSize: number;
  /** How new requests' prefills are scheduled against running decodes. */
  readonly prefillPolicy: 'interleave' | 'prefill-first';
  /** Prompt positions prefilled between two decode steps (at least one request always is). */
  readonly maxPrefillTokens: number;
  readonly requestTimeoutMs: number;
  /** How long an ask's answer is kept for retries with the same Idempotency-Key; 0 = off. */
  readonly idempotencyTtlMs: number;
  /** Idempotency keys kept at once (oldest finished ones dropped first). */
  readonly idempotencyMaxKeys: number;
  readonly shutdownGraceMs: number;
  readonly corsOrigins: readonly string[];
  /** Empty = no authentication. */
  readonly apiKeys: readonly string[];
  /** Requests per window per API key or address; 0 = no rate limit (the default). */
  readonly rateLimitMax: number;
  readonly rateLimitWindowMs: number;
  /** Failed authentications per window per address before 429; 0 = no limit. */
  readonly authFailureMax: number;
  readonly authFailureWindowMs: number;
  /** Fastify trustProxy: false, true, a hop count, or a list of proxy addresses/CIDRs. */
  readonly trustProxy: boolean | number | readonly string[];
  /** Time a client has to send the request headers. */
  readonly headersTimeoutMs: number;
  /** Time a client has to send the whole request, headers and body. */
  readonly bodyTimeoutMs: number;
  /** Socket inactivity before it is closed; 0 = the request deadline plus 30 s. */
  readonly idleTimeoutMs: number;
  /** How long an idle keep-alive connection is kept open between requests. */
  readonly keepAliveTimeoutMs: number;
  /** Open connections at most; more are refused at once by Node (0 = no cap). */
  readonly maxConnections: number;
  readonly logLevel: LogLevel;
  /** Serve the playground page (built by packages/playground) at `/`. */
  readonly playground: boolean;
  /** api: HTTP only, no model; worker: runs batch jobs, HTTP for health and metrics only; all: both. */
  readonly role: ServerRole;
  /** Redis for batch jobs (redis:// or rediss://); empty = batch jobs off. */
  readonly redisUrl: string;
  /** Items one batch may hold. */
  readonly jobMaxItems: number;
  /** Items waiting or running across all batches; beyond that, new batches get OVERLOADED. */
  readonly jobMaxQueued: number;
  /** Runs of one item before it fails with its error (worker deaths count as runs). */
  readonly jobAttempts: number;
  /** How long a finished batch and its results are kept. */
  readonly jobResultTtlMs: number;
  /** A worker's lock on an item; a dead worker's items go to another after this. */
  readonly jobLockMs: number;
  /** Items a worker runs at once; 0 = maxConcurrency. */
  readonly jobConcurrency: number;
  /** Body of a batch create request (every image inline). */
  readonly jobMaxBodyBytes: number;
}

export type ServerRole = 'api' | 'worker' | 'all';

/** A configuration value that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);

const boolean = z
  .string()
  .regex(/^(true|false)$/i, 'must be true or false')
  .transform((value) => value.toLowerCase() === 'true');

/** `true`/`false`, a hop count, or a comma list of proxy addresses or CIDRs. */
const trustProxy = z.string().transform((value, ctx): boolean | number | string[] => {
  if (/^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  if (/^\d+$/.test(value)) return Number(value);
  const list = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (list.length === 0 || list.some((item) => !/^[0-9A-Fa-f.:/]+$/.test(item))) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be true, false, a hop count or a comma list of addresses/CIDRs',
    });
    return z.NEVER;
  }
  return list;
});

interface Setting {
  readonly env: string;
  readonly schema: z.ZodType<unknown, string>;
  readonly fallback: () => unknown;
}

const setting = <T>(env: string, schema: z.ZodType<T, string>, fallback: () => T): Setting => ({
  env,
  schema,
  fallback,
});

const MIB = 1024 * 1024;

/** One entry per field of ServerConfig: its variable, how to parse it, and its default. */
const SETTINGS: { readonly [K in keyof ServerConfig]: Setting } = {
  host: setting('MAGMA_HOST', z.string().min(1), () => '127.0.0.1'),
  port: setting('MAGMA_PORT', integer(0, 65535), () => 8080),
  modelDir: setting(
    'MAGMA_MODEL_DIR',
    z
      .string()
      .min(1)
      .transform((dir) => resolve(dir)),
    () => findBundledModelDir(),
  ),
  executionProvider: setting(
    'MAGMA_EXECUTION_PROVIDER',
    z.enum(['cpu', 'cuda', 'webgpu']),
    () => 'cpu',
  ),
  deviceId: setting('MAGMA_DEVICE_ID', integer(0, 1024), () => 0),
  dtype: setting(
    'MAGMA_DTYPE',
    z.enum(['auto', 'fp32', 'fp16', 'q4', 'q8', 'q4f16', 'q8f16']),
    () => 'auto',
  ),
  memoryBudgetBytes: setting('MAGMA_MEMORY_BUDGET_BYTES', integer(0), () => 0),
  gpuMetricsIntervalMs: setting('MAGMA_GPU_METRICS_INTERVAL_MS', integer(0), () => 15_000),
  prefixCacheBytes: setting('MAGMA_PREFIX_CACHE_BYTES', integer(0), () => 256 * MIB),
  imageStoreBytes: setting('MAGMA_IMAGE_STORE_BYTES', integer(0), () => 256 * MIB),
  imageTtlMs: setting('MAGMA_IMAGE_TTL_MS', integer(1), () => 10 * 60_000),
  intraOpThreads: setting('MAGMA_INTRA_OP_THREADS', integer(0, 1024), () => 0),
  interOpThreads: setting('MAGMA_INTER_OP_THREADS', integer(0, 1024), () => 0),
  graphOptimization: setting(
    'MAGMA_GRAPH_OPTIMIZATION',
    z.enum(['disabled', 'basic', 'extended', 'all']),
    () => 'all',
  ),
  maxImageBytes: setting('MAGMA_MAX_IMAGE_BYTES', integer(1), () => DEFAULT_LIMITS.maxImageBytes),
  maxUploadBytes: setting('MAGMA_MAX_UPLOAD_BYTES', integer(1), () => 50 * MIB),
  maxImagePixels: setting(
    'MAGMA_MAX_IMAGE_PIXELS',
    integer(1),
    () => DEFAULT_LIMITS.maxImagePixels,
  ),
  decodePixelBudget: setting('MAGMA_DECODE_PIXEL_BUDGET', integer(0), () => 0),
  imageWorkers: setting('MAGMA_IMAGE_WORKERS', integer(0, 64), () => 0),
  imageDecoder: setting('MAGMA_IMAGE_DECODER', z.enum(['auto', 'sharp']), () => 'auto'),
  maxMarks: setting(
    'MAGMA_MAX_MARKS',
    integer(1, DEFAULT_LIMITS.maxMarks),
    () => DEFAULT_LIMITS.maxMarks,
  ),
  maxPromptChars: setting(
    'MAGMA_MAX_PROMPT_CHARS',
    integer(1, DEFAULT_LIMITS.maxPromptChars),
    () => DEFAULT_LIMITS.maxPromptChars,
  ),
  maxTokens: setting('MAGMA_MAX_TOKENS', integer(1, DEFAULT_LIMITS.maxTokens), () => 1024),
  queueSize: setting('MAGMA_QUEUE_SIZE', integer(0, 100_000), () => 32),
  maxConcurrency: setting('MAGMA_MAX_CONCURRENCY', integer(1, 1024), () => 4),
  maxBatchSize: setting('MAGMA_MAX_BATCH_SIZE', integer(0, 1024), () => 0),
  prefillPolicy: setting(
    'MAGMA_PREFILL_POLICY',
    z.enum(['interleave', 'prefill-first']),
    () => 'interleave',
  ),
  maxPrefillTokens: setting('MAGMA_MAX_PREFILL_TOKENS', integer(1), () => 2048),
  requestTimeoutMs: setting('MAGMA_REQUEST_TIMEOUT_MS', integer(1), () => 120_000),
  idempotencyTtlMs: setting('MAGMA_IDEMPOTENCY_TTL_MS', integer(0), () => 10 * 60_000),
  idempotencyMaxKeys: setting('MAGMA_IDEMPOTENCY_MAX_KEYS', integer(1), () => 1000),
  shutdownGraceMs: setting('MAGMA_SHUTDOWN_GRACE_MS', integer(0), () => 30_000),
  corsOrigins: setting('MAGMA_CORS_ORIGINS', list, () => []),
  apiKeys: setting('MAGMA_API_KEYS', list, () => []),
  rateLimitMax: setting('MAGMA_RATE_LIMIT_MAX', integer(0), () => 0),
  rateLimitWindowMs: setting('MAGMA_RATE_LIMIT_WINDOW_MS', integer(1), () => 60_000),
  authFailureMax: setting('MAGMA_AUTH_FAILURE_MAX', integer(0), () => 10),
  authFailureWindowMs: setting('MAGMA_AUTH_FAILURE_WINDOW_MS', integer(1), () => 60_000),
  trustProxy: setting('MAGMA_TRUST_PROXY', trustProxy, () => false),
  headersTimeoutMs: setting('MAGMA_HEADERS_TIMEOUT_MS', integer(1), () => 10_000),
  bodyTimeoutMs: setting('MAGMA_BODY_TIMEOUT_MS', integer(1), () => 30_000),
  idleTimeoutMs: setting('MAGMA_IDLE_TIMEOUT_MS', integer(0), () => 0),
  keepAliveTimeoutMs: setting('MAGMA_KEEP_ALIVE_TIMEOUT_MS', integer(1), () => 72_000),
  maxConnections: setting('MAGMA_MAX_CONNECTIONS', integer(0), () => 1024),
  logLevel: setting(
    'MAGMA_LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    () => 'info',
  ),
  playground: setting('MAGMA_PLAYGROUND', boolean, () => true),
  role: setting('MAGMA_ROLE', z.enum(['api', 'worker', 'all']), () => 'all'),
  redisUrl: setting(
    'MAGMA_REDIS_URL',
    z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL'),
    () => '',
  ),
  jobMaxItems: setting(
    'MAGMA_JOB_MAX_ITEMS',
    integer(1, JOB_LIMITS.maxBatchItems),
    () => JOB_LIMITS.maxBatchItems,
  ),
  jobMaxQueued: setting('MAGMA_JOB_MAX_QUEUED', integer(1), () => 100_000),
  jobAttempts: setting('MAGMA_JOB_ATTEMPTS', integer(1, 100), () => 3),
  jobResultTtlMs: setting('MAGMA_JOB_RESULT_TTL_MS', integer(1_000), () => 24 * 3_600_000),
  jobLockMs: setting('MAGMA_JOB_LOCK_MS', integer(500), () => 30_000),
  jobConcurrency: setting('MAGMA_JOB_CONCURRENCY', integer(0, 1024), () => 0),
  jobMaxBodyBytes: setting('MAGMA_JOB_MAX_BODY_BYTES', integer(1), () => 256 * MIB),
};

/** `MAGMA_MODEL_DIR` -> `--model-dir`. */
export function flagFor(env: string): string {
  return `--${env
    .replace(/^MAGMA_/, '')
    .toLowerCase()
    .replaceAll('_', '-')}`;
}

/** Reads `--name value` and `--name=value` flags into variable names; unknown flags are errors. */
function parseFlags(argv: readonly string[]): Record<string, string> {
  const byFlag = new Map(Object.values(SETTINGS).map((s) => [flagFor(s.env), s.env]));
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const env = byFlag.get(flag);
    if (env === undefined) throw new ConfigError(`unknown option ${flag}; see --help`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
    values[env] = value;
  }
  return values;
}

/**
 * Builds the configuration from environment variables, overridden by command-line flags.
 * Throws ConfigError naming the variable (and flag) of the first bad value.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  argv: readonly string[] = [],
): ServerConfig {
  const flags = parseFlags(argv);
  const config: Record<string, unknown> = {};
  for (const [key, { env: name, schema, fallback }] of Object.entries(SETTINGS)) {
    const raw = flags[name] ?? env[name];
    const source = name in flags ? `${flagFor(name)} (${name})` : name;
    if (raw === undefined || raw.trim() === '') {
      config[key] = fallback();
      continue;
    }
    const parsed = schema.safeParse(raw.trim());
    if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      throw new ConfigError(`${source}=${JSON.stringify(raw)} is invalid: ${reason}`);
    }
    config[key] = parsed.data;
  }
  const budget = config.decodePixelBudget as number;
  if (budget > 0 && budget < (config.maxImagePixels as number)) {
    throw new ConfigError(
      'MAGMA_DECODE_PIXEL_BUDGET must be 0 or at least MAGMA_MAX_IMAGE_PIXELS (the largest image must fit)',
    );
  }
  // Node refuses a headers timeout longer than the whole-request timeout.
  if ((config.headersTimeoutMs as number) > (config.bodyTimeoutMs as number)) {
    throw new ConfigError(
      'MAGMA_HEADERS_TIMEOUT_MS must not be larger than MAGMA_BODY_TIMEOUT_MS (the body timeout covers the headers too)',
    );
  }
  if (config.role !== 'all' && config.redisUrl === '') {
    throw new ConfigError(
      `MAGMA_ROLE=${String(config.role)} needs MAGMA_REDIS_URL: api and worker processes meet through Redis`,
    );
  }
  if (config.modelDir === undefined) {
    throw new ConfigError(
      'MAGMA_MODEL_DIR is not set and no bundled models/magma-tiny-som was found above the server; set MAGMA_MODEL_DIR to a model bundle folder',
    );
  }
  return config as unknown as ServerConfig;
}

/** Help text for the command line, generated from the settings table. */
export function usage(): string {
  const lines = Object.values(SETTINGS).map(
    (s) =>
      `  ${flagFor(s.env).padEnd(26)} ${s.env.padEnd(28)} default: ${formatDefault(s.fallback())}`,
  );
  return [
    'Usage: magma-som-server [options]',
    'Every option can also be given as the environment variable beside it; flags win.',
    '',
    ...lines,
  ].join('\n');
}

function formatDefault(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.join(',');
  return value === undefined ? '(none)' : String(value);
}
