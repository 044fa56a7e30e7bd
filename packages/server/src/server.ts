import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import { MAX_IMAGE_STRING_CHARS, base64Length } from '@magma-som/schemas';
import type { AskResponse, ServerInfo } from '@magma-som/schemas';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerConfig } from './config/config.js';
import { Engine } from './engine/index.js';
import { AccessControl } from './http/access.js';
import { AccessLog } from './http/access-log.js';
import {
  TRPC_PREFIX,
  handleClientError,
  handleFrameworkError,
  installErrorReplies,
  isTrpcUrl,
  writeRawError,
} from './http/error-replies.js';
import { requestGuard } from './http/guards.js';
import { lingerAfterEarlyAnswer } from './http/linger.js';
import { registerPlainRoutes } from './http/plain-routes.js';
import { registerHttpApis } from './rest/register.js';
import { useJsonBodyParser } from './http/json-body.js';
import { currentRequest, requestIdFrom } from './http/request-id.js';
import { ServerState } from './lifecycle/server-state.js';
import { shutDownGracefully } from './lifecycle/shutdown.js';
import { DISABLED_JOBS } from './jobs/jobs-api.js';
import { startJobs } from './jobs/jobs-runtime.js';
import { IdempotencyStore } from './idempotency/idempotency-store.js';
import { idempotentAsk } from './idempotency/idempotent-ask.js';
import { GpuMemoryPoller } from './metrics/gpu-memory.js';
import { ServerMetrics } from './metrics/metrics.js';
import { AskPipeline } from './pipeline/ask-pipeline.js';
import type { ServingEngine } from './pipeline/serving-engine.js';
import { WorkQueue } from './queue/work-queue.js';
import type { ServerServices } from './trpc/context.js';
import { mountTrpc } from './trpc/mount.js';
import { appRouter } from './trpc/router.js';
import { resizeImplementation } from './engine/image-processor.js';
import { nativeDecoderStatus } from './images/native-decoders.js';
import { findPlaygroundDir } from './playground/assets-dir.js';
import { servePlayground } from './playground/serve-playground.js';
import { serverVersion } from './version.js';

export interface CreateServerOptions {
  /**
   * An engine to serve instead of starting one from config.modelDir (tests share one this
   * way). The server warms it up but does not close it: whoever made it owns it. A promise is
   * accepted, so the server can answer /ready (503) while it is still being made.
   */
  readonly engine?: ServingEngine | Promise<ServingEngine>;
  /** Where the built playground page is, instead of this package's playground/ (tests). */
  readonly playgroundDir?: string;
}

export interface MagmaServer {
  readonly app: FastifyInstance;
  readonly config: ServerConfig;
  /** Resolves once the model is loaded and warmed up (/ready 200); rejects if that fails. */
  readonly whenReady: Promise<void>;
  /** The engine being served, once loaded. */
  readonly engine: ServingEngine | undefined;
  /** Starts listening; resolves to the base URL. */
  listen(): Promise<string>;
  /**
   * Graceful shutdown: /ready turns 503 and new asks are refused, queued and running asks get
   * shutdownGraceMs to finish (then fail with MODEL_NOT_READY), then the listener and the
   * engine close. Idempotent.
   */
  shutdown(): Promise<void>;
}

/** Slack above the image for the rest of a JSON ask (prompt, marks, options). */
const JSON_BODY_SLACK = 1024 * 1024;
/** Slack above maxUploadBytes for the multipart envelope and the `request` field. */
const UPLOAD_BODY_SLACK = 1024 * 1024;

/** JSON body limit: base64 of the largest image (4/3 of its bytes) plus room for the other fields. */
export function jsonBodyLimit(config: ServerConfig): number {
  const imageChars = Math.min(base64Length(config.maxImageBytes) + 64, MAX_IMAGE_STRING_CHARS);
  return imageChars + JSON_BODY_SLACK;
}

