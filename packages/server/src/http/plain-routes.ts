import type { Health } from '@magma-som/schemas';
import type { FastifyInstance } from 'fastify';
import type { ServerState } from '../lifecycle/server-state.js';
import { NOT_READY_RETRY_MS } from '../lifecycle/server-state.js';
import type { ServerMetrics } from '../metrics/metrics.js';
import { retryAfterSeconds } from './error-replies.js';

export interface PlainRouteDeps {
  readonly version: string;
  readonly startedAt: number;
  readonly state: ServerState;
  readonly metrics: ServerMetrics;
}

/** /health, /ready and /metrics: open to all (no API key, no rate limit) for probes and scrapers. */
export function registerPlainRoutes(app: FastifyInstance, deps: PlainRouteDeps): void {
  app.get('/health', async (): Promise<Health> => ({
    status: 'ok',
    version: deps.version,
    uptimeMs: Date.now() - deps.startedAt,
  }));

  app.get('/ready', async (_request, reply) => {
    const readiness = deps.state.readiness();
    if (!readiness.ready) {
      void reply.code(503).header('retry-after', retryAfterSeconds(NOT_READY_RETRY_MS));
    }
    return readiness;
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await deps.metrics.render();
    return reply.type(deps.metrics.contentType).send(text);
  });
}
