import { PassThrough } from 'node:stream';
import type { AskResponse } from '@magma-som/schemas';
import type { FastifyReply } from 'fastify';
import type { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/to-api-error.js';
import { streamTokens } from '../trpc/token-stream.js';

/** How one kind of stream spells its events (the REST stream and OpenAI's chunks differ). */
export interface EventStreamFormat {
  /** Sent once, before the first text (OpenAI's role chunk); may be empty. */
  start(): string;
  token(text: string): string;
  done(response: AskResponse): string;
  error(error: ApiError): string;
}

/** A server-sent event; `data` must be one line (JSON is). */
export function sseEvent(data: string, event?: string): string {
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${data}\n\n`;
}

/**
 * An abort signal for "the client went away": the response closed before it was finished.
 * The pipeline turns it into CANCELLED and frees the engine slot.
 */
export function clientGoneSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableEnded) controller.abort();
  });
  return controller.signal;
}

/**
 * Runs an ask that reports text through `onToken` and answers it as server-sent events.
 * The status line waits for the first text (or the end): every failure before generation
 * starts (validation, image, marks, queue full, not ready, deadline in the queue) is thrown
 * to the route's error handler and answered with its real HTTP status and Retry-After; only
 * failures after text has been sent travel as an error event.
 */
export async function replyWithEventStream(
  reply: FastifyReply,
  work: (onToken: (text: string) => void) => Promise<AskResponse>,
  format: EventStreamFormat,
  onFinished: (outcome: string) => void,
): Promise<FastifyReply> {
  const tokens = streamTokens(work);
  // Throws before anything is sent: the route's error handler answers with a status.
  const first = await tokens.next();

  const body = new PassThrough();
  // A client that goes away mid-stream makes Fastify destroy the body; its errors are expected
  // then and must not become an unhandled 'error' event.
  body.on('error', () => {});
  const write = (chunk: string): void => {
    if (chunk.length > 0 && !body.destroyed && !body.writableEnded) body.write(chunk);
  };
  void reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    // Proxies such as nginx would otherwise buffer the stream and defeat its purpose.
    .header('x-accel-buffering', 'no')
    .send(body);

  void (async () => {
    let outcome = 'ok';
    try {
      write(format.start());
      let next = first;
      while (next.done !== true) {
        write(format.token(next.value));
        next = await tokens.next();
      }
      write(format.done(next.value));
    } catch (error) {
      const apiError = toApiError(error);
      outcome = apiError.code;
      if (apiError.code === 'INTERNAL' || apiError.code === 'INFERENCE_FAILED') {
        reply.log.error({ err: error }, 'streamed answer failed');
      } else {
        reply.log.info({ code: apiError.code }, apiError.message);
      }
      write(format.error(apiError));
    } finally {
      body.end();
      onFinished(outcome);
    }
  })();
  return reply;
}