/** Builds the server (routes, hooks, tRPC) and starts loading the model in the background. */
export async function createServer(
  config: ServerConfig,
  options: CreateServerOptions = {},
): Promise<MagmaServer> {
  const version = serverVersion();
  const startedAt = Date.now();
  const state = new ServerState();
  const queue = new WorkQueue({
    maxConcurrency: config.maxConcurrency,
    queueSize: config.queueSize,
  });
  const metrics = new ServerMetrics(queue, () => state.isReady);
  const pipeline = new AskPipeline({ config, queue, state, metrics });
  const idempotency =
    config.idempotencyTtlMs > 0
      ? new IdempotencyStore<AskResponse>({
          ttlMs: config.idempotencyTtlMs,
          maxKeys: config.idempotencyMaxKeys,
        })
      : undefined;
  const gpuMemory = new GpuMemoryPoller({
    registry: metrics.registry,
    intervalMs: config.gpuMetricsIntervalMs,
  });

  const app = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: jsonBodyLimit(config),
    genReqId: (request) => requestIdFrom(request.headers['x-request-id']),
    requestIdHeader: false,
    logController: new AccessLog({ requestIdLogLabel: 'requestId' }),
    routerOptions: { maxParamLength: 5000 },
    trustProxy: trustProxyOption(config.trustProxy),
    // Slow clients: the headers, then the whole request, must arrive within these; an idle
    // socket is closed after idleTimeoutMs; idle keep-alive connections after their timeout.
    requestTimeout: config.bodyTimeoutMs,
    connectionTimeout: idleTimeoutMs(config),
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default: too coarse for them).
      connectionsCheckingInterval: checkingInterval(config),
      // Checked in requestGuard instead, to answer in the contract's shape.
      requireHostHeader: false,
    },
    // Node's parser errors (bad chunking, NUL in headers, ...) and router failures (over-long
    // path segment, bad URL encoding) answer in the contract's shape too.
    clientErrorHandler: handleClientError,
    frameworkErrors: handleFrameworkError,
    // Requests arriving while we drain still get a typed answer (MODEL_NOT_READY), not Fastify's.
    return503OnClosing: false,
  });
  if (config.maxConnections > 0) app.server.maxConnections = config.maxConnections;
  // Large JSON bodies are parsed in the image workers (tRPC's scope reads its bodies itself).
  useJsonBodyParser(app, pipeline.imagePool);
  // Without a listener Node drops CONNECT requests' sockets; answer them like any other method.
  app.server.on('connect', (_request, socket) => writeRawError(socket, 'METHOD_NOT_ALLOWED'));

  await app.register(rateLimit, { global: false });
  const access = new AccessControl(app, config);
  installErrorReplies(app);
  // First hook: methods and URLs no route serves, then auth and rate limit for /trpc, all
  // before a body is read.
  app.addHook('onRequest', requestGuard({ cors: config.corsOrigins.length > 0 }));
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    const trpc = isTrpcUrl(request.url) && request.method !== 'OPTIONS';
    if (state.isShuttingDown) {
      // Late arrivals while draining: a typed, retryable 503, and the connection is not reused.
      void reply.header('connection', 'close');
      if (trpc) throw state.notReadyError();
    }
    if (trpc) await access.check(request);
  });
  app.addHook('onSend', async (request, reply) => {
    // An answer sent before the body was read (auth, limits): the connection is not reused,
    // and the rest of the body is read and discarded so the client gets to read the answer.
    if (!request.raw.complete) {
      void reply.header('connection', 'close');
      lingerAfterEarlyAnswer(request.raw.socket);
    }
  });
  app.addHook('preHandler', (request, _reply, done) => {
    currentRequest.run(request.id, done);
  });
  app.addHook('onResponse', async (request, reply) => {
    const labels = { route: routeLabel(request), status: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });
  await app.register(cors, {
    origin: config.corsOrigins.length === 0 ? false : [...config.corsOrigins],
    exposedHeaders: ['x-request-id', 'retry-after'],
  });

  // Batch jobs through Redis (MAGMA_REDIS_URL); the role says which side this process runs.
  const jobs =
    config.redisUrl === ''
      ? undefined
      : startJobs({
          config,
          registry: metrics.registry,
          ask: (call) => pipeline.ask(call),
          uploadedImage: (imageId) => pipeline.images.get(imageId),
          log: app.log,
        });

  const services: ServerServices = {
    jobs: jobs?.api ?? DISABLED_JOBS,
    ask: (call) => idempotentAsk(idempotency, call, (c) => pipeline.ask(c)),
    uploadImage: (bytes) => pipeline.uploadImage(bytes),
    info: () => serverInfo(config, state, queue, version),
    recordCall(procedure, outcome, durationMs) {
      metrics.procedureCalls.inc({ procedure, status: outcome });
      metrics.procedureDuration.observe({ procedure, status: outcome }, durationMs / 1000);
    },
  };
  // A worker process serves only /health, /ready and /metrics over HTTP.
  if (config.role !== 'worker') {
    await mountTrpc(app, {
      services,
      access,
      maxBodySize: config.maxUploadBytes + UPLOAD_BODY_SLACK,
      jsonParser: pipeline.imagePool,
    });
  }
  registerPlainRoutes(app, { version, startedAt, state, metrics });
  gpuMemory.start();
  // OpenAI-compatible and REST routes under /v1, and GET /openapi.json.
  if (config.role !== 'worker') {
    await registerHttpApis(app, { config, services, access, state, version });
  }
  // The playground page at / (packages/playground, built into this package's playground/).
  if (config.playground && config.role !== 'worker') {
    const dir = options.playgroundDir ?? findPlaygroundDir();
    if (dir === undefined) {
      app.log.warn('the playground page is not built (npm run build): / is not served');
    } else {
      await servePlayground(app, dir);
    }
  }

  const ownsEngine = options.engine === undefined;
  // An api-role process loads no model: it is ready once Redis answers.
  const engineReady: Promise<ServingEngine | undefined> =
    config.role === 'api'
      ? Promise.resolve(undefined)
      : Promise.resolve(options.engine ?? startEngine(config, () => metrics.engineRestarts.inc()));
  // Awaited below after Redis answers: a load failure before then is handled there, not lost.
  engineReady.catch(() => {});
  const whenReady = (async () => {
    if (jobs !== undefined) {
      await jobs.connected.catch((error: unknown) => {
        state.failed('cannot reach Redis (MAGMA_REDIS_URL); see the server log');
        throw error;
      });
    }
    const engine = await engineReady;
    if (engine === undefined) {
      state.servesWithoutModel();
      app.log.info({ role: config.role }, 'serving batch jobs without a model');
      return;
    }
    state.engineLoaded(engine);
    app.log.info({ model: engine.info.name, revision: engine.info.revision }, 'model loaded');
    app.log.info(imageDecoderLog(config.imageDecoder), 'image decoders');
    const warmupStarted = performance.now();
    await engine.warmup();
    state.warmedUp();
    app.log.info({ warmupMs: Math.round(performance.now() - warmupStarted) }, 'model warmed up');
    // Items are taken only by a warm engine (a cold one would hold their locks while loading).
    jobs?.startWorker();
  })();
  whenReady.catch((error: unknown) => {
    state.failed();
    app.log.error({ err: error }, 'the model failed to load or warm up');
  });

  let shutdownPromise: Promise<void> | undefined;
  return {
    app,
    config,
    whenReady,
    get engine() {
      return state.engine;
    },
    listen: () => app.listen({ host: config.host, port: config.port }),
    shutdown() {
      gpuMemory.stop();
      // The job worker stops taking items at once; its running items drain with the asks.
      const jobsClosed = jobs?.close(config.shutdownGraceMs);
      shutdownPromise ??= shutDownGracefully({
        app,
        state,
        queue,
        graceMs: config.shutdownGraceMs,
        async closeEngine() {
          await jobsClosed?.catch((error: unknown) => {
            app.log.warn({ err: error }, 'closing the job queue failed');
          });
          await pipeline.close();
          if (!ownsEngine) return;
          const engine = await engineReady.catch(() => undefined);
          await engine?.close();
        },
      });
      return shutdownPromise;
    },
  };
}

