import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { rssMiB, statCpuMs } from './proc.js';

// The benchmark's handle on the seed-style Python baseline (bench/baseline/server.py): a child
// process with FastAPI + uvicorn (one worker) + PyTorch, tuned as such a server would be
// deployed: one BLAS/OpenMP thread per call (requests run in FastAPI's thread pool), and glibc's
// mmap and trim thresholds raised so large image buffers are reused instead of mapped and
// unmapped per request.

const PYTHON = process.env['BENCH_PYTHON'] ?? '/usr/bin/python3';
const SERVER = fileURLToPath(new URL('./baseline/server.py', import.meta.url));
const SETUP = 'bash bench/baseline/setup.sh';
const SETUP_SCRIPT = fileURLToPath(new URL('./baseline/setup.sh', import.meta.url));

export const BASELINE_ENV: Readonly<Record<string, string>> = {
  OPENBLAS_NUM_THREADS: '1',
  OMP_NUM_THREADS: '1',
  MKL_NUM_THREADS: '1',
  BASELINE_TORCH_THREADS: process.env['BASELINE_TORCH_THREADS'] ?? '1',
  MALLOC_MMAP_THRESHOLD_: String(32 * 2 ** 20), // glibc's largest allowed value
  MALLOC_TRIM_THRESHOLD_: String(512 * 2 ** 20),
};

/** What the baseline's Python lacks (setup.sh --check: its modules, and torch on OpenBLAS), or undefined. */
function missingPackages(): string | undefined {
  try {
    execFileSync('bash', [SETUP_SCRIPT, '--check'], {
      stdio: 'pipe',
      env: { ...process.env, PYTHON },
    });
    return undefined;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return stderr ? stderr.split('\n').join('; ') : 'the check failed';
  }
}

/**
 * Checks that the baseline's Debian Python packages are there, torch on OpenBLAS (on the
 * reference BLAS the baseline would be measured far slower than it runs deployed); as root,
 * installs what is missing with bench/baseline/setup.sh, otherwise throws with that command.
 */
export function checkBaselinePython(): void {
  let missing = missingPackages();
  if (missing !== undefined && process.getuid?.() === 0) {
    console.log(`[bench] the Python baseline needs packages (${missing}): running ${SETUP}`);
    execFileSync('bash', [SETUP_SCRIPT], { stdio: 'inherit', env: { ...process.env, PYTHON } });
    missing = missingPackages();
  }
  if (missing !== undefined) {
    throw new Error(
      `the Python baseline needs ${PYTHON} with its packages (${missing}); install them with \`${SETUP}\` (Debian, as root)`,
    );
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class BaselineServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(modelDir: string): Promise<BaselineServer> {
    const port = await freePort();
    const child = spawn(PYTHON, [SERVER, '--model-dir', modelDir, '--port', String(port)], {
      env: { ...process.env, ...BASELINE_ENV },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const url = `http://127.0.0.1:${port}`;
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = performance.now() + 120_000;
    for (;;) {
      if (exited) throw new Error('the Python baseline exited while starting');
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch {
        // not listening yet
      }
      if (performance.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error('the Python baseline did not start within 120 s');
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return new BaselineServer(child, url);
  }

  get pid(): number {
    return this.child.pid!;
  }

  rssMiB(): number {
    return rssMiB(this.pid);
  }

  /** CPU time of the whole process (all threads), user + system, in ms. */
  cpuMs(): number {
    return statCpuMs(`/proc/${this.pid}/stat`);
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
