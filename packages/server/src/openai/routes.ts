import { ChatCompletionRequestSchema } from '@magma-som/schemas';
import type { ChatCompletion, ModelList } from '@magma-som/schemas';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/to-api-error.js';
import type { HttpApiDeps } from '../rest/deps.js';
import { timedAsk } from '../rest/deps.js';
import { clientGoneSignal, replyWithEventStream, sseEvent } from '../rest/event-stream.js';
import type { AskCall } from '../trpc/context.js';
import { chatRequests, openAIErrorBody, openAIErrorHandler } from './errors.js';
import { ChunkWriter, chatToAsk, completionOf, parsePath } from './translate.js';

/**
 * OpenAI-compatible routes (registered under /v1): `POST /chat/completions`, plain or streamed
 * as OpenAI's chunk events, and `GET /models`. A chat request becomes an ask and runs through
 * the same pipeline as tRPC's (auth, rate limit, queue, deadline, cancellation, metrics);
 * errors keep the contract's statuses and Retry-After but take OpenAI's body shape.
 */
export async function openAIRoutes(app: FastifyInstance, deps: HttpApiDeps): Promise<void> {
  app.setErrorHandler(openAIErrorHandler);

  app.get('/models', async (): Promise<ModelList> => ({
    object: 'list',
    data: [modelEntry(servedModel(deps))],
  }));

  app.get<{ Params: { id: string } }>('/models/:id', async (request) => {
    const id = servedModel(deps);
    if (request.params.id !== id) throw unknownModel();
    return modelEntry(id);
  });

  app.post('/chat/completions', async (request, reply) => {
    const model = servedModel(deps);
    const parsed = ChatCompletionRequestSchema.safeParse(request.body);
    if (!parsed.success) throw toApiError(parsed.error);
    const chat = parsed.data;
    chatRequests.set(request, chat);
    if (chat.model !== model) throw unknownModel();
    const ask = chatToAsk(chat);
    const call: AskCall = {
      fields: ask.fields,
      image: { kind: 'base64', value: ask.image },
      explicitMaxTokens: ask.explicitMaxTokens,
      requestId: request.id,
      signal: clientGoneSignal(reply),
    };
    // Image errors carry no field path of their own: point them at the image part.
    const naming = (error: unknown): unknown => {
      const apiError = toApiError(error);
      if (apiError.extra.issues !== undefined || !IMAGE_CODES.has(apiError.code)) return apiError;
      return new ApiError(apiError.code, apiError.message, {
        ...apiError.extra,
        issues: [{ path: parsePath(ask.imageParam), message: apiError.message }],
      });
    };
    const created = Math.floor(Date.now() / 1000);

    if (chat.stream !== true) {
      try {
        return completionOf(
          await timedAsk(deps, 'openai.chat', call),
          created,
        ) satisfies ChatCompletion;
      } catch (error) {
        throw naming(error);
      }
    }

    const chunks = new ChunkWriter(
      request.id,
      model,
      created,
      chat.stream_options?.include_usage === true,
    );
    const data = (payload: unknown): string => sseEvent(JSON.stringify(payload));
    const started = performance.now();
    try {
      return await replyWithEventStream(
        reply,
        (onToken) => deps.services.ask({ ...call, onToken }),
        {
          start: () => data(chunks.first()),
          token: (text) => data(chunks.text(text)),
          done: (response) => `${chunks.last(response).map(data).join('')}data: [DONE]\n\n`,
          // openai-node raises an APIError for an event carrying `error`.
          error: (error) => data(openAIErrorBody(error, request.id, chat)),
        },
        (outcome) => deps.services.recordCall('openai.chat', outcome, performance.now() - started),
      );
    } catch (error) {
      deps.services.recordCall('openai.chat', toApiError(error).code, performance.now() - started);
      throw naming(error);
    }
  });
}

const IMAGE_CODES: ReadonlySet<string> = new Set(['INVALID_IMAGE', 'PAYLOAD_TOO_LARGE']);

/** The id of the model being served; MODEL_NOT_READY while it loads. */
function servedModel(deps: HttpApiDeps): string {
  const engine = deps.state.engine;
  if (engine === undefined) throw deps.state.notReadyError();
  return engine.info.name;
}

function modelEntry(id: string) {
  // `created` is meant as a Unix time; the bundle carries none, and a fixed 0 keeps it stable.
  return { id, object: 'model' as const, created: 0, owned_by: 'magma-som' };
}

function unknownModel(): ApiError {
  return new ApiError(
    'NOT_FOUND',
    'this server does not serve that model; GET /v1/models lists the one it serves',
    {
      issues: [{ path: ['model'], message: 'unknown model' }],
    },
  );
}
