import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import { ERROR_CATALOG } from '@magma-som/schemas';
import type { ErrorData } from '@magma-som/schemas';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/to-api-error.js';

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

export function sendError(request: FastifyRequest, reply: FastifyReply, error: ApiError): void {
  const data = error.toData(request.id);
  if (data.retryAfterMs !== undefined) {
    void reply.header('retry-after', retryAfterSeconds(data.retryAfterMs));
  }
  const isTrpc = request.url === TRPC_PREFIX || request.url.startsWith(`${TRPC_PREFIX}/`);
  void reply
    .code(data.httpStatus)
    .type('application/json')
    .send(isTrpc ? trpcErrorBody(request, data) : data);
}

/** Fastify's own failures (body limit, content type, JSON) as contract errors. */
function fromFastifyError(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error;
  const status = error.statusCode ?? 500;
  if (status === 413) {
    return new ApiError('PAYLOAD_TOO_LARGE', 'the request body is larger than the server accepts');
  }
  if (status >= 400 && status < 500) {
    return new ApiError('INVALID_INPUT', error.message || 'the request is malformed');
  }
  return toApiError(error);
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
    sendError(
      request,
      reply,
      new ApiError(
        'NOT_FOUND',
        `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`,
      ),
    );
  });
}
