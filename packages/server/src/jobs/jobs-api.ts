import type { BatchCreateRequest, BatchResultsPage, BatchStatus } from '@magma-som/schemas';
import { ApiError } from '../errors/api-error.js';

/**
 * What the job procedures and routes call, typed with schema types only (it is part of the
 * tRPC context, whose type the SDK imports).
 */
export interface JobsApi {
  create(request: BatchCreateRequest): Promise<BatchStatus>;
  status(batchId: string): Promise<BatchStatus>;
  results(batchId: string, cursor: number, limit: number): Promise<BatchResultsPage>;
  cancel(batchId: string): Promise<BatchStatus>;
}

/** Without MAGMA_REDIS_URL: every job call answers JOBS_NOT_ENABLED. */
export const DISABLED_JOBS: JobsApi = {
  create: notEnabled,
  status: notEnabled,
  results: notEnabled,
  cancel: notEnabled,
};

function notEnabled(): Promise<never> {
  return Promise.reject(
    new ApiError(
      'JOBS_NOT_ENABLED',
      'batch jobs are not enabled on this server: it runs without Redis (set MAGMA_REDIS_URL)',
    ),
  );
}
