import { TRPCError } from '@trpc/server';
import { ERROR_CATALOG } from '@magma-som/schemas';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/to-api-error.js';

/** A TRPCError whose code and message match the ApiError it carries as cause. */
export function toTRPCError(error: unknown): TRPCError {
  if (error instanceof TRPCError && error.cause instanceof ApiError) return error;
  const apiError = error instanceof TRPCError ? apiErrorOf(error) : toApiError(error);
  return new TRPCError({
    code: ERROR_CATALOG[apiError.code].trpcCode,
    message: apiError.message,
    cause: apiError,
  });
}

/** The contract error behind a TRPCError, including those tRPC raises itself. */
export function apiErrorOf(error: TRPCError): ApiError {
  const cause: unknown = error.cause;
  if (cause instanceof ApiError) return cause;
  // Validation, image and engine errors arrive as causes; anything else is judged by tRPC's code.
  if (cause !== undefined) {
    const mapped = toApiError(cause);
    if (mapped.code !== 'INTERNAL') return mapped;
  }
  switch (error.code) {
    case 'NOT_FOUND':
      return new ApiError('NOT_FOUND', error.message);
    case 'PAYLOAD_TOO_LARGE':
      return new ApiError(
        'PAYLOAD_TOO_LARGE',
        'the request body is larger than the server accepts',
      );
    case 'PARSE_ERROR':
    case 'BAD_REQUEST':
    case 'METHOD_NOT_SUPPORTED':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return new ApiError('INVALID_INPUT', error.message);
    default:
      return new ApiError('INTERNAL', 'internal server error');
  }
}
