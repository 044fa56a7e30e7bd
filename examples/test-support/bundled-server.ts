import { readFileSync } from 'node:fs';
import { createServer, loadConfig } from '@magma-som/server';
import type { MagmaServer } from '@magma-som/server';

export interface RunningServer {
  readonly server: MagmaServer;
  readonly url: string;
}

/**
 * The real server, in this process, on a free port, serving the bundled magma-tiny-som;
 * resolves once it is ready. One engine thread each way: the test machine's cores are shared.
 */
export async function startBundledServer(): Promise<RunningServer> {
  const config = loadConfig({
    MAGMA_PORT: '0',
    MAGMA_LOG_LEVEL: 'silent',
    MAGMA_INTRA_OP_THREADS: '1',
    MAGMA_INTER_OP_THREADS: '1',
  });
  const server = await createServer(config);
  const url = await server.listen();
  await server.whenReady;
  return { server, url };
}

/** The bundled model's revision, read from its config.json without starting anything. */
export function bundledModelRevision(): string {
  const config = loadConfig({});
  const json = JSON.parse(readFileSync(`${config.modelDir}/config.json`, 'utf8')) as {
    revision?: string;
  };
  return json.revision ?? '';
}
