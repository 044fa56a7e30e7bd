import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import { ERROR_CATALOG, errorData } from '@magma-som/schemas';
import type { ErrorCode, ErrorData } from '@magma-som/schemas';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/to-api-error.js';
import { wasAnsweredEarly } from './linger.js';

export const TRPC_PREFIX = '/trpc';

/** Retry-After in whole seconds (at least 1), as HTTP wants it. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/**
 * The body of an error that happened before tRPC saw the request (auth, body limit, bad
 * content type), shaped as tRPC would have answered so tRPC clients read `error.data`:
 * an array for a non-streamed batch call (one entry per procedure), else one object.
 */
function trpcErrorBody(request: FastifyRequest, data: ErrorData): unknown {
  const envelope = {
    error: {
      message: data.message,
      code: TRPC_ERROR_CODES_BY_KEY[ERROR_CATALOG[data.code].trpcCode],
      data,
    },
  };
  const url = new URL(request.url, 'http://localhost');
  const streamed = request.headers['trpc-accept'] === 'application/jsonl';
  if (url.searchParams.get('batch') !== '1' || streamed) return envelope;
  const paths = url.pathname.slice(TRPC_PREFIX.length + 1).split(',');
  return paths.map(() => envelope);
}

export function isTrpcUrl(url: string): boolean {
  return (
    url === TRPC_PREFIX || url.startsWith(`${TRPC_PREFIX}/`) || url.startsWith(`${TRPC_PREFIX}?`)
  );
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: ApiError): void {
  const data = error.toData(request.id);
  // Also set here: errors raised before the onRequest hook (router, framework) skip it.
  void reply.header('x-request-id', request.id);
  if (data.retryAfterMs !== undefined) {
    void reply.header('retry-after', retryAfterSeconds(data.retryAfterMs));
  }
  if (error.extra.allow !== undefined) void reply.header('allow', error.extra.allow);
  const isTrpc = isTrpcUrl(request.url);
  void reply
    .code(data.httpStatus)
    .type('application/json')
    .send(isTrpc ? trpcErrorBody(request, data) : data);
}

/** Contract codes for the HTTP statuses Fastify and its plugins answer with. */
const CODE_BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
};

/**
 * Fixed texts per code: framework messages may quote the client's input (a JSON parser's
 * excerpt of the body, a content type, a path), and nothing a client sent is echoed back.
 */
const FIXED_MESSAGES: Partial<Record<ErrorCode, string>> = {
  NOT_FOUND: 'no such route',
  METHOD_NOT_ALLOWED: 'this HTTP method is not allowed on this route',
  REQUEST_TIMEOUT: 'the request was not received within the server timeouts',
  PAYLOAD_TOO_LARGE: 'the request body is larger than the server accepts',
  URI_TOO_LONG: 'the request URL is longer than the server accepts',
  UNSUPPORTED_MEDIA_TYPE:
    'unsupported content type: use application/json, or multipart/form-data for askUpload',
  HEADERS_TOO_LARGE: 'the request headers are larger than the server accepts',
};

const MESSAGE_BY_FASTIFY_CODE: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'the body is not valid JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'the body is empty; send the request as JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  FST_ERR_CTP_EMPTY_TYPE: 'the content type is empty',
  FST_ERR_CTP_INVALID_TYPE: 'the content type is malformed',
  FST_ERR_BAD_URL: 'the URL is malformed',
  FST_ERR_INVALID_URL: 'the URL is malformed',
};

/** The contract error for an HTTP status, with the fixed message for it. */
export function apiErrorForStatus(status: number, fallback = 'the request is malformed'): ApiError {
  const code = CODE_BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_INPUT');
  return new ApiError(code, FIXED_MESSAGES[code] ?? fallback);
}

/** Fastify's own failures (body limit, content type, JSON, URL) as contract errors. */
export function fromFastifyError(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error;
  const status = error.statusCode ?? 500;
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return apiErrorForStatus(414);
  if (status >= 400 && status < 500) {
    return apiErrorForStatus(status, MESSAGE_BY_FASTIFY_CODE[error.code] ?? undefined);
  }
  return toApiError(error);
}

/**
 * A complete HTTP response in the contract's shape, written straight to a socket: for what
 * Node's parser refuses before Fastify sees a request (bad chunking, duplicate
 * Content-Length, NUL in a header, oversized headers, timeouts, unknown methods, CONNECT).
 * The connection is closed after it: the parser cannot find the next request reliably.
 */
export function writeRawError(socket: Duplex, code: ErrorCode, message?: string): void {
  // 405 must say what is allowed; these methods never reach a route, so the server-wide set.
  const allow = code === 'METHOD_NOT_ALLOWED' ? 'Allow: GET, HEAD, POST\r\n' : '';
  const requestId = randomUUID();
  const data = errorData(code, message ?? FIXED_MESSAGES[code] ?? 'the request is malformed', {
    requestId,
  });
  const body = JSON.stringify(data);
  const status = data.httpStatus;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${requestId}\r\n` +
      allow +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** The contract code for an error of Node's HTTP parser (llhttp `HPE_*` codes). */
export function clientErrorCode(error: NodeJS.ErrnoException): ErrorCode {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'REQUEST_TIMEOUT';
    case 'HPE_HEADER_OVERFLOW':
      return 'HEADERS_TOO_LARGE';
    case 'HPE_INVALID_METHOD':
      return 'METHOD_NOT_ALLOWED';
    default:
      return 'INVALID_INPUT';
  }
}

/**
 * Fastify's clientErrorHandler: Node's parser refused the bytes, so there is no request to
 * answer through Fastify. Writes a contract error unless a response already started.
 */
export function handleClientError(
  this: FastifyInstance,
  error: NodeJS.ErrnoException,
  socket: Duplex,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // Lingering after an early answer (the body timeout ended it): nothing more to say.
  if (wasAnsweredEarly(socket)) {
    socket.destroy();
    return;
  }
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  const code = clientErrorCode(error);
  this.log.info({ code, parserError: error.code }, 'malformed or slow HTTP request refused');
  if (!socket.writable || pending?.headersSent) {
    socket.destroy();
    return;
  }
  writeRawError(
    socket,
    code,
    code === 'INVALID_INPUT' ? 'the HTTP request is malformed' : undefined,
  );
  // A client that never reads its answer does not hold the socket.
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/**
 * Every error and unknown route outside tRPC answers in the ErrorData shape (tRPC-shaped under
 * /trpc). Server faults are logged with their detail; clients get a fixed message.
 */
export function installErrorReplies(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiError = fromFastifyError(error);
    if (apiError.code === 'INTERNAL') {
      request.log.error({ err: error }, 'request failed');
    } else {
      request.log.info({ code: apiError.code }, apiError.message);
    }
    sendError(request, reply, apiError);
  });
  app.setNotFoundHandler((request, reply) => {
    const allow = allowedMethods(request.url);
    sendError(
      request,
      reply,
      allow === undefined
        ? apiErrorForStatus(404)
        : new ApiError('METHOD_NOT_ALLOWED', FIXED_MESSAGES.METHOD_NOT_ALLOWED!, { allow }),
    );
  });
}

/** Methods served on a path, when the path exists; undefined for unknown paths. */
export function allowedMethods(url: string): string | undefined {
  if (isTrpcUrl(url)) return 'GET, POST';
  const path = url.split('?')[0];
  return PLAIN_PATHS.has(path!) ? 'GET, HEAD' : undefined;
}

const PLAIN_PATHS: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics']);

/** Fastify's frameworkErrors: bad URL encoding and over-long path segments. */
export function handleFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  sendError(request, reply, fromFastifyError(error));
}
