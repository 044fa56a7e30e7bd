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
  // A body that is not JSON: the parser's message quotes the body, so a fixed text instead.
  if (cause instanceof SyntaxError)
    return new ApiError('INVALID_INPUT', 'the body is not valid JSON');
  // Validation, image and engine errors arrive as causes; anything else is judged by tRPC's code.
  if (cause !== undefined) {
    const mapped = toApiError(cause);
    if (mapped.code !== 'INTERNAL') return mapped;
  }
  // tRPC's own messages may quote the client's input (a path, a content type): fixed texts.
  switch (error.code) {
    case 'NOT_FOUND':
      return new ApiError('NOT_FOUND', 'no such procedure');
    case 'PAYLOAD_TOO_LARGE':
      return new ApiError(
        'PAYLOAD_TOO_LARGE',
        'the request body is larger than the server accepts',
      );
    case 'METHOD_NOT_SUPPORTED':
      return new ApiError(
        'METHOD_NOT_ALLOWED',
        'wrong HTTP method for this procedure: queries use GET, mutations POST',
      );
    case 'UNSUPPORTED_MEDIA_TYPE':
      return new ApiError(
        'UNSUPPORTED_MEDIA_TYPE',
        'unsupported content type: use application/json, or multipart/form-data for askUpload',
      );
    case 'PARSE_ERROR':
      return new ApiError('INVALID_INPUT', 'the request could not be parsed');
    case 'BAD_REQUEST':
      return new ApiError('INVALID_INPUT', safeMessage(error.message));
    default:
      return new ApiError('INTERNAL', 'internal server error');
  }
}

/** A framework message, unless it quotes something (which may come from the request). */
function safeMessage(message: string): string {
  return message.length === 0 || message.length > 200 || /["'`]/.test(message)
    ? 'the request is malformed'
    : message;
}
