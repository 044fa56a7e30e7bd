import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MODEL_DIR } from './helpers.js';

// The magma-som-server command as an operator runs it: a real process, real signals.

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(packageDir, 'src', 'cli.ts');

interface Run {
  readonly lines: string[];
  readonly stderr: string[];
  readonly exit: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

function runCli(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: packageDir,
    env: { ...process.env, MAGMA_MODEL_DIR: MODEL_DIR, MAGMA_INTRA_OP_THREADS: '1', ...env },
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  let notify: () => void = () => {};
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter(Boolean));
    notify();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    lines,
    stderr,
    exit,
    kill: (signal) => child.kill(signal),
    async waitFor(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.find((l) => pattern.test(l));
        if (line) return line;
        if (Date.now() > deadline)
          throw new Error(`no line matching ${pattern}:\n${lines.join('\n')}`);
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

describe('magma-som-server', () => {
  it('starts, logs its URL, becomes ready, and exits 0 on SIGTERM', async () => {
    const run = runCli(['--port', '0', '--log-level', 'info'], { MAGMA_PORT: '1' });
    const listening = JSON.parse(await run.waitFor(/listening on/)) as { url: string };
    expect(listening.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await run.waitFor(/"msg":"ready"/);
    // The start-up log names the image path's native parts (built by npm test's pretest).
    const decoders = JSON.parse(await run.waitFor(/"msg":"image decoders"/)) as object;
    expect(decoders).toMatchObject({ jpeg: 'libjpeg', png: 'libpng', resize: 'native' });
    const ready = await fetch(`${listening.url}/ready`, {
      headers: { 'x-request-id': 'cli-probe' },
    });
    expect(ready.status).toBe(200);
    // One access-log line per request, when it ends: its id, the request, the status, the time.
    const access = JSON.parse(
      await run.waitFor(/"requestId":"cli-probe".*request completed/),
    ) as Record<string, unknown>;
    expect(access).toMatchObject({
      req: { method: 'GET', url: '/ready' },
      res: { statusCode: 200 },
    });
    expect(access['responseTime']).toBeGreaterThan(0);
    expect(run.lines.some((l) => l.includes('"msg":"incoming request"'))).toBe(false);

    run.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.lines.some((l) => l.includes('shutdown complete'))).toBe(true);
  }, 90_000);

  it('refuses a bad setting, naming it, with exit code 2', async () => {
    const run = runCli([], { MAGMA_MAX_CONCURRENCY: 'lots' });
    expect(await run.exit).toBe(2);
    expect(run.stderr.join('')).toContain('MAGMA_MAX_CONCURRENCY="lots" is invalid');
  }, 30_000);

  it('prints usage for --help', async () => {
    const run = runCli(['--help']);
    expect(await run.exit).toBe(0);
    expect(run.lines.join('\n')).toContain('--model-dir');
  }, 30_000);
});
