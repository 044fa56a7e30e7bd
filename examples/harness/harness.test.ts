import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createClient } from '@magma-som/sdk';
import sharp from 'sharp';
import type { MagmaClient } from '@magma-som/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classicQuestions } from '../../tools/tiny-model/questions.js';
import { startBundledServer } from '../test-support/bundled-server.js';
import type { RunningServer } from '../test-support/bundled-server.js';
import { formatReport } from './format-report.js';
import { TINY_MODEL_ID, assertionPolicy, runHarness } from './harness.js';
import type { HarnessReport } from './harness.js';
import { percentile } from './latency.js';
import { renderMarkedScene } from './scene.js';

// Until trained weights land, the bundle is random (revision "random-0") and its answers
// mean nothing: only then is the answer check skipped.
const RUNS = 2;
const RUN_TS = fileURLToPath(new URL('./run.ts', import.meta.url));

/** Runs harness/run.ts as a user would (tsx, workspace packages from source). */
function runCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const node = [
    '--conditions=@magma-som/source',
    '--import',
    import.meta.resolve('tsx'),
    RUN_TS,
    ...args,
  ];
  return new Promise((resolve) => {
    execFile(process.execPath, node, (error, stdout, stderr) => {
      resolve({
        code: typeof error?.code === 'number' ? error.code : error ? -1 : 0,
        stdout,
        stderr,
      });
    });
  });
}

let running: RunningServer;
let client: MagmaClient;
let report: HarnessReport;

beforeAll(async () => {
  running = await startBundledServer();
  client = createClient({ baseUrl: running.url });
  report = await runHarness({ client, runs: RUNS });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await running?.server.shutdown();
});

describe('the example harness against the bundled model', () => {
  it('asks the four classic checks at 224x168 and 672x504, in the trained phrasings, each RUNS times', async () => {
    const scene = await renderMarkedScene();
    const expected = classicQuestions(scene.description);
    expect(report.model.id).toBe(TINY_MODEL_ID);
    const types = ['describe', 'color', 'compare', 'spatial'];
    expect(report.checks.map((c) => c.type)).toEqual([...types, ...types]);
    expect(report.checks.map((c) => c.image)).toEqual([
      ...Array(4).fill('224x168'),
      ...Array(4).fill('672x504'),
    ]);
    expect(report.checks.map((c) => c.question)).toEqual(
      [...expected, ...expected].map((q) => q.question),
    );
    // The larger scene's marks are the scaled boxes, so the answers are the same.
    expect(report.checks.slice(4).map((c) => c.expected)).toEqual(
      report.checks.slice(0, 4).map((c) => c.expected),
    );
    for (const check of report.checks) {
      expect(check.answers).toHaveLength(RUNS);
      expect(check.latencyMs.samples).toHaveLength(RUNS);
      // Real round trips, each a positive time; with RUNS = 2 samples the nearest-rank p50 is
      // the faster one and p95 the slower one.
      for (const ms of check.latencyMs.samples) expect(ms).toBeGreaterThan(0);
      expect(check.latencyMs.p50).toBe(Math.min(...check.latencyMs.samples));
      expect(check.latencyMs.p95).toBe(Math.max(...check.latencyMs.samples));
    }
    expect(report.asserted).toBe(true);
  });

  it('gets all four answers right at both sizes with a tiny-model bundle that meets its accuracy target', () => {
    expect(report.checks.map((c) => c.answers)).toEqual(
      report.checks.map((c) => Array(RUNS).fill(c.expected)),
    );
    expect(report.checks.every((c) => c.passed === true)).toBe(true);
    expect(report.passed).toBe(true);
    expect(formatReport(report)).toContain('8/8 checks passed');
  });
});

describe('harness/run.ts, the command line', () => {
  it('prints the report as JSON and exits 0 unless an asserted check failed', async () => {
    const run = await runCli('--url', running.url, '--runs', '1', '--json');
    const printed = JSON.parse(run.stdout) as HarnessReport;
    expect(printed.checks.map((c) => c.answers.length)).toEqual(Array(8).fill(1));
    expect(printed.model.id).toBe(TINY_MODEL_ID);
    expect(run.code).toBe(printed.passed ? 0 : 1);
    expect(run.code).toBe(0);
  });

  it('exits 1 with a message when the server cannot be reached, 2 for bad options', async () => {
    const unreachable = await runCli('--url', 'http://127.0.0.1:1', '--runs', '1');
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(
      'harness: cannot check http://127.0.0.1:1: CONNECTION_ERROR',
    );
    const bad = await runCli('--runs', 'many');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--runs must be a whole number >= 1');
  }, 180_000); // two CLI processes, each compiling TypeScript at start-up: slow on a loaded machine
});

describe('what the harness expects', () => {
  it('computes the answers from the scene: #1 is the red circle, right of the blue square #2', async () => {
    const { description, marks } = await renderMarkedScene();
    expect(marks.map((m) => m.label)).toEqual([1, 2]);
    expect(classicQuestions(description).map((q) => q.answer)).toEqual([
      '#1 red circle, #2 blue square',
      'red',
      'no',
      '#2',
    ]);
  });

  it('is the scene of the quickstart image, with the boxes the quickstart marks', async () => {
    const { png, marks } = await renderMarkedScene();
    const asset = fileURLToPath(new URL('../assets/shapes.png', import.meta.url));
    const fresh = await sharp(png).raw().toBuffer();
    const shipped = await sharp(asset).raw().toBuffer();
    expect(shipped.equals(fresh)).toBe(true);
    expect(marks.map(({ x1, y1, x2, y2 }) => [x1, y1, x2, y2])).toEqual([
      [130, 50, 182, 102],
      [38, 66, 90, 118],
    ]);
  });

  it('asserts answers for every revision of the tiny model, and only for it', () => {
    expect(assertionPolicy({ id: TINY_MODEL_ID, revision: '2026-11-21.1' }).asserted).toBe(true);
    expect(assertionPolicy({ id: TINY_MODEL_ID, revision: 'random-0' }).asserted).toBe(true);
    expect(assertionPolicy({ id: 'microsoft/Magma-8B', revision: 'main' })).toMatchObject({
      asserted: false,
    });
  });

  it('reports nearest-rank percentiles', () => {
    const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(samples, 50)).toBe(5);
    expect(percentile(samples, 95)).toBe(10);
    expect(percentile([42], 95)).toBe(42);
  });
});
