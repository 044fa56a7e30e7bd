// Without zod, so small clients (@magma-som/schemas/plain) can use it.

/** Every error a client can receive. The server maps each to an HTTP status; the SDK to a class. */
export const ERROR_CODES = [
  'INVALID_INPUT',
  'INVALID_IMAGE',
  'INVALID_MARKS',
  'PAYLOAD_TOO_LARGE',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'IMAGE_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'UNSUPPORTED_MEDIA_TYPE',
  'URI_TOO_LONG',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'RATE_LIMITED',
  'OVERLOADED',
  'MODEL_NOT_READY',
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'INFERENCE_FAILED',
  'INTERNAL',
  'JOBS_NOT_ENABLED',
  'IDEMPOTENCY_KEY_REUSED',
] as const;
