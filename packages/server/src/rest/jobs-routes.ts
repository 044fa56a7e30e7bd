import {
  BatchCreateRequestSchema,
  BatchIdSchema,
  BatchResultsRequestSchema,
} from '@magma-som/schemas';
import type { BatchResultsPage, BatchStatus } from '@magma-som/schemas';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodType } from 'zod';
import { toApiError } from '../errors/to-api-error.js';
import type { HttpApiDeps } from './deps.js';

/**
 * Batch jobs over plain REST, beside the ask routes (under /v1):
 *   POST /som/batches                     create (BatchCreateRequest) -> 202 BatchStatus
 *   GET  /som/batches/:batchId            BatchStatus
 *   GET  /som/batches/:batchId/results    ?cursor&limit -> BatchResultsPage
 *   POST /som/batches/:batchId/cancel     BatchStatus
 * Errors are the contract's ErrorData (JOBS_NOT_ENABLED without Redis).
 */
export async function jobsRoutes(app: FastifyInstance, deps: HttpApiDeps): Promise<void> {
  const jobs = deps.services.jobs;
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const result = await work();
      deps.services.recordCall(name, 'ok', performance.now() - started);
      return result;
    } catch (error) {
      deps.services.recordCall(name, toApiError(error).code, performance.now() - started);
      throw error;
    }
  };

  app.post(
    '/som/batches',
    // Every image of the batch is inline: a limit of its own, above one ask's.
    { bodyLimit: deps.config.jobMaxBodyBytes },
    async (request, reply): Promise<BatchStatus> => {
      const status = await timed('rest.jobs.create', () =>
        jobs.create(parse(BatchCreateRequestSchema, request.body)),
      );
      void reply.code(202);
      return status;
    },
  );

  app.get('/som/batches/:batchId', async (request): Promise<BatchStatus> =>
    timed('rest.jobs.status', () => jobs.status(batchIdOf(request))),
  );

  app.get('/som/batches/:batchId/results', async (request): Promise<BatchResultsPage> => {
    const query = request.query as Record<string, string | undefined>;
    const input = parse(BatchResultsRequestSchema, {
      batchId: (request.params as { batchId: string }).batchId,
      ...(query.cursor !== undefined ? { cursor: numeric(query.cursor) } : {}),
      ...(query.limit !== undefined ? { limit: numeric(query.limit) } : {}),
    });
    return timed('rest.jobs.results', () => jobs.results(input.batchId, input.cursor, input.limit));
  });

  app.post('/som/batches/:batchId/cancel', async (request): Promise<BatchStatus> =>
    timed('rest.jobs.cancel', () => jobs.cancel(batchIdOf(request))),
  );
}

function parse<T>(schema: ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw toApiError(parsed.error);
  return parsed.data;
}

function batchIdOf(request: FastifyRequest): string {
  return parse(BatchIdSchema, (request.params as { batchId: string }).batchId);
}

/** Query strings are text; a non-number stays text so the schema names the field. */
function numeric(value: string): number | string {
  return /^\d{1,9}$/.test(value) ? Number(value) : value;
}
