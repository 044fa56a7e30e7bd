import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { createServer, loadConfig } from '@magma-som/server';
import type { MagmaServer, ServingEngine } from '@magma-som/server';

const here = dirname(fileURLToPath(import.meta.url));
export const MODEL_DIR = join(here, '..', '..', '..', '..', 'models', 'magma-tiny-som');
export const API_KEY = 'sdk-test-key';

/** The real server with the tiny model, counting the TCP connections it accepts. */
export interface RunningServer {
  readonly server: MagmaServer;
  readonly url: string;
  /** Every socket accepted so far, open or closed. */
  readonly sockets: Socket[];
  close(): Promise<void>;
}

/**
 * `engine`: serve another running server's engine (`running.server.engine`) instead of loading
 * the model again; that server owns it, so close this one first.
 */
export async function startRealServer(
  env: Record<string, string> = {},
  engine?: ServingEngine,
): Promise<RunningServer> {
  const config = loadConfig({
    MAGMA_PORT: '0',
    MAGMA_LOG_LEVEL: 'silent',
    MAGMA_MODEL_DIR: MODEL_DIR,
    // The test machine has two shared cores.
    MAGMA_INTRA_OP_THREADS: '1',
    MAGMA_INTER_OP_THREADS: '1',
    MAGMA_MAX_TOKENS: '12',
    MAGMA_API_KEYS: API_KEY,
    ...env,
  });
  const server = await createServer(config, engine === undefined ? {} : { engine });
  const url = await server.listen();
  await server.whenReady;
  const sockets: Socket[] = [];
  server.app.server.on('connection', (socket: Socket) => sockets.push(socket));
  return { server, url, sockets, close: () => server.shutdown() };
}
