import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineOptions } from '../packages/server/src/engine/index.js';
import { rssMiB, statCpuMs } from './proc.js';
import type { FromServer, LoopDelay, ToServer } from './protocol.js';

// The benchmark's handle on a server child process: start it, read its RSS and event-loop
// delay, stop it.

export type BatchingOptions = Pick<
  EngineOptions,
  'maxBatchSize' | 'prefillPolicy' | 'maxPrefillTokens'
>;

export interface ServerOptions {
  readonly batching: BatchingOptions;
  /** Extra MAGMA_* variables (they override the benchmark's defaults). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The server as users get it: the built package (dist/, what `magma-som-server` runs), its own
   * engine from its config (batching ignored) and none of the benchmark's settings (rate limit,
   * concurrency, queue, log level) but address and port. Otherwise the sources, through tsx.
   */
  readonly shippedDefaults?: boolean;
}

const ENTRY = fileURLToPath(new URL('./server-process.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Newest modification time of the files under `dir`, in ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile())
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Warns when the build looks older than its sources (`npm run bench` builds first). A warning,
 * not a refusal: Nx can leave matching outputs as they are, with their old times.
 */
function warnIfBuildIsStale(): void {
  for (const pkg of ['server', 'schemas']) {
    const dist = join(ROOT, 'packages', pkg, 'dist');
    let built: number;
    try {
      built = statSync(join(dist, 'index.js')).mtimeMs;
    } catch {
      throw new Error(`packages/${pkg} is not built: run \`npm run build\` (npm run bench does)`);
    }
    if (newestMtime(join(ROOT, 'packages', pkg, 'src')) > built) {
      console.warn(
        `!!!!! packages/${pkg}/dist is older than its sources: the shipped-defaults server runs the build; run \`npm run build\` (npm run bench does) !!!!!`,
      );
    }
  }
}

/** Server settings of every run: no rate limit, room for the highest concurrency, quiet logs. */
const BENCH_ENV: Readonly<Record<string, string>> = {
  MAGMA_HOST: '127.0.0.1',
  MAGMA_PORT: '0',
  MAGMA_RATE_LIMIT_MAX: '0',
  MAGMA_MAX_CONCURRENCY: '64',
  MAGMA_QUEUE_SIZE: '256',
  MAGMA_LOG_LEVEL: 'warn',
};

export class ServerHandle {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(options: ServerOptions): Promise<ServerHandle> {
    if (options.shippedDefaults) warnIfBuildIsStale();
    const child = fork(ENTRY, [], {
      // BENCH_SERVER_NODE_ARGS adds node flags to the server, e.g. "--cpu-prof --cpu-prof-dir=prof"
      execArgv: [
        ...(options.shippedDefaults ? [] : ['--conditions=@magma-som/source']),
        '--import',
        'tsx',
        '--expose-gc',
        ...(process.env['BENCH_SERVER_NODE_ARGS']?.split(' ').filter(Boolean) ?? []),
      ],
      env: {
        ...process.env,
        ...(options.shippedDefaults
          ? { MAGMA_HOST: BENCH_ENV['MAGMA_HOST'], MAGMA_PORT: '0', BENCH_SHIPPED_DEFAULTS: '1' }
          : BENCH_ENV),
        ...options.env,
        BENCH_ENGINE_OPTIONS: JSON.stringify(options.batching),
      },
      // shipped defaults log every request at info level: kept (users pay for it), not shown
      stdio: ['ignore', options.shippedDefaults ? 'ignore' : 'inherit', 'inherit', 'ipc'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) =>
        reject(new Error(`server exited with code ${code} while starting`)),
      );
      child.once('message', (message: FromServer) => {
        if (message.type === 'ready') resolve(message.url);
        else if (message.type === 'failed') reject(new Error(`server failed: ${message.message}`));
      });
    });
    child.removeAllListeners('exit');
    return new ServerHandle(child, url);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resident set size of the whole server process (main thread, engine worker, native memory), in MiB. */
  rssMiB(): number {
    return rssMiB(this.pid);
  }

  /**
   * CPU time the server's live threads have used so far, in ms (user + system, from /proc): its
   * main thread, and everything else (engine worker, onnxruntime pools, libvips and libuv
   * threads, GC helpers).
   */
  cpuMs(): { main: number; other: number } {
    let main = 0;
    let other = 0;
    for (const tid of readdirSync(`/proc/${this.pid}/task`)) {
      let ms: number;
      try {
        ms = statCpuMs(`/proc/${this.pid}/task/${tid}/stat`);
      } catch {
        continue; // the thread ended meanwhile
      }
      if (Number(tid) === this.pid) main += ms;
      else other += ms;
    }
    return { main, other };
  }

  resetLoopDelay(): void {
    this.post({ type: 'loop-reset' });
  }

  readLoopDelay(): Promise<LoopDelay> {
    return this.request({ type: 'loop-read' }, 'loop').then(
      (m) => (m as { delay: LoopDelay }).delay,
    );
  }

  /** A full garbage collection in the server's main thread, so RSS readings compare like with like. */
  async collectGarbage(): Promise<void> {
    await this.request({ type: 'gc' }, 'gc-done');
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.post({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }

  private post(message: ToServer): void {
    this.child.send(message);
  }

  private request(message: ToServer, reply: FromServer['type']): Promise<FromServer> {
    return new Promise((resolve) => {
      const onMessage = (m: FromServer): void => {
        if (m.type !== reply) return;
        this.child.off('message', onMessage);
        resolve(m);
      };
      this.child.on('message', onMessage);
      this.post(message);
    });
  }
}
