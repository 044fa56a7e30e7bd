import { LogController } from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * One access-log line per request, written when it ends, with the request (method, URL,
 * client), the status and the time taken, as pino-http writes it; Fastify's default writes two
 * ("incoming request" on arrival, then "request completed"). Log lines are written
 * synchronously on the event loop: into a pipe (a container's stdout) each cost 0.1-0.15 ms of
 * every request's latency here. The arrival line is kept at debug level, for a request that
 * never ends.
 */
export class AccessLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    const line = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}