/**
 * Creates the server and starts listening at once, so /health answers and /ready says 503
 * while the model loads; `whenReady` tells when it is serving.
 */
export async function startServer(
  config: ServerConfig,
  options: CreateServerOptions = {},
): Promise<MagmaServer & { readonly url: string }> {
  const server = await createServer(config, options);
  const url = await server.listen();
  return Object.assign(server, { url });
}

/** Fastify's trustProxy; a hop count as the function Fastify's types accept for it. */
function trustProxyOption(
  value: ServerConfig['trustProxy'],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof value === 'number') return (_address, hop) => hop < value;
  return typeof value === 'boolean' ? value : [...value];
}

/** Socket inactivity limit: configured, or the request deadline plus 30 s. */
function idleTimeoutMs(config: ServerConfig): number {
  return config.idleTimeoutMs > 0 ? config.idleTimeoutMs : config.requestTimeoutMs + 30_000;
}

/** How often Node checks the header and body timeouts: a quarter of the shorter one. */
function checkingInterval(config: ServerConfig): number {
  const shorter = Math.min(config.headersTimeoutMs, config.bodyTimeoutMs);
  return Math.max(50, Math.min(1_000, Math.floor(shorter / 4)));
}

function startEngine(config: ServerConfig, onRestart: () => void): Promise<Engine> {
  return Engine.start({
    modelDir: config.modelDir,
    executionProvider: config.executionProvider,
    deviceId: config.deviceId,
    dtype: config.dtype,
    memoryBudgetBytes: config.memoryBudgetBytes,
    prefixCacheBytes: config.prefixCacheBytes,
    graphOptimizationLevel: config.graphOptimization,
    maxBatchSize: config.maxBatchSize > 0 ? config.maxBatchSize : config.maxConcurrency,
    prefillPolicy: config.prefillPolicy,
    maxPrefillTokens: config.maxPrefillTokens,
    ...(config.intraOpThreads > 0 ? { intraOpNumThreads: config.intraOpThreads } : {}),
    ...(config.interOpThreads > 0 ? { interOpNumThreads: config.interOpThreads } : {}),
    onRestart,
  });
}

