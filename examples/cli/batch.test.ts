import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@magma-som/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../../packages/server/test/jobs/redis.js';
import type { TestRedis } from '../../packages/server/test/jobs/redis.js';
import { startBundledServer } from '../test-support/bundled-server.js';
import type { RunningServer } from '../test-support/bundled-server.js';

// `magma-som batch` as a user runs it, through the bin shim, against the real server (role
// all: API and worker in one process) on a real redis-server and the bundled tiny model.

const BIN = fileURLToPath(new URL('./magma-som.mjs', import.meta.url));
const ASSET = fileURLToPath(new URL('../assets/shapes.png', import.meta.url));
const EXAMPLE_MANIFEST = fileURLToPath(new URL('../batch/manifest.jsonl', import.meta.url));
// The quickstart's boxes on shapes.png: #1 the red circle, #2 the blue square.
const MARKS: [number, number, number, number][] = [
  [130, 50, 182, 102],
  [38, 66, 90, 118],
];
const QUESTIONS = [
  'Describe the marked objects.',
  'What color is object #1?',
  'What color is object #2?',
  'Do #1 and #2 have the same color?',
  'Which is on the left, #1 or #2?',
];
/** Enough items that an interrupt after the first rows lands mid-way. */
const ITEMS = 150;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Row {
  readonly id: string;
  readonly status: string;
  readonly question: string;
  readonly answer?: string;
}

function magmaSom(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: cliEnv() }, (error, stdout, stderr) => {
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
        stdout,
        stderr,
      });
    });
  });
}

function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, MAGMA_URL: running.url, MAGMA_API_KEY: '' };
}

async function readRows(path: string): Promise<Row[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Row);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: TestRedis;
let running: RunningServer;
let dir: string;
/** The answer a direct ask gives to each question about shapes.png. */
const direct = new Map<string, string>();

beforeAll(async () => {
  redis = await startRedis();
  running = await startBundledServer({ MAGMA_REDIS_URL: redis.url, MAGMA_MAX_CONCURRENCY: '2' });
  dir = await mkdtemp(join(tmpdir(), 'magma-som-batch-'));
  await copyFile(ASSET, join(dir, 'shapes.png'));
  await using client = createClient({ baseUrl: running.url });
  const image = await readFile(ASSET);
  for (const question of QUESTIONS) {
    const response = await client.ask({ image, marks: MARKS, prompt: question });
    direct.set(question, response.answer);
  }
}, 180_000);

afterAll(async () => {
  await running?.server.shutdown();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('magma-som batch', () => {
  it('resumes after Ctrl-C: the re-run joins the batch and writes only the missing rows', async () => {
    const manifest = join(dir, 'manifest.jsonl');
    const lines = Array.from({ length: ITEMS }, (_, i) =>
      JSON.stringify({
        id: `ask-${i}`,
        image: 'shapes.png',
        marks: MARKS,
        question: QUESTIONS[i % QUESTIONS.length],
      }),
    );
    await writeFile(manifest, `${lines.join('\n')}\n`);
    const out = join(dir, 'results.jsonl');
    const args = [BIN, 'batch', manifest, '--out', out, '--poll-ms', '100'];

    // First run: interrupted with SIGINT as soon as the first rows are in the file.
    const first = spawn(process.execPath, args, {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let firstErr = '';
    first.stderr.on('data', (chunk: Buffer) => (firstErr += chunk.toString()));
    const firstExit = new Promise<number | null>((resolve) => first.once('exit', resolve));
    while ((await readRows(out)).length === 0 && first.exitCode === null) await sleep(50);
    first.kill('SIGINT');
    expect(await firstExit, firstErr).toBe(130);
    expect(firstErr).toMatch(/interrupted: \d+ of 150 results/);
    const batchId = /batch (batch_\S+):/.exec(firstErr)?.[1];
    expect(batchId).toBeDefined();
    const afterInterrupt = await readRows(out);
    expect(afterInterrupt.length).toBeGreaterThan(0);
    expect(afterInterrupt.length).toBeLessThan(ITEMS);

    // Second run: the same batch, only the missing rows written.
    const second = await magmaSom('batch', manifest, '--out', out, '--poll-ms', '100');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`batch ${batchId}:`);
    expect(second.stderr).toContain(`${afterInterrupt.length} already in ${out}`);
    expect(second.stderr).toMatch(/completed: 150 done, 0 failed, 0 cancelled of 150/);

    const rows = await readRows(out);
    expect(rows.slice(0, afterInterrupt.length)).toEqual(afterInterrupt);
    expect(rows.map((row) => row.id).sort()).toEqual(
      Array.from({ length: ITEMS }, (_, i) => `ask-${i}`).sort(),
    );
    for (const row of rows) {
      expect(row.status).toBe('done');
      expect(row.answer, row.id).toBe(direct.get(row.question));
    }

    // Third run: nothing left to do, nothing submitted.
    const third = await magmaSom('batch', manifest, '--out', out);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toContain('already holds all 150 results');
    expect(await readRows(out)).toEqual(rows);
  }, 600_000);

  it('runs the example manifest and a folder with a sidecar and --question', async () => {
    const exampleOut = join(dir, 'example.jsonl');
    const example = await magmaSom('batch', EXAMPLE_MANIFEST, '--out', exampleOut);
    expect(example.code, example.stderr).toBe(0);
    const exampleRows = await readRows(exampleOut);
    expect(exampleRows.map((row) => row.id)).toEqual([
      'describe',
      'color-1',
      'color-2',
      'shape-1',
      'shape-2',
      'same-color',
      'left',
      'find',
    ]);
    for (const row of exampleRows) {
      if (direct.has(row.question)) expect(row.answer).toBe(direct.get(row.question));
    }

    // A folder: a.png has a sidecar with two questions; b.png takes --mark and --question.
    const folder = join(dir, 'folder');
    await mkdir(folder);
    await copyFile(ASSET, join(folder, 'a.png'));
    await copyFile(ASSET, join(folder, 'b.png'));
    await writeFile(join(folder, 'notes.txt'), 'not an image');
    await writeFile(
      join(folder, 'a.json'),
      JSON.stringify({ marks: MARKS, questions: [QUESTIONS[1], QUESTIONS[4]] }),
    );
    const folderOut = join(dir, 'folder.jsonl');
    const marks = MARKS.flatMap((box) => ['--mark', box.join(',')]);
    const run = await magmaSom(
      'batch',
      folder,
      ...marks,
      '--question',
      QUESTIONS[2]!,
      '--out',
      folderOut,
    );
    expect(run.code, run.stderr).toBe(0);
    const rows = await readRows(folderOut);
    expect(rows.map((row) => [row.id, row.answer])).toEqual([
      ['a.png#1', direct.get(QUESTIONS[1]!)],
      ['a.png#2', direct.get(QUESTIONS[4]!)],
      ['b.png#1', direct.get(QUESTIONS[2]!)],
    ]);
  }, 300_000);

  it('refuses a bad manifest line and a missing --out with exit code 2', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, '{"image": "shapes.png", "question": "What is #1?"}\n{"image": 3}\n');
    const run = await magmaSom('batch', bad, '--out', join(dir, 'bad-out.jsonl'));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${bad}:2: "image" must be a path`);

    const noOut = await magmaSom('batch', bad);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toContain('batch needs --out results.jsonl');
  }, 120_000);
});
