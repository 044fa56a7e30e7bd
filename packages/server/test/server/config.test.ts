import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, usage } from '../../src/index.js';
import { jsonBodyLimit } from '../../src/index.js';
import { flagFor } from '../../src/config/config.js';
import { MODEL_DIR } from './helpers.js';

describe('loadConfig', () => {
  it('has working defaults, with the bundled tiny model found by walking up from the module', () => {
    const config = loadConfig({}, []);
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      executionProvider: 'cpu',
      dtype: 'auto',
      apiKeys: [],
      corsOrigins: [],
      logLevel: 'info',
      playground: true,
    });
    expect(config.modelDir).toBe(resolve(MODEL_DIR));
    expect(existsSync(join(config.modelDir, 'config.json'))).toBe(true);
  });

  it('reads every MAGMA_ variable', () => {
    const config = loadConfig(
      {
        MAGMA_HOST: '0.0.0.0',
        MAGMA_PORT: '9000',
        MAGMA_MODEL_DIR: 'relative/model',
        MAGMA_EXECUTION_PROVIDER: 'cuda',
        MAGMA_DEVICE_ID: '1',
        MAGMA_DTYPE: 'fp16',
        MAGMA_MEMORY_BUDGET_BYTES: '24000000000',
        MAGMA_PREFIX_CACHE_BYTES: '1048576',
        MAGMA_IDEMPOTENCY_TTL_MS: '30000',
        MAGMA_IDEMPOTENCY_MAX_KEYS: '50',
        MAGMA_IMAGE_STORE_BYTES: '2097152',
        MAGMA_IMAGE_TTL_MS: '60000',
        MAGMA_GPU_METRICS_INTERVAL_MS: '0',
        MAGMA_INTRA_OP_THREADS: '4',
        MAGMA_INTER_OP_THREADS: '2',
        MAGMA_GRAPH_OPTIMIZATION: 'basic',
        MAGMA_MAX_IMAGE_BYTES: '1000',
        MAGMA_MAX_UPLOAD_BYTES: '2000',
        MAGMA_MAX_IMAGE_PIXELS: '3000',
        MAGMA_MAX_MARKS: '10',
        MAGMA_MAX_PROMPT_CHARS: '100',
        MAGMA_MAX_TOKENS: '64',
        MAGMA_QUEUE_SIZE: '5',
        MAGMA_MAX_CONCURRENCY: '2',
        MAGMA_MAX_BATCH_SIZE: '8',
        MAGMA_PREFILL_POLICY: 'prefill-first',
        MAGMA_MAX_PREFILL_TOKENS: '512',
        MAGMA_REQUEST_TIMEOUT_MS: '1500',
        MAGMA_SHUTDOWN_GRACE_MS: '0',
        MAGMA_CORS_ORIGINS: 'https://a.example, https://b.example,',
        MAGMA_API_KEYS: 'k1,k2',
        MAGMA_RATE_LIMIT_MAX: '0',
        MAGMA_RATE_LIMIT_WINDOW_MS: '1000',
        MAGMA_AUTH_FAILURE_MAX: '3',
        MAGMA_AUTH_FAILURE_WINDOW_MS: '2000',
        MAGMA_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
        MAGMA_HEADERS_TIMEOUT_MS: '4000',
        MAGMA_BODY_TIMEOUT_MS: '9000',
        MAGMA_IDLE_TIMEOUT_MS: '60000',
        MAGMA_KEEP_ALIVE_TIMEOUT_MS: '5000',
        MAGMA_MAX_CONNECTIONS: '50',
        MAGMA_DECODE_PIXEL_BUDGET: '6000',
        MAGMA_IMAGE_WORKERS: '3',
        MAGMA_IMAGE_DECODER: 'sharp',
        MAGMA_LOG_LEVEL: 'warn',
        MAGMA_PLAYGROUND: 'false',
        MAGMA_ROLE: 'worker',
        MAGMA_REDIS_URL: 'redis://redis.internal:6379/2',
        MAGMA_JOB_MAX_ITEMS: '500',
        MAGMA_JOB_MAX_QUEUED: '5000',
        MAGMA_JOB_ATTEMPTS: '5',
        MAGMA_JOB_RESULT_TTL_MS: '3600000',
        MAGMA_JOB_LOCK_MS: '10000',
        MAGMA_JOB_CONCURRENCY: '3',
        MAGMA_JOB_MAX_BODY_BYTES: '1048576',
      },
      [],
    );
    expect(config).toEqual({
      host: '0.0.0.0',
      port: 9000,
      modelDir: resolve('relative/model'),
      executionProvider: 'cuda',
      deviceId: 1,
      dtype: 'fp16',
      memoryBudgetBytes: 24_000_000_000,
      prefixCacheBytes: 1_048_576,
      idempotencyTtlMs: 30_000,
      idempotencyMaxKeys: 50,
      imageStoreBytes: 2_097_152,
      imageTtlMs: 60_000,
      gpuMetricsIntervalMs: 0,
      intraOpThreads: 4,
      interOpThreads: 2,
      graphOptimization: 'basic',
      maxImageBytes: 1000,
      maxUploadBytes: 2000,
      maxImagePixels: 3000,
      maxMarks: 10,
      maxPromptChars: 100,
      maxTokens: 64,
      queueSize: 5,
      maxConcurrency: 2,
      maxBatchSize: 8,
      prefillPolicy: 'prefill-first',
      maxPrefillTokens: 512,
      requestTimeoutMs: 1500,
      shutdownGraceMs: 0,
      corsOrigins: ['https://a.example', 'https://b.example'],
      apiKeys: ['k1', 'k2'],
      rateLimitMax: 0,
      rateLimitWindowMs: 1000,
      authFailureMax: 3,
      authFailureWindowMs: 2000,
      trustProxy: ['10.0.0.0/8', '127.0.0.1'],
      headersTimeoutMs: 4000,
      bodyTimeoutMs: 9000,
      idleTimeoutMs: 60000,
      keepAliveTimeoutMs: 5000,
      maxConnections: 50,
      decodePixelBudget: 6000,
      imageWorkers: 3,
      imageDecoder: 'sharp',
      logLevel: 'warn',
      playground: false,
      role: 'worker',
      redisUrl: 'redis://redis.internal:6379/2',
      jobMaxItems: 500,
      jobMaxQueued: 5000,
      jobAttempts: 5,
      jobResultTtlMs: 3_600_000,
      jobLockMs: 10_000,
      jobConcurrency: 3,
      jobMaxBodyBytes: 1_048_576,
    });
  });

  it('has the hardening defaults: no rate limit, no trusted proxy, slow-client timeouts', () => {
    expect(loadConfig({}, [])).toMatchObject({
      rateLimitMax: 0,
      authFailureMax: 10,
      trustProxy: false,
      headersTimeoutMs: 10_000,
      bodyTimeoutMs: 30_000,
      idleTimeoutMs: 0,
      keepAliveTimeoutMs: 72_000,
      maxConnections: 1024,
      decodePixelBudget: 0,
    });
    expect(loadConfig({ MAGMA_TRUST_PROXY: 'true' }, []).trustProxy).toBe(true);
    expect(loadConfig({ MAGMA_TRUST_PROXY: '2' }, []).trustProxy).toBe(2);
    expect(() => loadConfig({ MAGMA_TRUST_PROXY: 'yes please' }, [])).toThrow(/MAGMA_TRUST_PROXY/);
    expect(() =>
      loadConfig({ MAGMA_HEADERS_TIMEOUT_MS: '5000', MAGMA_BODY_TIMEOUT_MS: '1000' }, []),
    ).toThrow(/MAGMA_HEADERS_TIMEOUT_MS/);
    expect(() =>
      loadConfig({ MAGMA_MAX_IMAGE_PIXELS: '5000', MAGMA_DECODE_PIXEL_BUDGET: '10' }, []),
    ).toThrow(/MAGMA_DECODE_PIXEL_BUDGET/);
  });

  it('lets flags override variables, as --name value or --name=value', () => {
    const config = loadConfig({ MAGMA_PORT: '9000', MAGMA_QUEUE_SIZE: '3' }, [
      '--port',
      '8081',
      '--model-dir=/models/magma-8b',
      '--api-keys',
      'a,b',
    ]);
    expect(config.port).toBe(8081);
    expect(config.queueSize).toBe(3);
    expect(config.modelDir).toBe('/models/magma-8b');
    expect(config.apiKeys).toEqual(['a', 'b']);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ MAGMA_PORT: '', MAGMA_API_KEYS: ' ' }, []).port).toBe(8080);
  });

  it.each([
    [{ MAGMA_PORT: 'eighty' }, [], /MAGMA_PORT="eighty" is invalid: must be an integer/],
    [{ MAGMA_PORT: '70000' }, [], /MAGMA_PORT/],
    [{ MAGMA_EXECUTION_PROVIDER: 'tpu' }, [], /MAGMA_EXECUTION_PROVIDER="tpu"/],
    [{ MAGMA_MAX_CONCURRENCY: '0' }, [], /MAGMA_MAX_CONCURRENCY/],
    [{ MAGMA_PREFILL_POLICY: 'lifo' }, [], /MAGMA_PREFILL_POLICY/],
    [{ MAGMA_MAX_MARKS: '65' }, [], /MAGMA_MAX_MARKS/],
    [{ MAGMA_REQUEST_TIMEOUT_MS: '1.5' }, [], /MAGMA_REQUEST_TIMEOUT_MS/],
    [{ MAGMA_LOG_LEVEL: 'loud' }, [], /MAGMA_LOG_LEVEL/],
    [{ MAGMA_PLAYGROUND: 'yes' }, [], /MAGMA_PLAYGROUND="yes" is invalid: must be true or false/],
    [{}, ['--port', 'x'], /--port \(MAGMA_PORT\)="x"/],
    [{}, ['--no-such-flag', '1'], /unknown option --no-such-flag/],
    [{}, ['--port'], /option --port needs a value/],
  ] as const)('stops on a bad value, naming it: %j %j', (env, argv, message) => {
    expect(() => loadConfig(env, argv)).toThrow(ConfigError);
    expect(() => loadConfig(env, argv)).toThrow(message);
  });

  it('documents every variable and flag in the usage text', () => {
    // One usage line per setting: "  --flag  MAGMA_NAME  default: ...".
    const documented = [...usage().matchAll(/^ +(--[a-z0-9-]+) +(MAGMA_[A-Z0-9_]+) +default: /gm)];
    const variables = documented.map((line) => line[2]!);
    // Every setting of the configuration (one key each) has its line, each named once.
    expect(variables).toHaveLength(Object.keys(loadConfig({}, [])).length);
    expect(new Set(variables).size).toBe(variables.length);
    for (const [, flag, variable] of documented) {
      expect(flag).toBe(flagFor(variable!));
      // The parser knows the flag (an unknown one throws); an empty value means unset.
      expect(() => loadConfig({}, [`${flag}=`])).not.toThrow();
    }
    for (const name of ['MAGMA_MODEL_DIR', 'MAGMA_RATE_LIMIT_WINDOW_MS', 'MAGMA_API_KEYS']) {
      expect(variables).toContain(name);
    }
  });

  it('derives the JSON body limit from maxImageBytes: base64 plus room for the other fields', () => {
    const config = loadConfig({ MAGMA_MAX_IMAGE_BYTES: String(3 * 1024 * 1024) }, []);
    const limit = jsonBodyLimit(config);
    expect(limit).toBeGreaterThan((3 * 1024 * 1024 * 4) / 3);
    expect(limit).toBeLessThan((3 * 1024 * 1024 * 4) / 3 + 2 * 1024 * 1024);
  });
});
