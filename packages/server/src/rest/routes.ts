import { AskRequestSchema } from '@magma-som/schemas';
import type { AskResponse, AskSseEvent } from '@magma-som/schemas';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { toApiError } from '../errors/to-api-error.js';
import type { AskCall } from '../trpc/context.js';
import { headerValue } from '../trpc/mount.js';
import type { HttpApiDeps } from './deps.js';
import { hasExplicitMaxTokens, timedAsk } from './deps.js';
import { clientGoneSignal, replyWithEventStream, sseEvent } from './event-stream.js';
import type { EventStreamFormat } from './event-stream.js';
import { readMultipartAsk } from './multipart.js';

/** Room for the multipart envelope and the text fields beside the image file. */
const MULTIPART_SLACK = 1024 * 1024;

/**
 * Plain REST for clients without tRPC: `POST /v1/som/ask` (JSON AskRequest, or multipart with
 * the image as a file) and `POST /v1/som/ask/stream` (the same, answered as server-sent events
 * `token`, `done`, `error`). Errors are the contract's ErrorData with its HTTP status (the
 * server's default error replies). Registered under /v1 (see register.ts).
 */
export async function restRoutes(app: FastifyInstance, deps: HttpApiDeps): Promise<void> {
  // Only in this plugin: the whole body in memory, limited like the tRPC upload path.
  app.addContentTypeParser(
    'multipart/form-data',
    { parseAs: 'buffer', bodyLimit: deps.config.maxUploadBytes + MULTIPART_SLACK },
    (_request, body, done) => done(null, body),
  );

  app.post('/som/ask', async (request, reply): Promise<AskResponse> => {
    const call = await askCallOf(request, clientGoneSignal(reply));
    return timedAsk(deps, 'rest.ask', {
      ...call,
      idempotencyKey: headerValue(request.headers['idempotency-key']),
      clientKey: deps.access.clientKey(request),
    });
  });

  app.post('/som/ask/stream', async (request, reply) => {
    const call = await askCallOf(request, clientGoneSignal(reply));
    const started = performance.now();
    try {
      return await replyWithEventStream(
        reply,
        (onToken) => deps.services.ask({ ...call, onToken }),
        restEvents(request.id),
        (outcome) =>
          deps.services.recordCall('rest.askStream', outcome, performance.now() - started),
      );
    } catch (error) {
      deps.services.recordCall(
        'rest.askStream',
        toApiError(error).code,
        performance.now() - started,
      );
      throw error;
    }
  });
}

const event = (payload: AskSseEvent): string => sseEvent(JSON.stringify(payload), payload.type);

function restEvents(requestId: string): EventStreamFormat {
  return {
    start: () => '',
    token: (text) => event({ type: 'token', text }),
    done: (response) => event({ type: 'done', response }),
    error: (error) => event({ type: 'error', error: error.toData(requestId) }),
  };
}

/** The ask in a JSON or multipart body, validated against the contract. */
async function askCallOf(request: FastifyRequest, signal: AbortSignal): Promise<AskCall> {
  const requestId = request.id;
  if (Buffer.isBuffer(request.body)) {
    const upload = await readMultipartAsk(request.body, request.headers['content-type'] ?? '');
    return {
      fields: upload.fields,
      image: { kind: 'bytes', bytes: upload.bytes },
      explicitMaxTokens: upload.explicitMaxTokens,
      requestId,
      signal,
    };
  }
  const parsed = AskRequestSchema.safeParse(request.body);
  if (!parsed.success) throw toApiError(parsed.error);
  const { image, ...fields } = parsed.data;
  const options = (request.body as { options?: unknown }).options;
  return {
    fields,
    image: { kind: 'base64', value: image, checked: true },
    explicitMaxTokens: hasExplicitMaxTokens(options),
    requestId,
    signal,
  };
}
