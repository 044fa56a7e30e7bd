import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify';
import type { FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from '../http/access.js';
import { TRPC_PREFIX, retryAfterSeconds } from '../http/error-replies.js';
import type { RequestContext, ServerServices } from './context.js';
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
}

/**
 * Serves the router at /trpc. The context is built here from the Fastify request (auth and rate
 * limit were checked in an onRequest hook) but holds only plain data. The plugin registers its own pass-through
 * parser for multipart/form-data, so uploads reach tRPC as an untouched stream.
 */
export async function mountTrpc(app: FastifyInstance, options: TrpcMountOptions): Promise<void> {
  const { services, access } = options;
  const trpcOptions: FastifyTRPCPluginOptions<AppRouter>['trpcOptions'] = {
    router: appRouter,
    maxBodySize: options.maxBodySize,
    // The rate limit counts HTTP requests; a bounded batch keeps that close to counting calls.
    maxBatchSize: MAX_BATCH_SIZE,
    // Auth and rate limit ran in an onRequest hook (server.ts), before the body was read.
    createContext({ req, res }): Promise<RequestContext> {
      // The response's 'close' before it finished = the client went away.
      const disconnected = new AbortController();
      res.raw.once('close', () => {
        if (!res.raw.writableEnded) disconnected.abort();
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
    },
    responseMeta({ errors }) {
      for (const error of errors) {
        const retryAfterMs = apiErrorOf(error).retryAfterMs;
        if (retryAfterMs !== undefined) {
          return { headers: { 'retry-after': retryAfterSeconds(retryAfterMs) } };
        }
      }
      return {};
    },
    onError({ error, path, ctx }) {
      const apiError = apiErrorOf(error);
      const log = ctx?.log ?? app.log;
      if (apiError.code === 'INTERNAL' || apiError.code === 'INFERENCE_FAILED') {
        log.error({ err: error.cause ?? error, path, code: apiError.code }, 'procedure failed');
      } else if (apiError.code === 'CANCELLED') {
        log.info({ path, code: apiError.code }, 'request cancelled: the client disconnected');
      } else {
        log.info({ path, code: apiError.code }, apiError.message);
      }
    },
  };
  await app.register(fastifyTRPCPlugin, { prefix: TRPC_PREFIX, trpcOptions });
}

/** A header's value; a header sent twice counts as its first value. */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
