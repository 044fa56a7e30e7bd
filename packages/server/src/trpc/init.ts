import { initTRPC } from '@trpc/server';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import { ERROR_CATALOG } from '@magma-som/schemas';
import type { ErrorData } from '@magma-som/schemas';
import { currentRequest } from '../http/request-id.js';
import type { RequestContext } from './context.js';
import { apiErrorOf } from './errors.js';

/**
 * tRPC for this server. The error formatter replaces tRPC's default shape: `data` is exactly
 * the contract's ErrorData (no stack, no path), and tRPC takes the HTTP status from
 * `data.httpStatus`, so every error's status comes from ERROR_CATALOG.
 */
export const t = initTRPC.context<RequestContext>().create({
  errorFormatter({ error, ctx }) {
    const apiError = apiErrorOf(error);
    const data: ErrorData = apiError.toData(ctx?.requestId ?? currentRequest.getStore());
    return {
      message: data.message,
      code: TRPC_ERROR_CODES_BY_KEY[ERROR_CATALOG[apiError.code].trpcCode],
      data,
    };
  },
});
