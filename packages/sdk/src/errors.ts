import type { ErrorCode, ErrorIssue } from './contract/types.js';

/** Codes of failures that happen on the client's side of the wire. */
export type ClientErrorCode = 'CONNECTION_ERROR' | 'TIMEOUT' | 'ABORTED' | 'CLIENT_CLOSED';

/**
 * Codes of HTTP error responses that carry no contract error (a proxy's 403, a gateway's 502,
 * a status the contract does not use): named after the status.
 */
export type HttpErrorCode =
  'BAD_REQUEST' | 'PERMISSION_DENIED' | 'CONFLICT' | 'UNPROCESSABLE_ENTITY' | 'HTTP_ERROR';

export interface MagmaErrorInit {
  readonly code: ErrorCode | ClientErrorCode | HttpErrorCode;
  /** HTTP status of the response; undefined when none arrived or the error was found locally. */
  readonly status?: number | undefined;
  readonly requestId?: string | undefined;
  readonly retryable?: boolean | undefined;
  readonly issues?: readonly ErrorIssue[] | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly headers?: Headers | undefined;
  /** The response body (parsed JSON, else text), when a response arrived. */
  readonly body?: unknown;
  readonly cause?: unknown;
}

/**
 * Every error the SDK throws. `code` is one of the contract's error codes (from the server or
 * from local validation), an HTTP error code for responses outside the contract, or a
 * client-side code (connection, timeout, abort, closed client).
 */
export class MagmaError extends Error {
  readonly code: ErrorCode | ClientErrorCode | HttpErrorCode;
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

/** What an error class's constructor takes; the class fixes the code. */
export type APIErrorInit = Omit<MagmaErrorInit, 'code'>;
type Init = APIErrorInit;

/**
 * The server answered with an error (any status >= 400), or local validation found one of the
 * contract's input errors before sending. When a response arrived, `status`, `headers`,
 * `requestId` and `body` describe it; for a local validation error `status` is undefined.
 */
export class APIError extends MagmaError {
  /** The response body (parsed JSON, else its text); undefined when none arrived. */
  readonly body: unknown;
  constructor(message: string, init: Init & { readonly code?: MagmaErrorInit['code'] } = {}) {
    super(message, { ...init, code: init.code ?? 'HTTP_ERROR' });
    this.body = init.body;
  }
}

// Classes by status, as openai-node and @anthropic-ai/sdk have them; the contract's codes are
// classes under them, so `instanceof BadRequestError` also catches InvalidMarksError.

/** HTTP 400. The contract's 400s are its subclasses: InvalidInputError, InvalidImageError, InvalidMarksError. */
export class BadRequestError extends APIError {
  declare readonly code: 'BAD_REQUEST' | 'INVALID_INPUT' | 'INVALID_IMAGE' | 'INVALID_MARKS';
  constructor(message: string, init: Init = {}, code: BadRequestError['code'] = 'BAD_REQUEST') {
    super(message, { ...init, code });
  }
}

/** The request does not match the schema (found locally or by the server); see `issues`. */
export class InvalidInputError extends BadRequestError {
  declare readonly code: 'INVALID_INPUT';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'INVALID_INPUT');
  }
}
export class InvalidImageError extends BadRequestError {
  declare readonly code: 'INVALID_IMAGE';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'INVALID_IMAGE');
  }
}
export class InvalidMarksError extends BadRequestError {
  declare readonly code: 'INVALID_MARKS';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'INVALID_MARKS');
  }
}

/** HTTP 401: missing or wrong API key (contract code UNAUTHORIZED). */
export class AuthenticationError extends APIError {
  declare readonly code: 'UNAUTHORIZED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'UNAUTHORIZED' });
  }
}

/** HTTP 403: a proxy or gateway in front of the server refused the request. */
export class PermissionDeniedError extends APIError {
  declare readonly code: 'PERMISSION_DENIED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'PERMISSION_DENIED' });
  }
}

