import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { startTestEngine, startTestServer, testImage } from '../server/helpers.js';
import type { RunningServer } from '../server/helpers.js';

// The Python client (examples/python, standard library only) against real servers running the
// real tiny model: its own unittest suite, run by /usr/bin/python3.

const PYTHON_DIR = fileURLToPath(new URL('../../../../examples/python/', import.meta.url));
const run = promisify(execFile);

let engine: Engine;
let plain: RunningServer;
let limited: RunningServer;
let dir: string;

beforeAll(async () => {
  engine = await startTestEngine();
  plain = await startTestServer(engine, { maxTokens: 16 });
  limited = await startTestServer(engine, {
    apiKeys: ['py-key'],
    rateLimitMax: 1,
    rateLimitWindowMs: 2_000,
  });
  dir = await mkdtemp(join(tmpdir(), 'magma-py-'));
  await writeFile(join(dir, 'scene.png'), await testImage());
}, 180_000);

afterAll(async () => {
  await plain?.server.shutdown();
  await limited?.server.shutdown();
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('passes its unittest suite against the server', async () => {
  const result = await run('/usr/bin/python3', ['-m', 'unittest', '-v', 'test_magma_som'], {
    cwd: PYTHON_DIR,
    env: {
      PATH: process.env.PATH ?? '',
      PYTHONDONTWRITEBYTECODE: '1',
      MAGMA_URL: plain.url,
      MAGMA_LIMITED_URL: limited.url,
      MAGMA_API_KEY: 'py-key',
      MAGMA_IMAGE: join(dir, 'scene.png'),
    },
    timeout: 300_000,
  }).catch((error: { stdout?: string; stderr?: string; code?: number }) => error);
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  expect(output).toMatch(/Ran 9 tests/);
  expect(output, output).toMatch(/\nOK\s*$/);
}, 300_000);
