import { z } from 'zod';
import { ERROR_CODES } from './error-codes.js';

export { ERROR_CODES };

export const ErrorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

/** tRPC error codes the server uses, as strings so this package depends on nothing of tRPC. */
export type TrpcErrorCodeName =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'METHOD_NOT_SUPPORTED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'TIMEOUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'SERVICE_UNAVAILABLE'
  | 'GATEWAY_TIMEOUT'
  | 'CLIENT_CLOSED_REQUEST'
  | 'INTERNAL_SERVER_ERROR'
  | 'NOT_IMPLEMENTED'
  | 'UNPROCESSABLE_CONTENT';

export interface ErrorCodeInfo {
  readonly httpStatus: number;
  readonly trpcCode: TrpcErrorCodeName;
  /** Whether the same request may succeed if sent again later. */
  readonly retryable: boolean;
  readonly description: string;
}

export const ERROR_CATALOG: Readonly<Record<ErrorCode, ErrorCodeInfo>> = {
  INVALID_INPUT: {
    httpStatus: 400,
    trpcCode: 'BAD_REQUEST',
    retryable: false,
    description: 'The request does not match the schema; see issues.',
  },
  INVALID_IMAGE: {
    httpStatus: 400,
    trpcCode: 'BAD_REQUEST',
    retryable: false,
    description: 'The image is not a decodable PNG, JPEG, WebP or GIF.',
  },
  INVALID_MARKS: {
    httpStatus: 400,
    trpcCode: 'BAD_REQUEST',
    retryable: false,
    description: 'A mark is malformed or lies outside the image; issues name it.',
  },
  PAYLOAD_TOO_LARGE: {
    httpStatus: 413,
    trpcCode: 'PAYLOAD_TOO_LARGE',
    retryable: false,
    description: 'The body, the image bytes or the decoded pixels exceed a limit.',
  },
  UNAUTHORIZED: {
    httpStatus: 401,
    trpcCode: 'UNAUTHORIZED',
    retryable: false,
    description: 'Missing or wrong API key.',
  },
  NOT_FOUND: {
    httpStatus: 404,
    trpcCode: 'NOT_FOUND',
    retryable: false,
    description: 'No such procedure or route.',
  },
  IMAGE_NOT_FOUND: {
    httpStatus: 404,
    trpcCode: 'NOT_FOUND',
    retryable: false,
    description:
      'The image id is unknown or its upload expired (uploads are kept for a while after their last use); upload the image again.',
  },
  METHOD_NOT_ALLOWED: {
    httpStatus: 405,
    trpcCode: 'METHOD_NOT_SUPPORTED',
    retryable: false,
    description: 'The route exists but not for this HTTP method (e.g. GET on a mutation, TRACE).',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    httpStatus: 415,
    trpcCode: 'UNSUPPORTED_MEDIA_TYPE',
    retryable: false,
    description: 'The body has a content type the route does not accept.',
  },
  URI_TOO_LONG: {
    httpStatus: 414,
    trpcCode: 'BAD_REQUEST',
    retryable: false,
    description: 'The request URL is longer than the server accepts.',
  },
  HEADERS_TOO_LARGE: {
    httpStatus: 431,
    trpcCode: 'BAD_REQUEST',
    retryable: false,
    description: 'The request headers are larger than the server accepts.',
  },
  REQUEST_TIMEOUT: {
    httpStatus: 408,
    trpcCode: 'TIMEOUT',
    retryable: true,
    description: 'The client did not send the headers or the body within the server timeouts.',
  },
  RATE_LIMITED: {
    httpStatus: 429,
    trpcCode: 'TOO_MANY_REQUESTS',
    retryable: true,
    description: 'Too many requests for this key or address; wait retryAfterMs.',
  },
  OVERLOADED: {
    httpStatus: 503,
    trpcCode: 'SERVICE_UNAVAILABLE',
    retryable: true,
    description: 'The queue in front of the model is full; wait retryAfterMs.',
  },
  MODEL_NOT_READY: {
    httpStatus: 503,
    trpcCode: 'SERVICE_UNAVAILABLE',
    retryable: true,
    description: 'The model is loading or warming up, or the server is shutting down.',
  },
  DEADLINE_EXCEEDED: {
    httpStatus: 504,
    trpcCode: 'GATEWAY_TIMEOUT',
    retryable: true,
    description: 'The request did not finish within its deadline and was cancelled.',
  },
  CANCELLED: {
    httpStatus: 499,
    trpcCode: 'CLIENT_CLOSED_REQUEST',
    retryable: false,
    description: 'The request was cancelled by the client.',
  },
  INFERENCE_FAILED: {
    httpStatus: 500,
    trpcCode: 'INTERNAL_SERVER_ERROR',
    retryable: true,
    description: 'The model failed while answering (the engine restarts itself).',
  },
  INTERNAL: {
    httpStatus: 500,
    trpcCode: 'INTERNAL_SERVER_ERROR',
    retryable: true,
    description: 'An unexpected server fault.',
  },
  JOBS_NOT_ENABLED: {
    httpStatus: 501,
    trpcCode: 'NOT_IMPLEMENTED',
    retryable: false,
    description:
      'Batch jobs need a Redis queue; this server runs without one (MAGMA_REDIS_URL is not set).',
  },
  IDEMPOTENCY_KEY_REUSED: {
    httpStatus: 422,
    trpcCode: 'UNPROCESSABLE_CONTENT',
    retryable: false,
    description:
      'The Idempotency-Key was sent before with a different request; a new request needs a new key.',
  },
};

/** A field-level problem, as zod reports it. */
export const ErrorIssueSchema = z.strictObject({
  path: z.array(z.union([z.string(), z.number()])),
  message: z.string(),
});
export type ErrorIssue = z.infer<typeof ErrorIssueSchema>;

/** What a client receives for any error: in tRPC's `error.data`, and as the body of plain routes. */
export const ErrorDataSchema = z.strictObject({
  code: ErrorCodeSchema,
  message: z.string(),
  httpStatus: z.number().int(),
  retryable: z.boolean(),
  requestId: z.string().optional(),
  issues: z.array(ErrorIssueSchema).optional(),
  retryAfterMs: z.number().int().min(0).optional(),
});
export type ErrorData = z.infer<typeof ErrorDataSchema>;

/** Builds the error data for a code, filling status and retryability from the catalog. */
export function errorData(
  code: ErrorCode,
  message: string,
  extra: Pick<ErrorData, 'requestId' | 'issues' | 'retryAfterMs'> = {},
): ErrorData {
  const info = ERROR_CATALOG[code];
  return {
    code,
    message,
    httpStatus: info.httpStatus,
    retryable: info.retryable,
    ...stripUndefined(extra),
  };
}

/** The error code for an HTTP status, for responses that carry no error data (e.g. a proxy's 502). */
export function errorCodeForStatus(status: number): ErrorCode {
  // A bare 501 (a proxy's "not implemented") says nothing about batch jobs.
  if (status === 501) return 'INTERNAL';
  // Nor a bare 422 about idempotency keys.
  if (status === 422) return 'INVALID_INPUT';
  for (const code of ERROR_CODES) {
    if (ERROR_CATALOG[code].httpStatus === status) return code;
  }
  if (status === 408) return 'DEADLINE_EXCEEDED';
  if (status >= 500) return status === 502 || status === 503 ? 'OVERLOADED' : 'INTERNAL';
  return 'INVALID_INPUT';
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