/** HTTP 404: no such route. ImageNotFoundError is its subclass. */
export class NotFoundError extends APIError {
  declare readonly code: 'NOT_FOUND' | 'IMAGE_NOT_FOUND';
  constructor(message: string, init: Init = {}, code: NotFoundError['code'] = 'NOT_FOUND') {
    super(message, { ...init, code });
  }
}
/** An image id (images.upload) the server does not know, or whose upload expired: upload it again. */
export class ImageNotFoundError extends NotFoundError {
  declare readonly code: 'IMAGE_NOT_FOUND';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'IMAGE_NOT_FOUND');
  }
}

/** HTTP 405: the route exists but not for this HTTP method (GET on a mutation, TRACE, ...). */
export class MethodNotAllowedError extends APIError {
  declare readonly code: 'METHOD_NOT_ALLOWED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'METHOD_NOT_ALLOWED' });
  }
}

/** HTTP 408: the server closed the request because headers or body arrived too slowly. */
export class RequestTimeoutError extends APIError {
  declare readonly code: 'REQUEST_TIMEOUT';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, retryable: init.retryable ?? true, code: 'REQUEST_TIMEOUT' });
  }
}

/**
 * HTTP 409 outside the contract. Not retried: the same request would conflict again.
 */
export class ConflictError extends APIError {
  declare readonly code: 'CONFLICT';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'CONFLICT' });
  }
}

/** HTTP 413: the body, the image bytes or the decoded pixels exceed a limit. */
export class PayloadTooLargeError extends APIError {
  declare readonly code: 'PAYLOAD_TOO_LARGE';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'PAYLOAD_TOO_LARGE' });
  }
}
/** HTTP 414. */
export class UriTooLongError extends APIError {
  declare readonly code: 'URI_TOO_LONG';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'URI_TOO_LONG' });
  }
}
/** HTTP 415. */
export class UnsupportedMediaTypeError extends APIError {
  declare readonly code: 'UNSUPPORTED_MEDIA_TYPE';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'UNSUPPORTED_MEDIA_TYPE' });
  }
}

/** HTTP 422. IdempotencyKeyReusedError is its subclass. */
export class UnprocessableEntityError extends APIError {
  declare readonly code: 'UNPROCESSABLE_ENTITY' | 'IDEMPOTENCY_KEY_REUSED';
  constructor(
    message: string,
    init: Init = {},
    code: UnprocessableEntityError['code'] = 'UNPROCESSABLE_ENTITY',
  ) {
    super(message, { ...init, code });
  }
}
/** The `idempotencyKey` was sent before with a different request: a new request needs a new key. */
export class IdempotencyKeyReusedError extends UnprocessableEntityError {
  declare readonly code: 'IDEMPOTENCY_KEY_REUSED';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'IDEMPOTENCY_KEY_REUSED');
  }
}

/** HTTP 429: wait `retryAfterMs` (the client does, up to `retry.maxRetryAfterMs`). */
export class RateLimitError extends APIError {
  declare readonly code: 'RATE_LIMITED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, retryable: init.retryable ?? true, code: 'RATE_LIMITED' });
  }
}

/** HTTP 431. */
export class HeadersTooLargeError extends APIError {
  declare readonly code: 'HEADERS_TOO_LARGE';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'HEADERS_TOO_LARGE' });
  }
}

/** HTTP 499: the server reports the request as cancelled by the client. */
export class CancelledError extends APIError {
  declare readonly code: 'CANCELLED';
  constructor(message: string, init: Init = {}) {
    super(message, { ...init, code: 'CANCELLED' });
  }
}

type ServerFaultCode =
  'INTERNAL' | 'INFERENCE_FAILED' | 'OVERLOADED' | 'MODEL_NOT_READY' | 'DEADLINE_EXCEEDED';

/**
 * Any HTTP status >= 500 (retried). Code INTERNAL when the server reports an unexpected fault or
 * the response is not the contract's (a proxy's 502); the contract's other server faults are
 * its subclasses.
 */
