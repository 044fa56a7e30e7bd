import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors/api-error.js';
import { allowedMethods, apiErrorForStatus, isTrpcUrl } from './error-replies.js';

/** Longest request URL served; longer ones get 414 (Node's header limit still caps at 16 KiB). */
export const MAX_URL_LENGTH = 8 * 1024;

/** Methods this server ever serves; OPTIONS only as a CORS preflight. */
const SERVED_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'OPTIONS']);

/**
 * The first onRequest hook: refuses what no route can serve before anything else runs, so a
 * TRACE, a PUT or an over-long URL gets a typed 405/414 instead of reaching tRPC or the
 * body parsers.
 */
export function requestGuard(options: { readonly cors: boolean }) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const url = request.raw.url ?? '/';
    if (url.length > MAX_URL_LENGTH) throw apiErrorForStatus(414);
    // HTTP/1.1 requires Host; Node's own refusal would be a bare 400 without a body.
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new ApiError('INVALID_INPUT', 'the Host header is required in HTTP/1.1');
    }
    const method = request.method;
    const preflight =
      method === 'OPTIONS' &&
      options.cors &&
      request.headers['access-control-request-method'] !== undefined;
    if (preflight) return;
    const allow = allowedMethods(url);
    // A route registered for this method (other than tRPC's catch-all, and CORS's OPTIONS
    // catch-all) serves it as it is.
    const routed =
      request.routeOptions.url !== undefined && !isTrpcUrl(url) && method !== 'OPTIONS';
    const allowed =
      routed ||
      (allow === undefined
        ? SERVED_METHODS.has(method) && method !== 'OPTIONS'
        : allow.split(', ').includes(method));
    if (!allowed) {
      throw new ApiError('METHOD_NOT_ALLOWED', 'this HTTP method is not allowed on this route', {
        allow: allow ?? 'GET, HEAD, POST',
      });
    }
  };
}

export { isTrpcUrl };
