import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Engine, EngineOptions } from '../packages/server/src/engine/index.js';
import type { ServerConfig } from '../packages/server/src/index.js';
import type { FromServer, ToServer } from './protocol.js';

// The server under test, as a child process of the benchmark: the real Fastify + tRPC server
// (configured from MAGMA_* like the CLI), with an engine built here so that the batching
// options (BENCH_ENGINE_OPTIONS, JSON) can be set whatever the server's config maps; with
// BENCH_SHIPPED_DEFAULTS=1 the server is the built package and starts its own engine from its
// config, as the CLI does (modules loaded dynamically, so that mode loads no source file of it).
// It measures its own main-thread event-loop delay and reports it over IPC.

/** Timer resolution of the event-loop monitor; each sample is resolution + delay. */
const RESOLUTION_MS = 1;

function send(message: FromServer): void {
  process.send!(message);
}

/** An engine with the benchmark's batching options. */
async function benchEngine(config: ServerConfig): Promise<Engine> {
  const { Engine } = await import('../packages/server/src/engine/index.js');
  const batching = JSON.parse(
    process.env['BENCH_ENGINE_OPTIONS'] ?? '{}',
  ) as Partial<EngineOptions>;
  return Engine.start({
    modelDir: config.modelDir,
    executionProvider: config.executionProvider,
    deviceId: config.deviceId,
    dtype: config.dtype,
    graphOptimizationLevel: config.graphOptimization,
    prefixCacheBytes: config.prefixCacheBytes,
    ...(config.intraOpThreads > 0 ? { intraOpNumThreads: config.intraOpThreads } : {}),
    ...(config.interOpThreads > 0 ? { interOpNumThreads: config.interOpThreads } : {}),
    ...batching,
  });
}

async function main(): Promise<void> {
  const shipped = process.env['BENCH_SHIPPED_DEFAULTS'] === '1';
  const { loadConfig, startServer } = shipped
    ? await import('@magma-som/server')
    : await import('../packages/server/src/index.js');
  const config = loadConfig(process.env);
  const engine = shipped ? undefined : await benchEngine(config);
  const server = await startServer(config, engine === undefined ? {} : { engine });
  await server.whenReady;

  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  const ms = (ns: number): number => Math.max(0, ns / 1e6 - RESOLUTION_MS);

  process.on('message', (message: ToServer) => {
    switch (message.type) {
      case 'loop-reset':
        histogram.reset();
        break;
      case 'loop-read':
        send({
          type: 'loop',
          delay: {
            p50: ms(histogram.percentile(50)),
            p99: ms(histogram.percentile(99)),
            max: ms(histogram.max),
            mean: ms(histogram.mean),
            samples: histogram.count,
          },
        });
        break;
      case 'gc':
        globalThis.gc?.();
        send({ type: 'gc-done' });
        break;
      case 'stop':
        histogram.disable();
        // shutdown() closes an engine the server started itself, not one handed to it
        void server
          .shutdown()
          .then(() => engine?.close())
          .finally(() => process.exit(0));
        break;
    }
  });
  send({ type: 'ready', url: server.url });
}

main().catch((error: unknown) => {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
