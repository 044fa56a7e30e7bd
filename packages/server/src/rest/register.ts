import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors/api-error.js';
import { apiErrorForStatus, fromFastifyError, sendError } from '../http/error-replies.js';
import { openAIErrorHandler, sendOpenAIError } from '../openai/errors.js';
import { openAIRoutes } from '../openai/routes.js';
import { openApiRoutes } from '../openapi/routes.js';
import type { HttpApiDeps } from './deps.js';
import { jobsRoutes } from './jobs-routes.js';
import { restRoutes } from './routes.js';

/** Paths under /v1 and the methods each serves (for 405 answers with Allow). */
export const V1_ROUTES: Readonly<Record<string, string>> = {
  '/v1/chat/completions': 'POST',
  '/v1/models': 'GET, HEAD',
  '/v1/som/ask': 'POST',
  '/v1/som/ask/stream': 'POST',
  '/v1/som/batches': 'POST',
};

/** Paths with a parameter and the methods each serves. */
const V1_PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/v1\/models\/[^/]+$/, 'GET, HEAD'],
  [/^\/v1\/som\/batches\/[^/]+$/, 'GET, HEAD'],
  [/^\/v1\/som\/batches\/[^/]+\/results$/, 'GET, HEAD'],
  [/^\/v1\/som\/batches\/[^/]+\/cancel$/, 'POST'],
];

/**
 * The plain HTTP APIs beside tRPC: OpenAI-compatible and REST routes under /v1 (API key and
 * rate limit as for tRPC, checked before the body is read), and GET /openapi.json (open, like
 * /health).
 */
export async function registerHttpApis(app: FastifyInstance, deps: HttpApiDeps): Promise<void> {
  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (request) => {
        if (request.method === 'OPTIONS') return;
        // The server-wide hook already asked the client to close the connection.
        if (deps.state.isShuttingDown) throw deps.state.notReadyError();
        await deps.access.check(request);
      });
      // Text bodies would reach the handlers as strings; a clear 415 is better.
      v1.removeContentTypeParser('text/plain');
      // Errors outside a route's own handler (method guard, auth, 404) in the path's shape.
      v1.setErrorHandler((error: FastifyError, request, reply) => {
        let apiError = error instanceof ApiError ? error : fromFastifyError(error);
        const allow = allowedOn(request.url);
        if (apiError.code === 'METHOD_NOT_ALLOWED' && allow !== undefined) {
          apiError = new ApiError(apiError.code, apiError.message, { ...apiError.extra, allow });
        }
        if (isOpenAIPath(request.url)) {
          openAIErrorHandler(apiError, request, reply);
          return;
        }
        if (apiError.code === 'INTERNAL') request.log.error({ err: error }, 'request failed');
        else request.log.info({ code: apiError.code }, apiError.message);
        sendError(request, reply, apiError);
      });
      v1.setNotFoundHandler((request, reply) => {
        const error = notFound(request);
        if (isOpenAIPath(request.url)) sendOpenAIError(request, reply, error);
        else sendError(request, reply, error);
      });
      await v1.register(async (openai) => openAIRoutes(openai, deps));
      await v1.register(async (rest) => restRoutes(rest, deps));
      await v1.register(async (jobs) => jobsRoutes(jobs, deps));
    },
    { prefix: '/v1' },
  );
  await app.register(async (docs) => openApiRoutes(docs, deps));
}

function isOpenAIPath(url: string): boolean {
  return !url.startsWith('/v1/som');
}

/** The methods a /v1 path serves; undefined for paths no route serves. */
function allowedOn(url: string): string | undefined {
  const path = url.split('?')[0]!;
  return V1_ROUTES[path] ?? V1_PATTERNS.find(([pattern]) => pattern.test(path))?.[1];
}

/** 405 with Allow for a known path asked with another method, else 404. */
function notFound(request: FastifyRequest): ApiError {
  const allow = allowedOn(request.url);
  if (allow === undefined) return apiErrorForStatus(404);
  return new ApiError('METHOD_NOT_ALLOWED', 'this HTTP method is not allowed on this route', {
    allow,
  });
}
