import { Server as NetServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { WorkQueue } from '../queue/work-queue.js';
import type { ServerState } from './server-state.js';

/** After the grace period, how long aborted work gets to send its errors. */
const ABORT_SETTLE_MS = 2_000;
/** How long closing the listener may take before shutdown moves on. */
const CLOSE_TIMEOUT_MS = 5_000;
/**
 * After the listener stops accepting, how long open connections get to send what they were
 * already sending (each is answered 503 + Connection: close) before idle ones are closed.
 */
const DRAIN_MS = 1_000;
const DRAIN_POLL_MS = 25;
/**
 * Before the listener closes, it keeps answering (503 + Connection: close) until no new
 * connection or request has come for QUIET_MS, at most QUIET_MAX_MS: closing a listener resets
 * the connections still waiting in its accept backlog, so clients are told first and the
 * listener closes once they have stopped coming.
 */
const QUIET_MS = 150;
const QUIET_MAX_MS = 3_000;

export interface ShutdownDeps {
  readonly app: FastifyInstance;
  readonly state: ServerState;
  readonly queue: WorkQueue;
  readonly graceMs: number;
  /** Closes the engine if the server owns it. */
  readonly closeEngine: () => Promise<void>;
}

/**
 * Graceful shutdown. /ready turns 503 and new asks are refused (MODEL_NOT_READY) while the
 * listener stays up, so load balancers see it and clients get a typed, retryable answer.
 * Queued and running asks get `graceMs` to finish; whatever is left then fails with
 * MODEL_NOT_READY. Then the listener stops accepting, open connections drain (late requests on
 * them get 503 + Connection: close), Fastify closes, and the engine after it.
 */
export async function shutDownGracefully(deps: ShutdownDeps): Promise<void> {
  const { app, state, queue } = deps;
  state.beginShutdown();
  app.log.info(
    { queued: queue.depth, running: queue.inFlight, graceMs: deps.graceMs },
    'shutting down: finishing queued and running requests',
  );
  if (!(await settlesWithin(queue.idle(), deps.graceMs))) {
    app.log.warn({ remaining: queue.depth + queue.inFlight }, 'grace period over: aborting');
    state.abortRemainingWork();
    await settlesWithin(queue.idle(), ABORT_SETTLE_MS);
  }
  // Stop accepting, but leave open connections alone: Node's http close() would also drop
  // "idle" ones, including fresh connections whose request has not been read yet (a reset for
  // that client). Late requests on them get a typed 503 + Connection: close; then Fastify
  // closes what is left.
  if (app.server.listening) {
    await quiet(app, QUIET_MS, QUIET_MAX_MS);
    NetServer.prototype.close.call(app.server);
    await connectionsDrained(app, DRAIN_MS);
  }
  await settlesWithin(app.close(), CLOSE_TIMEOUT_MS);
  await deps.closeEngine();
  app.log.info('shutdown complete');
}

/** Waits until nothing new has arrived for `quietMs`, for at most `maxMs`. */
async function quiet(app: FastifyInstance, quietMs: number, maxMs: number): Promise<void> {
  let last = Date.now();
  const arrived = (): void => {
    last = Date.now();
  };
  app.server.on('connection', arrived);
  app.server.on('request', arrived);
  try {
    const deadline = Date.now() + maxMs;
    while (Date.now() < deadline && Date.now() - last < quietMs) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  } finally {
    app.server.off('connection', arrived);
    app.server.off('request', arrived);
  }
}

/** Waits until no connection is open, for at most `ms`. */
async function connectionsDrained(app: FastifyInstance, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const open = await new Promise<number>((resolve) =>
      app.server.getConnections((error, count) => resolve(error ? 0 : count)),
    );
    if (open === 0) return;
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }
}

/** Waits for a promise for at most `ms`; true if it settled in time. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
