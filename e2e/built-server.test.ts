import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModelNotReadyError, createClient } from '@magma-som/sdk';
import type { AskResponse, AskStreamEvent, MagmaClient } from '@magma-som/sdk';
import { AskResponseSchema, HealthSchema, ReadinessSchema } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHarness } from '../examples/harness/harness.js';
import { renderMarkedScene } from '../examples/harness/scene.js';

// What users run, after `npm run build`: the server's built CLI started as a child process
// (`node packages/server/dist/cli.js`, and the package's `bin` through `npx --no-install`), asked
// through the built SDK (dist/, not the TypeScript sources), then stopped with SIGTERM while a
// request is in flight. The bundled model is being retrained, so answers are checked as the
// example harness checks them, and otherwise for form only.

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('../packages/server/dist/cli.js', import.meta.url));

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  /** The exit code, or the signal's name, whenever the process ends. */
  readonly exited: Promise<number | string>;
  /** Resolves when every process holding its stdout and stderr (its children too) has ended. */
  readonly outputClosed: Promise<void>;
  /** What the process printed, for failure messages. */
  output(): string;
}

/** `group`: in a process group of its own, to be signalled as a whole as a terminal does. */
function start(command: string, args: string[], port: number, group = false): Started {
  const child = spawn(command, args, {
    cwd: root,
    detached: group,
    env: {
      ...process.env,
      MAGMA_PORT: String(port),
      MAGMA_HOST: '127.0.0.1',
      MAGMA_LOG_LEVEL: 'warn',
      // Two shared cores on the test machine.
      MAGMA_INTRA_OP_THREADS: '1',
      MAGMA_INTER_OP_THREADS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (error) => resolve(error.message));
  });
  const outputClosed = Promise.all(
    [child.stdout!, child.stderr!].map((stream) => new Promise((r) => stream.once('close', r))),
  ).then(() => undefined);
  return { child, url: `http://127.0.0.1:${port}`, exited, outputClosed, output: () => output };
}

/** Polls /ready until 200; fails as soon as the process exits. */
async function waitUntilReady(server: Started, timeoutMs: number): Promise<void> {
  let exit: number | string | undefined;
  void server.exited.then((code) => (exit = code));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exit !== undefined) throw new Error(`exited (${exit}) before ready:\n${server.output()}`);
    const response = await fetch(`${server.url}/ready`).catch(() => undefined);
    if (response?.status === 200) return;
    await response?.body?.cancel();
    await sleep(250);
  }
  throw new Error(`not ready after ${timeoutMs / 1000} s:\n${server.output()}`);
}

/** A well-formed answer, whatever the model says. */
function expectWellFormed(response: AskResponse): void {
  expect(() => AskResponseSchema.parse(response)).not.toThrow();
  expect(response.model.id).toBe('magma-tiny-som');
  expect(response.usage.completionTokens).toBeGreaterThan(0);
  expect(response.usage.totalTokens).toBe(
    response.usage.promptTokens + response.usage.completionTokens,
  );
  expect(['stop', 'length']).toContain(response.finishReason);
  for (const ref of response.references) {
    expect(response.answer.slice(ref.offset, ref.offset + ref.text.length)).toBe(ref.text);
  }
}

it('the SDK and schemas these tests import are the built ones', () => {
  const require = createRequire(import.meta.url);
  // Node resolves the SDK to its Node entry (the "node" condition), schemas to its index.
  expect(require.resolve('@magma-som/sdk')).toMatch(/\/sdk\/dist\/node\.cjs$/);
  expect(require.resolve('@magma-som/schemas')).toMatch(/\/schemas\/dist\/index\.cjs$/);
  expect(existsSync(cli)).toBe(true);
});

interface Way {
  readonly launch: (port: number) => Started;
  /** Sends SIGTERM the way this kind of start gets it. */
  readonly terminate: (server: Started) => void;
  /** What the started process exits with after a clean drain. */
  readonly cleanExit: readonly (number | string)[];
}

const WAYS: Record<string, Way> = {
  // As a process manager runs it: SIGTERM to the server's own PID, which exits 0.
  'node packages/server/dist/cli.js': {
    launch: (port) => start(process.execPath, [cli], port),
    terminate: (server) => server.child.kill('SIGTERM'),
    cleanExit: [0],
  },
  // As a user in a terminal runs it: npx runs the bin through `sh -c`, and Ctrl-C or a stop
  // signals the whole process group. npm then exits with the signal its shell died of (it
  // re-raises it), or 0; that the server itself drained and ended is checked by its output
  // pipes closing and the requests being answered. (SIGTERM to npx's PID alone kills only its
  // shell and leaves the server running: users' process managers must signal the group.)
  'npx --no-install magma-som-server --port': {
    // The flag wins over MAGMA_PORT: both say the same port here.
    launch: (port) =>
      start('npx', ['--no-install', 'magma-som-server', '--port', String(port)], port, true),
    terminate: (server) => process.kill(-server.child.pid!, 'SIGTERM'),
    cleanExit: [0, 'SIGTERM'],
  },
};

