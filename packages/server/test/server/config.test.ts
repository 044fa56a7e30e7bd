import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, usage } from '../../src/index.js';
import { jsonBodyLimit } from '../../src/index.js';
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
        MAGMA_LOG_LEVEL: 'warn',
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
      logLevel: 'warn',
    });
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
    [{}, ['--port', 'x'], /--port \(MAGMA_PORT\)="x"/],
    [{}, ['--no-such-flag', '1'], /unknown option --no-such-flag/],
    [{}, ['--port'], /option --port needs a value/],
  ] as const)('stops on a bad value, naming it: %j %j', (env, argv, message) => {
    expect(() => loadConfig(env, argv)).toThrow(ConfigError);
    expect(() => loadConfig(env, argv)).toThrow(message);
  });

  it('documents every variable and flag in the usage text', () => {
    const text = usage();
    for (const name of [
      'MAGMA_MODEL_DIR',
      '--model-dir',
      'MAGMA_RATE_LIMIT_WINDOW_MS',
      '--api-keys',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('derives the JSON body limit from maxImageBytes: base64 plus room for the other fields', () => {
    const config = loadConfig({ MAGMA_MAX_IMAGE_BYTES: String(3 * 1024 * 1024) }, []);
    const limit = jsonBodyLimit(config);
    expect(limit).toBeGreaterThan((3 * 1024 * 1024 * 4) / 3);
    expect(limit).toBeLessThan((3 * 1024 * 1024 * 4) / 3 + 2 * 1024 * 1024);
  });
});
