import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';

// Where and on what a run happened, recorded beside its numbers.

const require = createRequire(import.meta.url);

function gitCommit(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} (uncommitted changes)` : head;
  } catch {
    return undefined;
  }
}

export function describeMachine(modelDir: string) {
  const model = JSON.parse(readFileSync(`${modelDir}/config.json`, 'utf8')) as {
    name: string;
    revision: string;
  };
  const ort = require('onnxruntime-node/package.json') as { version: string };
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    onnxruntimeNode: ort.version,
    executionProvider: process.env['MAGMA_EXECUTION_PROVIDER'] ?? 'cpu',
    model: `${model.name} (revision ${model.revision})`,
  };
}
