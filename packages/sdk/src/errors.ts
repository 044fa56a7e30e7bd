import type { ErrorCode, ErrorIssue } from '@magma-som/schemas';

/** Codes of failures that happen on the client's side of the wire. */
export type ClientErrorCode = 'CONNECTION_ERROR' | 'TIMEOUT' | 'ABORTED' | 'CLIENT_CLOSED';

export interface MagmaErrorInit {
  readonly code: ErrorCode | ClientErrorCode;
  /** HTTP status of the response; undefined when none arrived or the error was found locally. */
  readonly status?: number | undefined;
  readonly requestId?: string | undefined;
  readonly retryable?: boolean | undefined;
  readonly issues?: readonly ErrorIssue[] | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly headers?: Headers | undefined;
  readonly cause?: unknown;
}

/**
 * Every error the SDK throws. `code` is one of the contract's error codes (from the server or
 * from local validation) or a client-side code (connection, timeout, abort, closed client).
 */
export class MagmaError extends Error {
  readonly code: ErrorCode | ClientErrorCode;
  readonly status: number | undefined;
  /** The server's id of the request (`x-request-id`), for support and logs. */
  readonly requestId: string | undefined;
  /** Whether sending the same request again later may succeed. */
  readonly retryable: boolean;
  /** Field-level problems, for validation errors. */
  readonly issues: readonly ErrorIssue[] | undefined;
  /** How long the server asked the client to wait before trying again. */
  readonly retryAfterMs: number | undefined;
  /** Response headers, when a response arrived. */
  readonly headers: Headers | undefined;
  /** Attempts made before this error was thrown (1 = no retries). Set by the client. */
  attempts = 1;

  constructor(message: string, init: MagmaErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status;
    this.requestId = init.requestId;
    this.retryable = init.retryable ?? false;
    this.issues = init.issues;
    this.retryAfterMs = init.retryAfterMs;
    this.headers = init.headers;
  }
}

type Init = Omit<MagmaErrorInit, 'code'>;

// One class per contract error code, so callers can branch with instanceof.

/** The request does not match the schema (found locally or by the server); see `issues`. */
export class InvalidInputError extends MagmaError {
  declare readonly code: 'INVALID_INPUT';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'INVALID_INPUT' });
  }
}
export class InvalidImageError extends MagmaError {
  declare readonly code: 'INVALID_IMAGE';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'INVALID_IMAGE' });
  }
}
export class InvalidMarksError extends MagmaError {
  declare readonly code: 'INVALID_MARKS';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'INVALID_MARKS' });
  }
}
export class PayloadTooLargeError extends MagmaError {
  declare readonly code: 'PAYLOAD_TOO_LARGE';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'PAYLOAD_TOO_LARGE' });
  }
}
/** Missing or wrong API key (contract code UNAUTHORIZED). */
export class AuthenticationError extends MagmaError {
  declare readonly code: 'UNAUTHORIZED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'UNAUTHORIZED' });
  }
}
export class NotFoundError extends MagmaError {
  declare readonly code: 'NOT_FOUND';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'NOT_FOUND' });
  }
}
/** An image id (images.upload) the server does not know, or whose upload expired: upload it again. */
export class ImageNotFoundError extends MagmaError {
  declare readonly code: 'IMAGE_NOT_FOUND';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'IMAGE_NOT_FOUND' });
  }
}

export class RateLimitError extends MagmaError {
  declare readonly code: 'RATE_LIMITED';
  constructor(message: string, init: Init = {}) {
    super(message, { retryable: true, ...init, code: 'RATE_LIMITED' });
  }
}
export class OverloadedError extends MagmaError {
  declare readonly code: 'OVERLOADED';
  constructor(message: string, init: Init = {}) {
    super(message, { retryable: true, ...init, code: 'OVERLOADED' });
  }
}
export class ModelNotReadyError extends MagmaError {
  declare readonly code: 'MODEL_NOT_READY';
  constructor(message: string, init: Init = {}) {
    super(message, { retryable: true, ...init, code: 'MODEL_NOT_READY' });
  }
}
/** The server gave up on the request at its own deadline. */
export class DeadlineExceededError extends MagmaError {
  declare readonly code: 'DEADLINE_EXCEEDED';
  constructor(message: string, init: Init = {}) {
    super(message, { retryable: true, ...init, code: 'DEADLINE_EXCEEDED' });
  }
}
/** The server reports the request as cancelled by the client. */
export class CancelledError extends MagmaError {
  declare readonly code: 'CANCELLED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'CANCELLED' });
  }
}
export class InferenceFailedError extends MagmaError {
  declare readonly code: 'INFERENCE_FAILED';
  constructor(message: string, init: Init = {}) {
    super(message, { retryable: true, ...init, code: 'INFERENCE_FAILED' });
  }
}
export class InternalServerError extends MagmaError {
  declare readonly code: 'INTERNAL';
  constructor(message: string, init: Init = {}) {
    super(message, { retryable: true, ...init, code: 'INTERNAL' });
  }
}

