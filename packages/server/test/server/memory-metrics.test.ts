import { spawn } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReadinessSchema, ServerInfoSchema } from '@magma-som/schemas';
import { afterAll, describe, expect, it } from 'vitest';
import { parseNvidiaSmi } from '../../src/metrics/gpu-memory.js';
import { MODEL_DIR } from './helpers.js';

// The server as an operator runs it (a real process on a real port, the real tiny model):
// memory accounting in /ready and info, the start-up refusal over MAGMA_MEMORY_BUDGET_BYTES, and
// GPU memory in /metrics. The GPU is the one thing faked: a stand-in `nvidia-smi` on PATH that
// prints what the real one prints for --query-gpu=memory.used,memory.total.

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(packageDir, 'src', 'cli.ts');
const MIB = 1024 * 1024;

interface Run {
  readonly output: () => string;
  readonly exit: Promise<number | null>;
  kill(): void;
  url(): Promise<string>;
}

function runServer(env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--port', '0'], {
    cwd: packageDir,
    env: {
      ...process.env,
      MAGMA_MODEL_DIR: MODEL_DIR,
      MAGMA_INTRA_OP_THREADS: '1',
      MAGMA_LOG_LEVEL: 'info',
      ...env,
    },
  });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    output: () => text,
    exit,
    kill: () => child.kill('SIGTERM'),
    async url() {
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        const ready = text.split('\n').find((l) => l.includes('"msg":"ready"'));
        if (ready !== undefined) return (JSON.parse(ready) as { url: string }).url;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`server not ready:\n${text}`);
    },
  };
}

const temp = mkdtempSync(join(tmpdir(), 'magma-gpu-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** A folder with a stand-in nvidia-smi (two GPUs) that also records its arguments. */
function fakeNvidiaSmi(): string {
  const bin = join(temp, 'bin');
  const script = join(bin, 'nvidia-smi');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    script,
    `#!/bin/sh\necho "$@" > ${JSON.stringify(join(temp, 'args'))}\nprintf '1234, 81559\\n17, 24564\\n'\n`,
  );
  chmodSync(script, 0o755);
  return bin;
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('memory accounting and GPU memory, on a real server', () => {
  it('parses nvidia-smi csv (one line per GPU, MiB)', () => {
    expect(parseNvidiaSmi('1234, 81559\n17, 24564\n\n[N/A], 1\n')).toEqual([
      { usedBytes: 1234 * MIB, totalBytes: 81559 * MIB },
      { usedBytes: 17 * MIB, totalBytes: 24564 * MIB },
    ]);
  });

  it('reports bytes per graph in /ready and info, and GPU memory from nvidia-smi in /metrics', async () => {
    const bin = fakeNvidiaSmi();
    const run = runServer({
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      MAGMA_GPU_METRICS_INTERVAL_MS: '200',
      MAGMA_MAX_BATCH_SIZE: '3',
    });
    try {
      const url = await run.url();
      const ready = ReadinessSchema.parse(await (await fetch(`${url}/ready`)).json());
      const memory = ready.memory!;
      expect(memory.graphs.map((g) => `${g.graph}:${g.dtype}`)).toEqual([
        'vision_encoder:fp32',
        'embed_tokens:fp32',
        'decoder_model_merged:fp32',
      ]);
      for (const g of memory.graphs)
        expect(g.bytes).toBe(statSync(join(MODEL_DIR, 'onnx', g.file)).size);
      expect(memory).toMatchObject({ kvBytesPerToken: 2048, kvElementBytes: 4, maxBatchSize: 3 });

      const info = ServerInfoSchema.parse(
        ((await (await fetch(`${url}/trpc/info`)).json()) as { result: { data: unknown } }).result
          .data,
      );
      expect(info.model.dtype).toBe('fp32');
      expect(info.model.memory).toEqual(memory);

      let text = '';
      for (let i = 0; i < 50 && !text.includes('magma_gpu_memory_total_bytes{gpu="1"}'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        text = await metricsText(url);
      }
      expect(text).toContain(`magma_gpu_memory_used_bytes{gpu="0"} ${1234 * MIB}`);
      expect(text).toContain(`magma_gpu_memory_total_bytes{gpu="0"} ${81559 * MIB}`);
      expect(text).toContain(`magma_gpu_memory_used_bytes{gpu="1"} ${17 * MIB}`);
      expect(readFileSync(join(temp, 'args'), 'utf8').trim()).toBe(
        '--query-gpu=memory.used,memory.total --format=csv,noheader,nounits',
      );
    } finally {
      run.kill();
      await run.exit;
    }
  }, 120_000);

  it('exports no GPU series where nvidia-smi is absent', async () => {
    // PATH without any nvidia-smi: the node binary is spawned by path, so nothing else is needed.
    const run = runServer({ PATH: join(temp, 'empty'), MAGMA_GPU_METRICS_INTERVAL_MS: '200' });
    try {
      const url = await run.url();
      await new Promise((r) => setTimeout(r, 500));
      const text = await metricsText(url);
      expect(text).toContain('magma_ready 1');
      expect(text).not.toMatch(/^magma_gpu_memory_used_bytes\{/m);
    } finally {
      run.kill();
      await run.exit;
    }
  }, 120_000);

  it('refuses to start when weights + batch x context x KV exceed MAGMA_MEMORY_BUDGET_BYTES', async () => {
    const run = runServer({ MAGMA_MEMORY_BUDGET_BYTES: '6000000', MAGMA_MAX_BATCH_SIZE: '4' });
    expect(await run.exit).toBe(1);
    const output = run.output();
    expect(output).toContain('MEMORY_BUDGET_EXCEEDED');
    expect(output).toMatch(
      /memory budget exceeded: weights \d+ bytes \+ KV cache 4 sequences x 1024 tokens x 2048 bytes per token \(8388608 bytes\) = \d+ bytes > MAGMA_MEMORY_BUDGET_BYTES 6000000/,
    );
  }, 120_000);
});
