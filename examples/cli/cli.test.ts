import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBundledServer } from '../test-support/bundled-server.js';
import type { RunningServer } from '../test-support/bundled-server.js';

const BIN = fileURLToPath(new URL('./magma-som.mjs', import.meta.url));
const ASSET = fileURLToPath(new URL('../assets/shapes.png', import.meta.url));
// The quickstart's boxes on assets/shapes.png: #1 the red circle, #2 the blue square.
const CIRCLE = '130,50,182,102';
const SQUARE = '38,66,90,118';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the `magma-som` command as a user would, through its bin shim. */
function magmaSom(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env, MAGMA_URL: '', MAGMA_API_KEY: '' };
    execFile(process.execPath, [BIN, ...args], { env }, (error, stdout, stderr) => {
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
        stdout,
        stderr,
      });
    });
  });
}

/** Pixels in Magma's pure mark red, which the scene itself never uses. */
async function markRedPixels(path: string): Promise<number> {
  const { data, info } = await sharp(path)
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  let count = 0;
  for (let i = 0; i < info.width * info.height * 3; i += 3) {
    if (data[i] === 255 && data[i + 1] === 0 && data[i + 2] === 0) count++;
  }
  return count;
}

let running: RunningServer;
let dir: string;
let image: string;

beforeAll(async () => {
  running = await startBundledServer();
  dir = await mkdtemp(join(tmpdir(), 'magma-som-cli-'));
  image = join(dir, 'shapes.png');
  await copyFile(ASSET, image);
}, 120_000);

afterAll(async () => {
  await running?.server.shutdown();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('magma-som ask', () => {
  it('prints the answer and saves the marked image beside the input', async () => {
    const run = await magmaSom(
      'ask',
      image,
      '--mark',
      CIRCLE,
      '--mark',
      SQUARE,
      'What color is object #1?',
      '--url',
      running.url,
    );
    expect(run.stderr).toContain(`marked image: ${join(dir, 'shapes.marked.png')}`);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('red');

    const marked = join(dir, 'shapes.marked.png');
    expect(await sharp(marked).metadata()).toMatchObject({
      width: 224,
      height: 168,
      format: 'png',
    });
    expect(await markRedPixels(image)).toBe(0);
    expect(await markRedPixels(marked)).toBeGreaterThan(100);
  });

  it('--json prints the whole response; --no-save writes nothing; N: sets a label', async () => {
    const alone = join(dir, 'alone.png');
    await copyFile(ASSET, alone);
    // Labels swapped against their order: by position the circle would be #1.
    const marks = ['--mark', `2:${CIRCLE}`, '--mark', `1:${SQUARE}`];
    const run = await magmaSom(
      'ask',
      alone,
      ...marks,
      'What color is object #1?',
      '--json',
      '--no-save',
      '--max-tokens',
      '8',
      '--url',
      running.url,
    );
    expect(run.code, run.stderr).toBe(0);
    const response = JSON.parse(run.stdout) as {
      answer: string;
      model: { id: string };
      usage: { completionTokens: number };
      markedImage?: unknown;
    };
    expect(response.model.id).toBe('magma-tiny-som');
    expect(response.usage.completionTokens).toBeLessThanOrEqual(8);
    expect(response.markedImage).toBeUndefined();
    expect(response.answer).toBe('blue');
    expect(existsSync(join(dir, 'alone.marked.png'))).toBe(false);
  });

  it('refuses a malformed --mark with the usage text and exit code 2, before any request', async () => {
    const run = await magmaSom(
      'ask',
      image,
      '--mark',
      '10,10,200',
      'What is #1?',
      '--url',
      'http://127.0.0.1:1',
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--mark "10,10,200": expected x1,y1,x2,y2');
    expect(run.stderr).toContain('Usage: magma-som ask');
    expect(run.stdout).toBe('');
  });

  it('reports a server error with its code and exit code 1', async () => {
    const run = await magmaSom(
      'ask',
      image,
      '--mark',
      '0,0,500,500',
      'What is #1?',
      '--url',
      running.url,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /extends outside the 224x168 image \(INVALID_MARKS, request [\w-]+\)/,
    );
  });

  it('says when no server answers', async () => {
    const run = await magmaSom('ask', image, 'What is #1?', '--url', 'http://127.0.0.1:1');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('CONNECTION_ERROR');
    expect(run.stderr).toContain('npm start');
  });
});
