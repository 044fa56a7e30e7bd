import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { AskRequestInput, ErrorData } from '@magma-som/schemas';
import { ErrorDataSchema } from '@magma-som/schemas';
import { expect } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import type { EngineOptions, GenerateRequest, GenerateResult } from '../../src/engine/index.js';
import { createServer, loadConfig } from '../../src/index.js';
import type { MagmaServer, ServerConfig, ServingEngine } from '../../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const MODEL_DIR = join(here, '..', '..', '..', '..', 'models', 'magma-tiny-som');

/** The real tiny model, one worker, the fewest threads (the test machine has 2 shared cores). */
export function startTestEngine(options: Partial<EngineOptions> = {}): Promise<Engine> {
  return Engine.start({
    modelDir: MODEL_DIR,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    ...options,
  });
}

/** Defaults for tests: quiet logs, port 0, small token cap. */
export function testConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  const base = loadConfig({ MAGMA_PORT: '0', MAGMA_LOG_LEVEL: 'silent' }, []);
  return { ...base, modelDir: MODEL_DIR, maxTokens: 16, ...overrides };
}

export interface RunningServer {
  readonly server: MagmaServer;
  readonly url: string;
}

/** A real server on a free port around `engine`, ready (warmed up) when this resolves. */
export async function startTestServer(
  engine: ServingEngine | Promise<ServingEngine>,
  overrides: Partial<ServerConfig> = {},
): Promise<RunningServer> {
  const server = await createServer(testConfig(overrides), { engine });
  const url = await server.listen();
  await server.whenReady;
  return { server, url };
}

/**
 * The real engine behind a gate: generate() waits until the test opens it, so a test can hold
 * requests "in the engine" for as long as it needs to check queue and shutdown behaviour.
 * Everything else, and the generation itself, is the real engine.
 */
export class GatedEngine implements ServingEngine {
  readonly calls: GenerateRequest[] = [];
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => {};
  private arrivals: Array<() => void> = [];

  constructor(private readonly engine: Engine) {}

  get info() {
    return this.engine.info;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  warmup(): Promise<void> {
    return this.engine.warmup();
  }

  /** From now on, generate() waits until open(). */
  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  open(): void {
    this.openGate();
  }

  /** Resolves once `count` generate() calls have arrived in total. */
  async arrived(count: number): Promise<void> {
    while (this.calls.length < count) {
      await new Promise<void>((resolve) => this.arrivals.push(resolve));
    }
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    this.calls.push(request);
    for (const notify of this.arrivals.splice(0)) notify();
    await this.gate;
    return this.engine.generate(request);
  }
}

/** A solid-colour test image with a darker square in it. */
export async function testImage(
  width = 160,
  height = 120,
  format: 'png' | 'jpeg' | 'webp' | 'gif' = 'png',
): Promise<Buffer> {
  const square = await sharp({
    create: { width: 40, height: 40, channels: 3, background: { r: 200, g: 30, b: 40 } },
  })
    .png()
    .toBuffer();
  return sharp({
    create: { width, height, channels: 3, background: { r: 220, g: 230, b: 240 } },
  })
    .composite([{ input: square, left: 20, top: 20 }])
    .toFormat(format)
    .toBuffer();
}

export function askBody(image: Buffer, extra: Partial<AskRequestInput> = {}): AskRequestInput {
  return {
    image: image.toString('base64'),
    prompt: 'What colour is the shape in #1?',
    marks: [{ label: 1, x1: 15, y1: 15, x2: 65, y2: 65 }],
    options: { maxTokens: 4 },
    ...extra,
  };
}

/** POST /trpc/<procedure> in tRPC's HTTP wire format (JSON body, no transformer). */
export function postTrpc(
  url: string,
  procedure: string,
  body: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(`${url}/trpc/${procedure}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

/** Reads a tRPC error response and checks it carries the contract's ErrorData. */
export async function expectTrpcError(
  response: Response,
  code: ErrorData['code'],
  httpStatus: number,
): Promise<ErrorData> {
  const text = await response.text();
  expect(response.status, text).toBe(httpStatus);
  const body = JSON.parse(text) as { error: { message: string; code: number; data: unknown } };
  const data = ErrorDataSchema.parse(body.error.data);
  expect(data.code).toBe(code);
  expect(data.httpStatus).toBe(httpStatus);
  expect(body.error.message).toBe(data.message);
  expectNoInternals(text);
  return data;
}

/** No stack frames or file paths in anything a client receives. */
export function expectNoInternals(text: string): void {
  expect(text).not.toMatch(/\bat .+\(.*:\d+:\d+\)/);
  expect(text).not.toMatch(/\/(work|home|usr|tmp|node_modules)\//);
  expect(text).not.toContain('"stack"');
}

/** A value from /metrics, 0 when the series does not exist yet. */
export async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
