/**
 * The example test harness from the command line:
 *   node --import tsx examples/harness/run.ts [--url URL] [--runs N] [--max-tokens N] [--api-key KEY] [--json]
 * Exit code 1 when an asserted check fails or the server cannot be asked; 2 for bad options.
 */
import { parseArgs } from 'node:util';
import { MagmaError, createClient } from '@magma-som/sdk';
import { formatReport } from './format-report.js';
import { runHarness } from './harness.js';

const USAGE = `Usage: run.ts [options]
  --url URL          server to check (env MAGMA_URL, default http://127.0.0.1:8080)
  --runs N           times each check is asked, for latency p50/p95 (env MAGMA_HARNESS_RUNS, default 5)
  --max-tokens N     new-token cap per answer (default 64)
  --api-key KEY      sent as a bearer token (env MAGMA_API_KEY)
  --json             print the report as JSON
  -h, --help         this text`;

function positiveInteger(name: string, value: string): number {
  if (!/^[1-9]\d*$/.test(value)) {
    throw new TypeError(`${name} must be a whole number >= 1, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function readOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: process.env.MAGMA_URL || 'http://127.0.0.1:8080' },
      runs: { type: 'string', default: process.env.MAGMA_HARNESS_RUNS || '5' },
      'max-tokens': { type: 'string', default: '64' },
      'api-key': { type: 'string', default: process.env.MAGMA_API_KEY || undefined },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (!URL.canParse(values.url)) {
    throw new TypeError(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  return {
    url: values.url,
    runs: positiveInteger('--runs', values.runs),
    maxTokens: positiveInteger('--max-tokens', values['max-tokens']),
    apiKey: values['api-key'],
    json: values.json,
    help: values.help,
  };
}

async function main(): Promise<number> {
  let options;
  try {
    options = readOptions();
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  await using client = createClient({ baseUrl: options.url, apiKey: options.apiKey });
  // A progress line on a terminal: a GPU run of many repetitions takes a while.
  const showProgress = !options.json && process.stderr.isTTY;
  try {
    const report = await runHarness({
      client,
      runs: options.runs,
      maxTokens: options.maxTokens,
      onAnswer: ({ type, run }) => {
        if (!showProgress) return;
        process.stderr.write(`\r\x1b[Kasked ${type} (run ${run}/${options.runs})`);
      },
    });
    if (showProgress) process.stderr.write('\r\x1b[K');
    console.log(options.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return report.passed ? 0 : 1;
  } catch (error) {
    const reason = error instanceof MagmaError ? `${error.code}: ${error.message}` : String(error);
    console.error(`harness: cannot check ${options.url}: ${reason}`);
    return 1;
  }
}

process.exitCode = await main();
