import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBaselinePython } from './baseline-server.js';
import type { BenchContext } from './context.js';
import { baseline } from './sections/baseline.js';
import { batch } from './sections/batch.js';
import { describeMachine } from './machine.js';
import { decode } from './sections/decode.js';
import { eventLoop } from './sections/eventloop.js';
import { largeImages } from './sections/large-images.js';
import { memory } from './sections/memory.js';
import { overhead } from './sections/overhead.js';
import { prefix } from './sections/prefix.js';
import { stream } from './sections/stream.js';
import { throughput } from './sections/throughput.js';
import { USAGE, parseSettings } from './settings.js';
import { renderSummary } from './summary.js';
import type { SectionName } from './settings.js';
import { createWorkload } from './workload.js';

// `npm run bench -- [--quick] [--only a,b] ...`: runs the benchmark sections against real server
// child processes, writes every number to bench-results/bench-<date>.json and prints a summary.

const SECTION_RUNNERS: Record<SectionName, (context: BenchContext) => Promise<unknown>> = {
  overhead,
  stream,
  throughput,
  eventloop: eventLoop,
  decode,
  memory,
  prefix,
  largeimages: largeImages,
  baseline,
  batch,
};

const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  if (settings === 'help') {
    console.log(USAGE);
    return;
  }
  const modelDir = resolve(
    process.env['MAGMA_MODEL_DIR'] ?? join(ROOT, 'models', 'magma-tiny-som'),
  );
  process.env['MAGMA_MODEL_DIR'] = modelDir;
  // before any section runs, so a missing Python package does not cost a whole run's numbers
  if (settings.sections.includes('baseline')) checkBaselinePython();
  const log = (message: string): void =>
    console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
  const context: BenchContext = { settings, workload: await createWorkload(), log };
  const report: Record<string, unknown> = {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: describeMachine(modelDir),
    settings: { ...settings, pointRequests: settings.concurrency.map(settings.pointRequests) },
    results: {},
  };
  const results = report['results'] as Record<string, unknown>;
  const started = performance.now();
  for (const name of settings.sections) {
    log(`section ${name}`);
    const sectionStarted = performance.now();
    results[name] = await SECTION_RUNNERS[name](context);
    log(`section ${name} took ${((performance.now() - sectionStarted) / 1000).toFixed(0)} s`);
  }
  report['durationSeconds'] = Math.round((performance.now() - started) / 1000);

  const outDir = resolve(ROOT, settings.outDir);
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replaceAll(':', '-').slice(0, 19);
  const file = join(outDir, `bench-${stamp}${settings.quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${file} (${report['durationSeconds']} s)`);
  console.log(`\n${renderSummary(report as Parameters<typeof renderSummary>[0])}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
