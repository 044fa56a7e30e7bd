import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A port nobody listens on right now, picked by the OS. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) =>
    probe.once('error', reject).listen(0, '127.0.0.1', resolve),
  );
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (address === null || typeof address === 'string') {
    throw new Error('could not pick a free port');
  }
  return address.port;
}

/** A server (normally packages/server/dist/cli.js) running as a child node process. */
export class ServerProcess {
  readonly url: string;
  readonly #child: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends, whenever that is. */
  readonly exited: Promise<number | string>;

  /** `nodeArgs`: what node runs, e.g. [cliPath]. The server is told its port by MAGMA_PORT. */
  constructor(nodeArgs: readonly string[], port: number, env: NodeJS.ProcessEnv = process.env) {
    this.url = `http://127.0.0.1:${port}`;
    this.#child = spawn(process.execPath, nodeArgs, {
      env: { ...env, MAGMA_HOST: '127.0.0.1', MAGMA_PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      this.#child.once('error', (error) => resolve(error.message));
    });
  }

  /**
   * Polls GET /ready until it answers 200. Fails fast if the process exits, and after
   * `timeoutMs` with the last reason the server gave.
   */
  async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastState = 'no answer yet';
    let exit: number | string | undefined;
    void this.exited.then((code) => (exit = code));
    while (Date.now() < deadline) {
      if (exit !== undefined) {
        throw new Error(`the server exited (${exit}) before it was ready; its log is above`);
      }
      try {
        const response = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) return;
        const body = (await response.json().catch(() => ({}))) as { reason?: string };
        lastState = `HTTP ${response.status}${body.reason ? `: ${body.reason}` : ''}`;
      } catch (error) {
        const { cause, message } = error as Error;
        lastState = `not answering (${cause instanceof Error ? cause.message : message})`;
      }
      await sleep(250);
    }
    throw new Error(
      `the server at ${this.url} was not ready after ${timeoutMs / 1000} s (${lastState})`,
    );
  }

  /** SIGTERM (the server drains and exits), then waits; SIGKILL if it hangs. Resolves with the exit code. */
  async stop(graceMs = 15_000): Promise<number | string> {
    const running = this.#child.exitCode === null && this.#child.signalCode === null;
    if (running) this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
