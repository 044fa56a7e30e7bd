import { createServer, loadConfig } from '@magma-som/server';
import type { MagmaServer, ServingEngine } from '@magma-som/server';
import { Engine } from '../../../server/src/engine/index.js';

/** The bundled magma-tiny-som, one thread each way (the test machine's cores are shared). */
export async function startEngine(): Promise<Engine> {
  const modelDir = loadConfig({}).modelDir;
  return Engine.start({ modelDir, intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export interface RunningServer {
  readonly server: MagmaServer;
  readonly url: string;
}

/** The real server on a free port around `engine`, serving the page from `playgroundDir`. */
export async function startServer(
  engine: ServingEngine,
  playgroundDir: string,
  env: Record<string, string> = {},
): Promise<RunningServer> {
  const config = loadConfig({ MAGMA_PORT: '0', MAGMA_LOG_LEVEL: 'silent', ...env });
  const server = await createServer(config, { engine, playgroundDir });
  const url = await server.listen();
  await server.whenReady;
  return { server, url };
}
