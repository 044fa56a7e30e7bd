import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
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
      await server.waitUntilReady(240_000);
      const ready = await fetch(`${server.url}/ready`);
      expect(ready.status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 300_000); // loads the model in a child process: up to the 240 s above, then the drain

  it('fails fast when the server exits before it is ready', async () => {
    const env = { ...QUIET, MAGMA_MODEL_DIR: '/nonexistent/model' };
    const server = new ServerProcess(SERVER_FROM_SOURCE, await freePort(), env);
    await expect(server.waitUntilReady(240_000)).rejects.toThrow(
      /the server exited \(1\) before it was ready/,
    );
    expect(await server.stop()).toBe(1);
  }, 300_000);

  it('gives up after the timeout, naming what /ready last said', async () => {
    // A stand-in that never gets ready: it answers /ready with 503 like a loading server.
    const loading = `require('node:http').createServer((req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ready: false, reason: 'loading the model' }));
    }).listen(Number(process.env.MAGMA_PORT), '127.0.0.1');`;
    const server = new ServerProcess(['-e', loading], await freePort());
    try {
      // A cold child can take seconds to start on a loaded machine: wait until it answers, so
      // the timeout below measures only the waiting on a server that never gets ready.
      await vi.waitFor(async () => expect((await fetch(`${server.url}/ready`)).status).toBe(503), {
        timeout: 60_000,
        interval: 100,
      });
      await expect(server.waitUntilReady(6_000)).rejects.toThrow(
        /was not ready after 6 s \(HTTP 503: loading the model\)/,
      );
    } finally {
      expect(await server.stop()).toBe('SIGTERM');
    }
  });
});
