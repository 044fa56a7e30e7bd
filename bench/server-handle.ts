import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EngineOptions } from '../packages/server/src/engine/index.js';
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
   * The server as users get it: its own engine from its config (batching ignored) and none of
   * the benchmark's settings (rate limit, concurrency, queue, log level) but address and port.
   */
  readonly shippedDefaults?: boolean;
}

/** USER_HZ: the unit of CPU times in /proc on Linux. */
const CLOCK_TICKS_PER_SECOND = 100;

const ENTRY = fileURLToPath(new URL('./server-process.ts', import.meta.url));

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
    const child = fork(ENTRY, [], {
      // BENCH_SERVER_NODE_ARGS adds node flags to the server, e.g. "--cpu-prof --cpu-prof-dir=prof"
      execArgv: [
        '--conditions=@magma-som/source',
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
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
    return kb / 1024;
  }

  /**
   * CPU time the server has used so far, in ms (user + system, from /proc): its main thread, and
   * everything else (engine worker, onnxruntime pools, libvips and libuv threads, GC helpers).
   */
  cpuMs(): { main: number; other: number } {
    const ticksToMs = 1000 / CLOCK_TICKS_PER_SECOND;
    let main = 0;
    let other = 0;
    for (const tid of readdirSync(`/proc/${this.pid}/task`)) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${this.pid}/task/${tid}/stat`, 'utf8');
      } catch {
        continue; // the thread ended meanwhile
      }
      // fields after the parenthesised command: state is field 3, utime 14, stime 15
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * ticksToMs;
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
