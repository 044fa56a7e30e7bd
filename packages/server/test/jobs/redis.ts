import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A redis-server of the test's own on a free port, in a temporary folder. */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /**
   * Kills the server with SIGKILL (no shutdown save) and starts it again on the same port and
   * folder; with persistence it comes back with what its append-only file holds.
   */
  restart(): Promise<void>;
}

export interface RedisOptions {
  /**
   * Off (default): no RDB snapshots, no AOF, nothing written to disk. On: the append-only file
   * with an fsync per write, so a killed server loses nothing it acknowledged.
   */
  readonly persistent?: boolean;
}

const START_TIMEOUT_MS = 15_000;

/**
 * Starts Debian's redis-server on a free local port in a temporary folder and resolves once it
 * accepts connections. `.ci/run` and the README's set-up install redis-server when it is missing.
 */
export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  // Another process may take the free port between the check and the start: try again.
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'magma-redis-'));
    try {
      return await startOn(await freePort(), dir, options);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      if (attempt >= 3 || !String(error).includes('Address already in use')) throw error;
    }
  }
}

async function startOn(port: number, dir: string, options: RedisOptions): Promise<TestRedis> {
  let server = await spawnRedis(port, dir, options);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await server.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await server.kill('SIGKILL');
      server = await spawnRedis(port, dir, options);
    },
  };
}

interface RedisProcess {
  kill(signal: NodeJS.Signals): Promise<void>;
}

async function spawnRedis(port: number, dir: string, options: RedisOptions): Promise<RedisProcess> {
  const persistence = options.persistent
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    : ['--appendonly', 'no', '--save', ''];
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      ...persistence,
      '--dir',
      dir,
      '--loglevel',
      'notice',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start in ${START_TIMEOUT_MS} ms:\n${output}`)),
        START_TIMEOUT_MS,
      );
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(
          new Error(
            `cannot run redis-server (${error.message}); install it: apt-get install -y redis-server`,
          ),
        );
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  return {
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