describe.each(Object.entries(WAYS))('%s', (_name, { launch, terminate, cleanExit }) => {
  let server: Started;
  let client: MagmaClient;
  let scene: Awaited<ReturnType<typeof renderMarkedScene>>;

  beforeAll(async () => {
    server = launch(await freePort());
    scene = await renderMarkedScene();
    await waitUntilReady(server, 300_000);
    client = createClient({ baseUrl: server.url, timeoutMs: 60_000 });
  });

  afterAll(async () => {
    await client?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
    }
    // A server left behind by a failed test (its group, for npx) must not outlive the run.
    if (server?.child.spawnargs.includes('--no-install')) {
      try {
        process.kill(-server.child.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    }
  });

  it('answers /health and /ready like a probe expects', async () => {
    const health = HealthSchema.parse(await (await fetch(`${server.url}/health`)).json());
    expect(health.status).toBe('ok');
    const ready = await fetch(`${server.url}/ready`);
    expect(ready.status).toBe(200);
    const readiness = ReadinessSchema.parse(await ready.json());
    expect(readiness).toMatchObject({
      ready: true,
      modelLoaded: true,
      warm: true,
      shuttingDown: false,
    });
    // The bundle's graphs and their bytes, as the memory accounting reports them.
    expect(readiness.memory?.graphs.map((g) => g.graph).sort()).toEqual([
      'decoder_model_merged',
      'embed_tokens',
      'vision_encoder',
    ]);
  });

  it('passes the example harness through the built SDK', async () => {
    const report = await runHarness({ client, runs: 1 });
    expect(report.model.id).toBe('magma-tiny-som');
    expect(report.checks.length).toBeGreaterThan(0);
    for (const check of report.checks) expect(check.answers).toHaveLength(1);
    expect(report.passed).toBe(true);
  });

  it('answers ask and askStream well-formed, the stream adding up to its answer', async () => {
    const question = {
      image: scene.png,
      marks: scene.marks,
      prompt: 'Describe the marked objects.',
    };
    expectWellFormed(await client.ask(question));
    const events: AskStreamEvent[] = [];
    for await (const event of client.askStream(question)) events.push(event);
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    if (done.type !== 'done') return;
    expectWellFormed(done.response);
    const text = events.map((e) => (e.type === 'token' ? e.text : '')).join('');
    expect(text.trim()).toBe(done.response.answer);
  });

  it('on SIGTERM answers the requests in flight, refuses new ones, and exits 0', async () => {
    const question = {
      image: scene.png,
      marks: scene.marks,
      prompt: 'Describe the marked objects.',
    };
    // One streamed answer under way (its first token has arrived) and a few more asks admitted.
    const stream = client.askStream(question);
    const first = await stream.next();
    expect(first.done).toBe(false);
    // Larger images (more crops) keep the drain busy long enough to watch it. Each ask's marks
    // are numbered its own way, so each is a marked image no ask before it sent: one the engine
    // already held (the harness asks about this scene at this size) is answered from its
    // prefix in a few ms, and all five could end before the poll below saw three.
    const scenes = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => renderMarkedScene(undefined, [10 * n + 1, 10 * n + 2], 3)),
    );
    const asks = scenes.map((large) =>
      client.ask({ ...question, image: large.png, marks: large.marks }, { maxRetries: 0 }),
    );
    const settled = Promise.allSettled(asks);
    await waitForInFlight(server.url, 3, settled);

    terminate(server);
    // While it drains: /ready says so, and new calls get a typed, retryable 503.
    for (;;) {
      const ready = await fetch(`${server.url}/ready`);
      const body = ReadinessSchema.parse(await ready.json());
      if (body.shuttingDown) {
        expect(ready.status).toBe(503);
        break;
      }
      await sleep(10);
    }
    const late = await fetch(`${server.url}/trpc/info`);
    expect(late.status).toBe(503);
    expect(((await late.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'MODEL_NOT_READY',
    );
    const events: AskStreamEvent[] = [first.value as AskStreamEvent];
    for await (const event of { [Symbol.asyncIterator]: () => stream }) events.push(event);
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    if (done.type === 'done') expectWellFormed(done.response);
    // Every ask the server had taken is answered. One that reached it only after SIGTERM (the
    // client sends five at once, the poll above returns at three) is a new call: refused with
    // the typed, retryable 503.
    const outcomes = await settled;
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') expectWellFormed(outcome.value);
      else expect(outcome.reason).toBeInstanceOf(ModelNotReadyError);
    }
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBeGreaterThanOrEqual(2);

    expect(cleanExit, server.output()).toContain(await server.exited);
    await server.outputClosed;
    // Gone: nothing listens any more.
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });
});

/**
 * Waits until /metrics counts at least `count` requests queued or running. Fails, instead of
 * polling forever, if the asks all end first or 30 s pass.
 */
async function waitForInFlight(
  url: string,
  count: number,
  asksEnded: Promise<unknown>,
): Promise<void> {
  let ended = false;
  void asksEnded.then(() => (ended = true));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (ended || Date.now() > deadline) {
      throw new Error(
        `never saw ${count} requests in flight (${ended ? 'the asks had all ended' : 'after 30 s'})`,
      );
    }
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (name: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${name} `))
          ?.split(' ')[1] ?? 0,
      );
    if (value('magma_in_flight') + value('magma_queue_depth') >= count) return;
    await sleep(20);
  }
}
