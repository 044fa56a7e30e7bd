import type { FastifyInstance } from 'fastify';
import type { WorkQueue } from '../queue/work-queue.js';
import type { ServerState } from './server-state.js';

/** After the grace period, how long aborted work gets to send its errors. */
const ABORT_SETTLE_MS = 2_000;
/** How long closing the listener may take before shutdown moves on. */
const CLOSE_TIMEOUT_MS = 5_000;

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
 * MODEL_NOT_READY. Then the listener closes and the engine after it.
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
  await settlesWithin(app.close(), CLOSE_TIMEOUT_MS);
  await deps.closeEngine();
  app.log.info('shutdown complete');
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
