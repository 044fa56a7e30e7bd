import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ServerProcess, freePort } from './server-process.js';

// The server CLI from its TypeScript sources, so this test needs no build.
const SERVER_FROM_SOURCE = [
  '--conditions=@magma-som/source',
  '--import',
  import.meta.resolve('tsx'),
  fileURLToPath(new URL('../../packages/server/src/cli.ts', import.meta.url)),
];
const QUIET = { ...process.env, MAGMA_LOG_LEVEL: 'silent', MAGMA_INTRA_OP_THREADS: '1' };

describe('ServerProcess (how the demo runs the server)', () => {
  it('waits for /ready, then stops the server with SIGTERM and a clean exit', async () => {
    const server = new ServerProcess(SERVER_FROM_SOURCE, await freePort(), QUIET);
    try {
      await server.waitUntilReady(90_000);
      const ready = await fetch(`${server.url}/ready`);
      expect(ready.status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('fails fast when the server exits before it is ready', async () => {
    const env = { ...QUIET, MAGMA_MODEL_DIR: '/nonexistent/model' };
    const server = new ServerProcess(SERVER_FROM_SOURCE, await freePort(), env);
    await expect(server.waitUntilReady(90_000)).rejects.toThrow(
      /the server exited \(1\) before it was ready/,
    );
    expect(await server.stop()).toBe(1);
  });

  it('gives up after the timeout, naming what /ready last said', async () => {
    // A stand-in that never gets ready: it answers /ready with 503 like a loading server.
    const loading = `require('node:http').createServer((req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ready: false, reason: 'loading the model' }));
    }).listen(Number(process.env.MAGMA_PORT), '127.0.0.1');`;
    const server = new ServerProcess(['-e', loading], await freePort());
    try {
      await expect(server.waitUntilReady(1_500)).rejects.toThrow(
        /was not ready after 1\.5 s \(HTTP 503: loading the model\)/,
      );
    } finally {
      expect(await server.stop()).toBe('SIGTERM');
    }
  });
});