function serverInfo(
  config: ServerConfig,
  state: ServerState,
  queue: WorkQueue,
  version: string,
): ServerInfo {
  const engine = state.engine;
  if (engine === undefined) throw state.notReadyError();
  const { name, revision, executionProvider, dtype, cropSize, maxCrops, memory } = engine.info;
  return {
    version,
    model: {
      id: name,
      revision,
      executionProvider,
      dtype,
      cropSize,
      maxCrops,
      ...(memory !== undefined ? { memory } : {}),
    },
    ready: state.readiness(),
    queue: { depth: queue.depth, inFlight: queue.inFlight, capacity: queue.capacity },
    limits: {
      maxImageBytes: config.maxImageBytes,
      maxUploadBytes: config.maxUploadBytes,
      maxImagePixels: config.maxImagePixels,
      maxMarks: config.maxMarks,
      maxPromptChars: config.maxPromptChars,
      maxTokens: config.maxTokens,
      requestTimeoutMs: config.requestTimeoutMs,
    },
  };
}

const PROCEDURES: ReadonlySet<string> = new Set(Object.keys(appRouter._def.procedures));

/** The metrics label of a request: the tRPC procedure, the plain route, or "unmatched". */
function routeLabel(request: FastifyRequest): string {
  const url = request.routeOptions.url;
  if (url === undefined) return 'unmatched';
  if (url.startsWith(TRPC_PREFIX)) {
    const path = (request.params as { path?: string }).path ?? '';
    return PROCEDURES.has(path) ? `trpc.${path}` : 'trpc.other';
  }
  return url;
}

/**
 * Which decoder plain JPEGs and PNGs get, and which resize the model's crops, and why not the
 * native ones: a missing build is the common case.
 */
function imageDecoderLog(choice: ServerConfig['imageDecoder']): Record<string, string> {
  const resize = resizeImplementation();
  const log: Record<string, string> = {
    resize: resize.native ? 'native' : 'javascript',
    ...(resize.native ? {} : { resizeReason: resize.reason ?? 'not built' }),
  };
  if (choice === 'sharp')
    return { jpeg: 'sharp', png: 'sharp', reason: 'MAGMA_IMAGE_DECODER=sharp', ...log };
  for (const [format, decoder] of [
    ['jpeg', 'libjpeg'],
    ['png', 'libpng'],
  ] as const) {
    const status = nativeDecoderStatus(format);
    log[format] = status.available ? decoder : 'sharp';
    if (!status.available) log[`${format}Reason`] = status.reason ?? 'not built';
  }
  return log;
}
