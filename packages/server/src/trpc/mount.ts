import type { TRPCError } from '@trpc/server';
import { fastifyRequestHandler } from '@trpc/server/adapters/fastify';
import type { FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessControl } from '../http/access.js';
import { TRPC_PREFIX, retryAfterSeconds } from '../http/error-replies.js';
import { OFFLOAD_JSON_BYTES } from '../http/json-body.js';
import type { JsonParser } from '../http/json-body.js';
import { utf8Text } from '../http/json-text.js';
import type { RequestContext, ServerServices } from './context.js';
import { ParsedJsonBody, answerDirectCall, isDirectCallRequest } from './direct-call.js';
import { apiErrorOf } from './errors.js';
import { appRouter } from './router.js';
import type { AppRouter } from './router.js';

/** Most calls in one batched HTTP request. */
export const MAX_BATCH_SIZE = 16;

export interface TrpcMountOptions {
  readonly services: ServerServices;
  readonly access: AccessControl;
  /** Limit of streamed (multipart) bodies; JSON bodies are limited by Fastify's bodyLimit. */
  readonly maxBodySize: number;
  /** Parses large JSON bodies off the main thread (the image pool). */
  readonly jsonParser: JsonParser;
}

/**
 * Serves the router at /trpc, as tRPC's Fastify plugin does (the same body parsers and route),
 * with plain single asks answered by answerDirectCall and everything else by tRPC's handler. The
 * context is built here from the Fastify request (auth and rate limit were checked in an
 * onRequest hook) but holds only plain data. Multipart bodies reach tRPC as an untouched stream.
 */
export async function mountTrpc(app: FastifyInstance, options: TrpcMountOptions): Promise<void> {
  const { services, access } = options;
  const createContext = (req: FastifyRequest, reply: FastifyReply): Promise<RequestContext> => {
    // The response's 'close' before it finished = the client went away.
    const disconnected = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) disconnected.abort();
    });
    return Promise.resolve({
      requestId: req.id,
      signal: disconnected.signal,
      clientKey: access.clientKey(req),
      idempotencyKey: headerValue(req.headers['idempotency-key']),
      ip: req.ip,
      log: req.log,
      services,
    });
  };
  const errorHeaders = (error: TRPCError): Record<string, string> => {
    const retryAfterMs = apiErrorOf(error).retryAfterMs;
    return retryAfterMs === undefined ? {} : { 'retry-after': retryAfterSeconds(retryAfterMs) };
  };
  const onError = ({
    error,
    path,
    ctx,
  }: {
    error: TRPCError;
    path?: string;
    ctx?: RequestContext;
  }) => {
    const apiError = apiErrorOf(error);
    const log = ctx?.log ?? app.log;
    if (apiError.code === 'INTERNAL' || apiError.code === 'INFERENCE_FAILED') {
      log.error({ err: error.cause ?? error, path, code: apiError.code }, 'procedure failed');
    } else if (apiError.code === 'CANCELLED') {
      log.info({ path, code: apiError.code }, 'request cancelled: the client disconnected');
    } else {
      log.info({ path, code: apiError.code }, apiError.message);
    }
  };
  const trpcOptions: FastifyTRPCPluginOptions<AppRouter>['trpcOptions'] = {
    router: appRouter,
    maxBodySize: options.maxBodySize,
    // The rate limit counts HTTP requests; a bounded batch keeps that close to counting calls.
    maxBatchSize: MAX_BATCH_SIZE,
    createContext: ({ req, res }) => createContext(req, res),
    responseMeta({ errors }) {
      for (const error of errors) {
        const headers = errorHeaders(error);
        if (Object.keys(headers).length > 0) return { headers };
      }
      return {};
    },
    onError,
  };
  await app.register(
    (scope, _options, done) => {
      // tRPC reads the bodies itself: JSON as text, multipart as the raw stream. A large body
      // of a direct call is parsed in a worker instead (http/json-body.ts); one that is not
      // JSON comes back and goes to tRPC as text, for tRPC's own error.
      scope.removeContentTypeParser('application/json');
      scope.addContentTypeParser(
        'application/json',
        { parseAs: 'buffer' },
        async (req: FastifyRequest, body: Buffer) => {
          const { path } = req.params as { path: string };
          if (body.byteLength >= OFFLOAD_JSON_BYTES && isDirectCallRequest(req, path)) {
            const parsed = await options.jsonParser.parseJson(body);
            return parsed.ok ? new ParsedJsonBody(parsed.value) : utf8Text(parsed.bytes);
          }
          return body.toString('utf8');
        },
      );
      scope.removeContentTypeParser('multipart/form-data');
      scope.addContentTypeParser('multipart/form-data', {}, (_req, body, next) => next(null, body));
      scope.all<{ Params: { path: string } }>('/:path', async (req, reply) => {
        const { path } = req.params;
        if (await answerDirectCall(req, reply, path, { createContext, errorHeaders, onError }))
          return;
        await fastifyRequestHandler({ ...trpcOptions, req, res: reply, path });
      });
      done();
    },
    { prefix: TRPC_PREFIX },
  );
}

/** A header's value; a header sent twice counts as its first value. */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
