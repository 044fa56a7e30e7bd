import {
  ERROR_CATALOG,
  ERROR_CODES,
  JOB_LIMITS,
  contractJsonSchemas,
  errorData,
} from '@magma-som/schemas';
import type { ErrorCode } from '@magma-som/schemas';
import { openAIErrorType } from '../openai/errors.js';
import { askExamples, batchExamples, chatExamples } from './examples.js';

export interface OpenApiOptions {
  readonly version: string;
  /** The id GET /v1/models lists; the examples use it. */
  readonly modelId: string;
}

/** The bundled model's id: the committed docs/openapi.json is generated with it. */
export const DEFAULT_MODEL_ID = 'magma-tiny-som';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, extra: Json = {}): Json => ({
  'application/json': { schema, ...extra },
});

/** Errors each kind of /v1 route can answer with (beyond 500). */
const ASK_ERRORS: readonly ErrorCode[] = [
  'INVALID_INPUT',
  'INVALID_IMAGE',
  'INVALID_MARKS',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'OVERLOADED',
  'MODEL_NOT_READY',
  'DEADLINE_EXCEEDED',
  'INTERNAL',
];
const LIST_ERRORS: readonly ErrorCode[] = ['UNAUTHORIZED', 'RATE_LIMITED', 'MODEL_NOT_READY'];
/** Errors of the batch routes that read or change one batch. */
const BATCH_ERRORS: readonly ErrorCode[] = [
  'INVALID_INPUT',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'RATE_LIMITED',
  'INTERNAL',
  'JOBS_NOT_ENABLED',
];
const BATCH_CREATE_ERRORS: readonly ErrorCode[] = [
  'INVALID_INPUT',
  'UNAUTHORIZED',
  'IMAGE_NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'IDEMPOTENCY_KEY_REUSED',
  'RATE_LIMITED',
  'OVERLOADED',
  'INTERNAL',
  'JOBS_NOT_ENABLED',
];
/** An example batch id for the documented path parameter. */
const EXAMPLE_BATCH_ID = 'batch_Qm9vWkF0YjRoZ2V4aXN0cw';

/**
 * The OpenAPI 3.1 document of the plain HTTP API: OpenAI-compatible routes, REST, and the open
 * routes (/health, /ready, /metrics). Component schemas are the contract's JSON Schema
 * (`@magma-som/schemas`, `json/*.json`), so the document cannot disagree with the validators.
 * Pure and deterministic: the committed docs/openapi.json is this with the default model id.
 */
