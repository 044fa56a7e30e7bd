import { ERROR_CATALOG } from '@magma-som/schemas';
import type { ChatCompletionRequest, OpenAIError } from '@magma-som/schemas';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors/api-error.js';
import { fromFastifyError, retryAfterSeconds } from '../http/error-replies.js';
import { chatParamOf } from './translate.js';

/** OpenAI's error `type` for a status: clients branch on these categories. */
export function openAIErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * A contract error in OpenAI's shape. `code` is the contract's code (the catalog in the HTTP
 * API docs), `param` the request field at fault in OpenAI's spelling, and the message lists the
 * field issues, since OpenAI's shape has no place for them.
 */
export function openAIErrorBody(
  error: ApiError,
  requestId: string,
  chat?: ChatCompletionRequest,
): OpenAIError {
  const issues = error.extra.issues ?? [];
  const described = issues.slice(0, 5).map((issue) => {
    const param = chatParamOf(issue.path, chat);
    return param === '' ? issue.message : `${param}: ${issue.message}`;
  });
  const message =
    described.length === 0
      ? error.message
      : issues.length === 1 && issues[0]!.message === error.message
        ? described[0]!
        : `${error.message}: ${described.join('; ')}`;
  const first = issues[0];
  return {
    error: {
      message,
      type: openAIErrorType(ERROR_CATALOG[error.code].httpStatus),
      param: first === undefined || first.path.length === 0 ? null : chatParamOf(first.path, chat),
      code: error.code,
      request_id: requestId,
    },
  };
}

/** Sends a contract error as OpenAI does, with the same status and headers as the contract. */
export function sendOpenAIError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: ApiError,
  chat?: ChatCompletionRequest,
): void {
  const info = ERROR_CATALOG[error.code];
  void reply.header('x-request-id', request.id);
  if (error.retryAfterMs !== undefined) {
    void reply.header('retry-after', retryAfterSeconds(error.retryAfterMs));
    // openai-node and the Python SDK prefer the millisecond form.
    void reply.header('retry-after-ms', String(Math.max(0, Math.ceil(error.retryAfterMs))));
  }
  // OpenAI's SDKs obey this over their own status rules.
  void reply.header('x-should-retry', String(info.retryable));
  if (error.extra.allow !== undefined) void reply.header('allow', error.extra.allow);
  void reply
    .code(info.httpStatus)
    .type('application/json')
    .send(openAIErrorBody(error, request.id, chat));
}

/** Each chat request as parsed, so its errors can name fields as the client spelled them. */
export const chatRequests = new WeakMap<FastifyRequest, ChatCompletionRequest>();

/** The error handler of the OpenAI-compatible routes. */
export function openAIErrorHandler(
  error: FastifyError | ApiError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const apiError = error instanceof ApiError ? error : fromFastifyError(error);
  if (apiError.code === 'INTERNAL' || apiError.code === 'INFERENCE_FAILED') {
    request.log.error({ err: error }, 'request failed');
  } else {
    request.log.info({ code: apiError.code }, apiError.message);
  }
  sendOpenAIError(request, reply, apiError, chatRequests.get(request));
}