/** No response: the connection was refused, reset or dropped. */
export class APIConnectionError extends MagmaError {
  declare readonly code: 'CONNECTION_ERROR' | 'TIMEOUT';
  constructor(message: string, init: Omit<Init, 'status'> = {}) {
    super(message, { retryable: true, ...init, code: 'CONNECTION_ERROR' });
  }
}

/** The call did not finish within `timeoutMs` (the body included). */
export class APITimeoutError extends APIConnectionError {
  override readonly code = 'TIMEOUT' as const;
  readonly timeoutMs: number;
  constructor(timeoutMs: number, init: Omit<Init, 'status'> = {}) {
    super(`request timed out after ${timeoutMs} ms`, init);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's AbortSignal fired; nothing more is retried. */
export class APIUserAbortError extends MagmaError {
  declare readonly code: 'ABORTED';
  constructor(message = 'request was aborted', init: Init = {}) {
    super(message, { ...init, code: 'ABORTED', retryable: false });
  }
}

/** The client was closed; create a new one. */
export class ClientClosedError extends MagmaError {
  declare readonly code: 'CLIENT_CLOSED';
  constructor(message = 'the client is closed; create a new one with createClient()') {
    super(message, { code: 'CLIENT_CLOSED', retryable: false });
  }
}

/** The HTTP method is not served on that path (GET on a mutation, TRACE, ...). */
export class MethodNotAllowedError extends MagmaError {
  declare readonly code: 'METHOD_NOT_ALLOWED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'METHOD_NOT_ALLOWED' });
  }
}
export class UnsupportedMediaTypeError extends MagmaError {
  declare readonly code: 'UNSUPPORTED_MEDIA_TYPE';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'UNSUPPORTED_MEDIA_TYPE' });
  }
}
export class UriTooLongError extends MagmaError {
  declare readonly code: 'URI_TOO_LONG';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'URI_TOO_LONG' });
  }
}
export class HeadersTooLargeError extends MagmaError {
  declare readonly code: 'HEADERS_TOO_LARGE';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'HEADERS_TOO_LARGE' });
  }
}
/** The server closed the request because headers or body arrived too slowly. */
export class RequestTimeoutError extends MagmaError {
  declare readonly code: 'REQUEST_TIMEOUT';
  constructor(message: string, init: Init = {}) {
    super(message, { retryable: true, ...init, code: 'REQUEST_TIMEOUT' });
  }
}

const CLASS_BY_CODE: Record<ErrorCode, new (message: string, init?: Init) => MagmaError> = {
  INVALID_INPUT: InvalidInputError,
  INVALID_IMAGE: InvalidImageError,
  INVALID_MARKS: InvalidMarksError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  UNAUTHORIZED: AuthenticationError,
  NOT_FOUND: NotFoundError,
  IMAGE_NOT_FOUND: ImageNotFoundError,
  METHOD_NOT_ALLOWED: MethodNotAllowedError,
  UNSUPPORTED_MEDIA_TYPE: UnsupportedMediaTypeError,
  URI_TOO_LONG: UriTooLongError,
  HEADERS_TOO_LARGE: HeadersTooLargeError,
  REQUEST_TIMEOUT: RequestTimeoutError,
  RATE_LIMITED: RateLimitError,
  OVERLOADED: OverloadedError,
  MODEL_NOT_READY: ModelNotReadyError,
  DEADLINE_EXCEEDED: DeadlineExceededError,
  CANCELLED: CancelledError,
  INFERENCE_FAILED: InferenceFailedError,
  INTERNAL: InternalServerError,
};

/** The typed error for a contract error code. */
export function errorForCode(code: ErrorCode, message: string, init: Init = {}): MagmaError {
  return new CLASS_BY_CODE[code](message, init);
}