export function buildOpenApiDocument(options: OpenApiOptions): Json {
  const { version, modelId } = options;
  return {
    openapi: '3.1.1',
    info: {
      title: 'magma-som HTTP API',
      version,
      summary: 'Set-of-Mark questions to a Magma vision-language model.',
      description: [
        'Draw numbered boxes ("marks") on an image and ask the model about them ("What is #2?").',
        'Three ways in besides the tRPC API used by `@magma-som/sdk`: OpenAI-compatible chat',
        'completions (marks in the `marks` extension field), plain REST with JSON or multipart',
        'bodies, and server-sent events for streamed answers. See docs/HTTP-API.md.',
        '',
        'The model is single-turn: a chat request carries exactly one user message with one',
        'image (a data URL; remote URLs are refused) and the question as text parts.',
        '',
        'Errors: REST and open routes answer with `ErrorData`, OpenAI-compatible routes with',
        "OpenAI's `{error:{message,type,param,code}}` whose `code` is the same contract code.",
        'The status is the same on both. 429 and 503 carry Retry-After (seconds).',
        '',
        errorCatalogTable(),
      ].join('\n'),
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: 'http://127.0.0.1:8080', description: 'a local server (npm start)' }],
    tags: [
      { name: 'openai', description: 'OpenAI-compatible' },
      { name: 'rest', description: 'Plain REST and server-sent events' },
      {
        name: 'jobs',
        description:
          'Batch jobs: many asks answered by worker processes through Redis (needs MAGMA_REDIS_URL; ' +
          'else JOBS_NOT_ENABLED). See docs/DEPLOYMENT.md.',
      },
      { name: 'operations', description: 'Probes, metrics and this document (no API key)' },
    ],
    security: [{}, { bearerAuth: [] }, { apiKeyHeader: [] }],
    'x-error-catalog': Object.fromEntries(
      ERROR_CODES.map((code) => {
        const { httpStatus, retryable, description } = ERROR_CATALOG[code];
        return [
          code,
          { httpStatus, retryable, openaiType: openAIErrorType(httpStatus), description },
        ];
      }),
    ),
    paths: {
      '/v1/chat/completions': {
        post: {
          tags: ['openai'],
          operationId: 'createChatCompletion',
          summary: 'Answer a question about an image (OpenAI chat completions)',
          description:
            'One user message: its text parts are the question, its one `image_url` part (a data ' +
            'URL) the image. `marks` (an extension) are drawn on the image as for an ask; without ' +
            'them the image is used as it is. `max_tokens`/`max_completion_tokens`, `temperature`, ' +
            '`top_p`, `seed` and `stop` map to the ask options. With `stream: true` the answer ' +
            'arrives as `chat.completion.chunk` events ending with `data: [DONE]`; errors before ' +
            'the first chunk are ordinary error responses, later ones an event with `error`.',
          requestBody: {
            required: true,
            content: json(ref('ChatCompletionRequest'), { examples: chatExamples(modelId) }),
          },
          responses: {
            '200': {
              description: 'The answer: a completion, or (stream: true) an event stream of chunks.',
              headers: requestIdHeader(),
              content: {
                ...json(ref('ChatCompletion')),
                'text/event-stream': {
                  schema: { type: 'string' },
                  'x-event-data': ref('ChatCompletionChunk'),
                },
              },
            },
            ...errorResponses(ASK_ERRORS, 'OpenAIError'),
          },
        },
      },
      '/v1/models': {
        get: {
          tags: ['openai'],
          operationId: 'listModels',
          summary: 'The model this server serves',
          responses: {
            '200': {
              description: 'One model.',
              headers: requestIdHeader(),
              content: json(ref('ModelList')),
            },
            ...errorResponses(LIST_ERRORS, 'OpenAIError'),
          },
        },
      },
      '/v1/models/{id}': {
        get: {
          tags: ['openai'],
          operationId: 'retrieveModel',
          summary: 'One model by id',
          parameters: [
            {
              name: 'id',
              in: 'path',
              required: true,
              schema: { type: 'string' },
              example: modelId,
            },
          ],
          responses: {
            '200': {
              description: 'The model.',
              headers: requestIdHeader(),
              content: json({ $ref: '#/components/schemas/ModelList/properties/data/items' }),
            },
            ...errorResponses([...LIST_ERRORS, 'NOT_FOUND'], 'OpenAIError'),
          },
        },
      },
      '/v1/som/ask': {
        post: {
          tags: ['rest'],
          operationId: 'ask',
          summary: 'Answer a Set-of-Mark question',
          description:
            'JSON (`AskRequest`, the image as base64 or a data URL) or multipart/form-data (the ' +
            'image as a file part, no base64; limited by MAGMA_MAX_UPLOAD_BYTES).',
          requestBody: askRequestBody(),
          responses: {
            '200': {
              description: 'The answer.',
              headers: requestIdHeader(),
              content: json(ref('AskResponse')),
            },
            ...errorResponses(ASK_ERRORS, 'ErrorData'),
          },
        },
      },
      '/v1/som/ask/stream': {
        post: {
          tags: ['rest'],
          operationId: 'askStream',
          summary: 'Answer a Set-of-Mark question as server-sent events',
          description:
            'Events `token` (`{type, text}`) as text is generated, then `done` (`{type, response}`) ' +
            'or `error` (`{type, error}`); the event name repeats `type`. Errors before the first ' +
            'event are ordinary error responses with their status.',
          requestBody: askRequestBody(),
          responses: {
            '200': {
              description: 'An event stream.',
              headers: requestIdHeader(),
              content: {
                'text/event-stream': {
                  schema: { type: 'string' },
                  'x-event-data': ref('AskSseEvent'),
                },
              },
            },
            ...errorResponses(ASK_ERRORS, 'ErrorData'),
          },
        },
      },
      ...batchPaths(),
      '/health': openRoute('health', 'The process is alive', ref('Health')),
      '/ready': {
        get: {
          ...openRoute('ready', 'The model is loaded and warm', ref('Readiness')).get,
          responses: {
            '200': { description: 'Ready.', content: json(ref('Readiness')) },
            '503': {
              description: 'Loading, warming up or shutting down.',
              headers: retryAfterHeader(),
              content: json(ref('Readiness')),
            },
          },
        },
      },
      '/metrics': {
        get: {
          tags: ['operations'],
          operationId: 'metrics',
          summary: 'Prometheus metrics',
          security: [{}],
          responses: {
            '200': {
              description: 'Prometheus text exposition format.',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['operations'],
          operationId: 'openapi',
          summary: 'This document',
          security: [{}],
          responses: {
            '200': {
              description: 'The OpenAPI 3.1 document.',
              content: json({ type: 'object' }),
            },
          },
        },
      },
    },
    components: {
      schemas: contractJsonSchemas(),
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key, when the server runs with MAGMA_API_KEYS (else none is needed).',
        },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      },
    },
  };
}

