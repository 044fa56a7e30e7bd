import {
  BatchCreateRequestSchema,
  BatchRefSchema,
  BatchResultsPageSchema,
  BatchResultsRequestSchema,
  BatchStatusSchema,
} from '@magma-som/schemas';
import { t } from './init.js';
import { procedure } from './procedure.js';

/**
 * Batch jobs (answered by worker processes through Redis): create, status, a page of results,
 * cancel. Without Redis each answers JOBS_NOT_ENABLED.
 */
export const jobsRouter = t.router({
  create: procedure
    .input(BatchCreateRequestSchema)
    .output(BatchStatusSchema)
    .mutation(({ input, ctx }) => ctx.services.jobs.create(input)),
  status: procedure
    .input(BatchRefSchema)
    .output(BatchStatusSchema)
    .query(({ input, ctx }) => ctx.services.jobs.status(input.batchId)),
  results: procedure
    .input(BatchResultsRequestSchema)
    .output(BatchResultsPageSchema)
    .query(({ input, ctx }) => ctx.services.jobs.results(input.batchId, input.cursor, input.limit)),
  cancel: procedure
    .input(BatchRefSchema)
    .output(BatchStatusSchema)
    .mutation(({ input, ctx }) => ctx.services.jobs.cancel(input.batchId)),
});
