#!/usr/bin/env node
import { ConfigError, loadConfig, usage } from './config/config.js';
import { startServer } from './server.js';

/** The magma-som-server command: configuration from env and flags, signals, exit codes. */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return;
  }
  let config;
  try {
    config = loadConfig(process.env, argv);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`magma-som-server: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }

  const server = await startServer(config);
  server.app.log.info({ url: server.url, modelDir: config.modelDir }, `listening on ${server.url}`);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      server.app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    server.app.log.info({ signal }, 'signal received: shutting down gracefully');
    server.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        server.app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    await server.whenReady;
    server.app.log.info({ url: server.url }, 'ready');
  } catch {
    // Already logged with its cause; a server that cannot load its model is of no use.
    await server.shutdown();
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(
    'magma-som-server failed to start:',
    error instanceof Error ? error.message : error,
  );
  process.exit(1);
});