/** The REST routes of batch jobs (rest/jobs-routes.ts). */
function batchPaths(): Json {
  const batchId = {
    name: 'batchId',
    in: 'path',
    required: true,
    description: 'The id `create` answered.',
    schema: { type: 'string', pattern: '^batch_[A-Za-z0-9_-]{22}$' },
    example: EXAMPLE_BATCH_ID,
  };
  const status = (description: string): Json => ({
    description,
    headers: requestIdHeader(),
    content: json(ref('BatchStatus')),
  });
  return {
    '/v1/som/batches': {
      post: {
        tags: ['jobs'],
        operationId: 'createBatch',
        summary: 'Submit many asks as one batch',
        description:
          'Each item is an `AskRequest` (images inline as base64 or data URLs, or the id of an ' +
          'upload this server holds); the body may be up to MAGMA_JOB_MAX_BODY_BYTES and hold up ' +
          'to MAGMA_JOB_MAX_ITEMS items. Workers run the items; poll the status and read the ' +
          'results. With an `idempotencyKey`, the same key and items answer the batch made the ' +
          'first time (resume after an interruption); other items under a used key are refused.',
        requestBody: {
          required: true,
          content: json(ref('BatchCreateRequest'), { examples: batchExamples() }),
        },
        responses: {
          '202': status('The batch, queued (or the batch an earlier request made with the key).'),
          ...errorResponses(BATCH_CREATE_ERRORS, 'ErrorData'),
        },
      },
    },
    '/v1/som/batches/{batchId}': {
      get: {
        tags: ['jobs'],
        operationId: 'batchStatus',
        summary: 'Progress of a batch',
        parameters: [batchId],
        responses: {
          '200': status('Its state and counts (done, failed, cancelled, pending of total).'),
          ...errorResponses(BATCH_ERRORS, 'ErrorData'),
        },
      },
    },
    '/v1/som/batches/{batchId}/results': {
      get: {
        tags: ['jobs'],
        operationId: 'batchResults',
        summary: 'A page of results, in item order',
        description:
          'Results of items `cursor` .. `cursor + limit - 1` that have one; `pending` counts those ' +
          'still running. Read the next page from `nextCursor` (absent on the last page).',
        parameters: [
          batchId,
          {
            name: 'cursor',
            in: 'query',
            description: 'First item index of the page.',
            schema: { type: 'integer', minimum: 0, default: 0 },
          },
          {
            name: 'limit',
            in: 'query',
            description: 'Items per page.',
            schema: {
              type: 'integer',
              minimum: 1,
              maximum: JOB_LIMITS.maxPageSize,
              default: JOB_LIMITS.defaultPageSize,
            },
          },
        ],
        responses: {
          '200': {
            description: 'One page.',
            headers: requestIdHeader(),
            content: json(ref('BatchResultsPage')),
          },
          ...errorResponses(BATCH_ERRORS, 'ErrorData'),
        },
      },
    },
    '/v1/som/batches/{batchId}/cancel': {
      post: {
        tags: ['jobs'],
        operationId: 'cancelBatch',
        summary: 'Cancel what has not run yet',
        description:
          'Every item without a result gets a CANCELLED result (an item running at that moment ' +
          'finishes, but its answer is dropped) and the batch ends as `cancelled`. A finished ' +
          'batch is answered as it is.',
        parameters: [batchId],
        responses: {
          '200': status('The batch after cancelling.'),
          ...errorResponses(BATCH_ERRORS, 'ErrorData'),
        },
      },
    },
  };
}

