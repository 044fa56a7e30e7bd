import { benchClient, runClosedLoop } from './load.js';
import { ServerHandle } from './server-handle.js';
import type { ServerOptions } from './server-handle.js';
import type { BenchSettings } from './settings.js';
import type { Workload } from './workload.js';
import type { MagmaClient } from '@magma-som/sdk';

/** What every benchmark section gets. */
export interface BenchContext {
  readonly settings: BenchSettings;
  readonly workload: Workload;
  log(message: string): void;
}

/** A fresh server child process and a client of it, warmed up with a few requests; always stopped. */
export async function withServer<T>(
  context: BenchContext,
  options: ServerOptions,
  body: (server: ServerHandle, client: MagmaClient) => Promise<T>,
): Promise<T> {
  const server = await ServerHandle.start(options);
  const client = benchClient(server.url);
  try {
    const warm = await runClosedLoop(client, context.workload, {
      concurrency: 2,
      requests: context.settings.quick ? 2 : 8,
      maxTokens: context.settings.maxTokens,
    });
    if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.firstError}`);
    return await body(server, client);
  } finally {
    await client.close();
    await server.stop();
  }
}
