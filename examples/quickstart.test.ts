import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBundledServer } from './test-support/bundled-server.js';
import type { RunningServer } from './test-support/bundled-server.js';

const QUICKSTART = fileURLToPath(new URL('./quickstart.ts', import.meta.url));
const MARKED = fileURLToPath(new URL('./output/quickstart-marked.png', import.meta.url));

let running: RunningServer;

beforeAll(async () => {
  running = await startBundledServer();
  rmSync(MARKED, { force: true });
}, 120_000);

afterAll(async () => {
  await running?.server.shutdown();
});

it('runs as a user runs it: prints the answer and saves the marked image', async () => {
  const args = [
    '--conditions=@magma-som/source',
    '--import',
    import.meta.resolve('tsx'),
    QUICKSTART,
  ];
  const env = { ...process.env, MAGMA_URL: running.url };
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, args, { env }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out),
    );
  });
  expect(stdout).toContain('Q: What color is object #1?\nA: ');
  expect(stdout).toContain('magma-tiny-som');
  expect(stdout).toContain(`Marked image: ${MARKED}`);
  expect(existsSync(MARKED)).toBe(true);
  expect(await sharp(MARKED).metadata()).toMatchObject({ width: 224, height: 168 });
});