function askRequestBody(): Json {
  return {
    required: true,
    content: {
      ...json(ref('AskRequest'), { examples: askExamples() }),
      'multipart/form-data': {
        schema: {
          type: 'object',
          required: ['image', 'prompt'],
          properties: {
            image: {
              type: 'string',
              contentMediaType: 'application/octet-stream',
              description: 'PNG, JPEG, WebP or GIF file',
            },
            prompt: { type: 'string' },
            marks: {
              type: 'string',
              description: 'JSON of MarkList',
              contentMediaType: 'application/json',
            },
            options: {
              type: 'string',
              description: 'JSON of GenerationOptions',
              contentMediaType: 'application/json',
            },
            returnMarkedImage: { type: 'string', enum: ['true', 'false'] },
            markedImageFormat: { type: 'string', enum: ['png', 'jpeg'] },
            markSizing: { type: 'string', enum: ['model', 'magma'] },
          },
          additionalProperties: false,
        },
      },
    },
  };
}

function openRoute(operationId: string, summary: string, schema: Json): { get: Json } {
  return {
    get: {
      tags: ['operations'],
      operationId,
      summary,
      security: [{}],
      responses: { '200': { description: summary, content: json(schema) } },
    },
  };
}

function requestIdHeader(): Json {
  return {
    'x-request-id': {
      description: "The request's id (the client's x-request-id when safe, else a new UUID).",
      schema: { type: 'string' },
    },
  };
}

function retryAfterHeader(): Json {
  return { 'retry-after': { description: 'Seconds to wait.', schema: { type: 'string' } } };
}

/** One response per status, listing its codes, with an example of each. */
function errorResponses(codes: readonly ErrorCode[], shape: 'ErrorData' | 'OpenAIError'): Json {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_CATALOG[code].httpStatus;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => {
      const retry = list.some(
        (code) => code === 'RATE_LIMITED' || code === 'OVERLOADED' || code === 'MODEL_NOT_READY',
      );
      return [
        String(status),
        {
          description: list.map((code) => `${code}: ${ERROR_CATALOG[code].description}`).join(' '),
          headers: { ...requestIdHeader(), ...(retry ? retryAfterHeader() : {}) },
          content: json(ref(shape), {
            examples: Object.fromEntries(
              list.map((code) => [code, { value: errorExample(code, shape) }]),
            ),
          }),
        },
      ];
    }),
  );
}

function errorExample(code: ErrorCode, shape: 'ErrorData' | 'OpenAIError'): Json {
  const retryAfterMs =
    ERROR_CATALOG[code].httpStatus === 429 || ERROR_CATALOG[code].httpStatus === 503
      ? 5000
      : undefined;
  const data = errorData(code, ERROR_CATALOG[code].description, {
    requestId: '4f1c2d9e-8a7b-4c3d-9e2f-1a2b3c4d5e6f',
    retryAfterMs,
  });
  if (shape === 'ErrorData') return data;
  return {
    error: {
      message: data.message,
      type: openAIErrorType(data.httpStatus),
      param: null,
      code,
      request_id: data.requestId,
    },
  };
}

function errorCatalogTable(): string {
  const rows = ERROR_CODES.map((code) => {
    const { httpStatus, retryable, description } = ERROR_CATALOG[code];
    return `| ${code} | ${httpStatus} | ${openAIErrorType(httpStatus)} | ${retryable ? 'yes' : 'no'} | ${description} |`;
  });
  return [
    '| code | HTTP | OpenAI type | retryable | meaning |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