export class InternalServerError extends APIError {
  declare readonly code: ServerFaultCode;
  constructor(message: string, init: Init = {}, code: ServerFaultCode = 'INTERNAL') {
    super(message, { ...init, retryable: init.retryable ?? true, code });
  }
}
/** HTTP 500: the model failed while answering (the engine restarts itself). */
export class InferenceFailedError extends InternalServerError {
  declare readonly code: 'INFERENCE_FAILED';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'INFERENCE_FAILED');
  }
}
/** HTTP 503: the queue in front of the model is full. */
export class OverloadedError extends InternalServerError {
  declare readonly code: 'OVERLOADED';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'OVERLOADED');
  }
}
/** HTTP 503: the model is loading or warming up, or the server is shutting down. */
export class ModelNotReadyError extends InternalServerError {
  declare readonly code: 'MODEL_NOT_READY';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'MODEL_NOT_READY');
  }
}
/**
 * HTTP 504: the server gave up on the request at its own deadline. The client does not retry
 * it by default (it would likely run as long again; `retry.retryDeadlineExceeded` changes that).
 */
export class DeadlineExceededError extends InternalServerError {
  declare readonly code: 'DEADLINE_EXCEEDED';
  constructor(message: string, init: Init = {}) {
    super(message, init, 'DEADLINE_EXCEEDED');
  }
}

/** No response: the connection was refused, reset or dropped. */
export class APIConnectionError extends MagmaError {
  declare readonly code: 'CONNECTION_ERROR' | 'TIMEOUT';
  constructor(message: string, init: Omit<Init, 'status' | 'body'> = {}) {
    super(message, { ...init, retryable: init.retryable ?? true, code: 'CONNECTION_ERROR' });
  }
}

/**
 * An attempt did not finish within `timeoutMs`, or a stream went `streamIdleTimeoutMs` without an
 * event (`idle` is then true).
 */
export class APITimeoutError extends APIConnectionError {
  override readonly code = 'TIMEOUT' as const;
  readonly timeoutMs: number;
  readonly idle: boolean;
  constructor(timeoutMs: number, init: Omit<Init, 'status' | 'body'> & { idle?: boolean } = {}) {
    const { idle = false, ...rest } = init;
    super(
      idle
        ? `stream idle: no event for ${timeoutMs} ms`
        : `request timed out after ${timeoutMs} ms`,
      rest,
    );
    this.timeoutMs = timeoutMs;
    this.idle = idle;
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

// Partial: a code added to the contract before it has a class here still yields an APIError
// carrying that code (below).
const CLASS_BY_CODE: Partial<Record<ErrorCode, new (message: string, init?: Init) => APIError>> = {
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
  IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReusedError,
};

/** The typed error for a contract error code. */
export function errorForCode(code: ErrorCode, message: string, init: Init = {}): APIError {
  const Class = CLASS_BY_CODE[code];
  return Class ? new Class(message, init) : new APIError(message, { ...init, code });
}

const CLASS_BY_STATUS: Readonly<Record<number, new (message: string, init?: Init) => APIError>> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  405: MethodNotAllowedError,
  408: RequestTimeoutError,
  409: ConflictError,
  413: PayloadTooLargeError,
  414: UriTooLongError,
  415: UnsupportedMediaTypeError,
  422: UnprocessableEntityError,
  429: RateLimitError,
  431: HeadersTooLargeError,
  499: CancelledError,
};

/**
 * The typed error for a response that carries no contract error code, by its status alone: a
 * 500 is an InternalServerError (not a guess at which server fault), a 403 a
 * PermissionDeniedError. Other statuses >= 400 are a plain APIError (code HTTP_ERROR).
 */
export function errorForStatus(status: number, message: string, init: Init = {}): APIError {
  const Class = CLASS_BY_STATUS[status];
  if (Class) return new Class(message, { ...init, status });
  if (status >= 500) return new InternalServerError(message, { ...init, status });
  return new APIError(message, { retryable: false, ...init, status });
}
