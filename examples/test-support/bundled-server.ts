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
 * `env` adds or overrides settings (MAGMA_REDIS_URL for batch jobs).
 */
export async function startBundledServer(env: Record<string, string> = {}): Promise<RunningServer> {
  const config = loadConfig({
    MAGMA_PORT: '0',
    MAGMA_LOG_LEVEL: 'silent',
    MAGMA_INTRA_OP_THREADS: '1',
    MAGMA_INTER_OP_THREADS: '1',
    ...env,
  });
  const server = await createServer(config);
  const url = await server.listen();
  await server.whenReady;
  return { server, url };
}

interface BundleConfigJson {
  revision?: string;
  magma_som?: { eval?: RecordedEval };
}

/** What `npm run eval -- --record` measured for the bundle, kept in its config.json. */
export interface RecordedEval {
  readonly revision: string;
  readonly in_distribution: { readonly correct: number; readonly total: number };
}

function bundledConfig(): BundleConfigJson {
  const config = loadConfig({});
  return JSON.parse(readFileSync(`${config.modelDir}/config.json`, 'utf8')) as BundleConfigJson;
}

/** The bundled model's revision, read from its config.json without starting anything. */
export function bundledModelRevision(): string {
  return bundledConfig().revision ?? '';
}

/**
 * The bundled model's recorded eval, for tests that hold the served answers to what the eval
 * measured. Throws when the bundle has none or it is another revision's: a bundle ships with
 * its eval recorded, so there is no way to turn the answer checks off.
 */
export function bundledModelEval(): RecordedEval {
  const json = bundledConfig();
  const recorded = json.magma_som?.eval;
  if (recorded === undefined)
    throw new Error('the bundled model has no recorded eval: run npm run eval -- --record');
  if (recorded.revision !== json.revision)
    throw new Error(
      `the recorded eval is of revision ${recorded.revision}, the bundle is ${json.revision}`,
    );
  return recorded;
}
