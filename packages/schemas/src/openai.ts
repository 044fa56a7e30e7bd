import { z } from 'zod';
import { DEFAULT_LIMITS } from './limits.js';
import { MarkListSchema } from './mark.js';
import {
  MarkReferenceSchema,
  MarkedImageSchema,
  MarkSizingSchema,
  ModelRefSchema,
  TimingsSchema,
  UsageSchema,
} from './ask.js';

/*
 * The OpenAI-compatible face of the server (POST /v1/chat/completions, GET /v1/models): the
 * subset of OpenAI's Chat Completions API this model can honour, plus two extension fields
 * (`marks` in requests, `magma` in responses). Field names follow OpenAI (snake_case).
 */

export const ChatTextPartSchema = z.strictObject({
  type: z.literal('text'),
  text: z.string(),
});

export const ChatImagePartSchema = z.strictObject({
  type: z.literal('image_url'),
  image_url: z.strictObject({
    /** A data URL (data:image/png;base64,...). Remote http(s) URLs are refused (SSRF). */
    url: z.string().min(1),
    detail: z.enum(['auto', 'low', 'high']).optional(),
  }),
});

export const ChatContentPartSchema = z.discriminatedUnion('type', [
  ChatTextPartSchema,
  ChatImagePartSchema,
]);

/**
 * A message. Every OpenAI role parses, so that a conversation the single-turn model cannot take
 * (system prompts, earlier turns) is refused with a message saying why, not a schema error.
 */
export const ChatMessageSchema = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(ChatContentPartSchema)]).nullable(),
  name: z.string().max(256).optional(),
});

const tokenCount = z.number().int().min(1).max(DEFAULT_LIMITS.maxTokens);
const stopText = z.string().min(1).max(DEFAULT_LIMITS.maxStopChars);

/** Extra Set-of-Mark settings, as in an ask (camelCase, as the contract spells them). */
export const ChatMagmaOptionsSchema = z.strictObject({
  markSizing: MarkSizingSchema.optional(),
  returnMarkedImage: z.boolean().optional(),
  markedImageFormat: z.enum(['png', 'jpeg']).optional(),
  suppressActionTokens: z.boolean().optional(),
});

export const ChatCompletionRequestSchema = z.strictObject({
  /** The id `GET /v1/models` lists. */
  model: z.string().min(1),
  /** One user message with one image and the question; see the HTTP API docs. */
  messages: z.array(ChatMessageSchema).min(1),
  max_tokens: tokenCount.nullable().optional(),
  /** OpenAI's newer name for max_tokens; give one of them. */
  max_completion_tokens: tokenCount.nullable().optional(),
  temperature: z.number().finite().min(0).max(2).nullable().optional(),
  top_p: z.number().finite().gt(0).max(1).nullable().optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .nullable()
    .optional(),
  stop: z
    .union([stopText, z.array(stopText).max(DEFAULT_LIMITS.maxStopSequences)])
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  /** Only one choice is generated. */
  n: z.literal(1).nullable().optional(),
  user: z.string().max(256).optional(),
  /** Extension: the marks to draw on the image, exactly as in an ask. */
  marks: MarkListSchema.optional(),
  /** Extension: other Set-of-Mark settings of an ask. */
  magma: ChatMagmaOptionsSchema.optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;
export type ChatCompletionRequestInput = z.input<typeof ChatCompletionRequestSchema>;

export const ChatFinishReasonSchema = z.enum(['stop', 'length']);

/** What a response adds beyond OpenAI's fields: the ask's response details. */
export const ChatMagmaExtensionSchema = z.strictObject({
  requestId: z.string(),
  references: z.array(MarkReferenceSchema),
  usage: UsageSchema,
  timings: TimingsSchema,
  model: ModelRefSchema,
  grid: z.strictObject({ rows: z.number().int().positive(), cols: z.number().int().positive() }),
  markedImage: MarkedImageSchema.optional(),
});

export const ChatUsageSchema = z.strictObject({
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
  total_tokens: z.number().int().min(0),
  /** As OpenAI reports prompt caching: prompt tokens served from the prefix cache. */
  prompt_tokens_details: z.strictObject({ cached_tokens: z.number().int().min(0) }),
});

export const ChatCompletionSchema = z.strictObject({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.strictObject({
      index: z.number().int().min(0),
      message: z.strictObject({
        role: z.literal('assistant'),
        content: z.string(),
        refusal: z.null(),
      }),
      finish_reason: ChatFinishReasonSchema,
      logprobs: z.null(),
    }),
  ),
  usage: ChatUsageSchema,
  magma: ChatMagmaExtensionSchema,
});
export type ChatCompletion = z.infer<typeof ChatCompletionSchema>;

/** One `data:` event of a streamed completion (the stream ends with `data: [DONE]`). */
export const ChatCompletionChunkSchema = z.strictObject({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.strictObject({
      index: z.number().int().min(0),
      delta: z.strictObject({
        role: z.literal('assistant').optional(),
        content: z.string().optional(),
      }),
      finish_reason: ChatFinishReasonSchema.nullable(),
      logprobs: z.null(),
    }),
  ),
  /** Only on the last chunk, with stream_options.include_usage (its `choices` is empty). */
  usage: ChatUsageSchema.nullable().optional(),
  /** On the chunk that carries finish_reason. */
  magma: ChatMagmaExtensionSchema.optional(),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunkSchema>;

export const ModelSchema = z.strictObject({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
});

export const ModelListSchema = z.strictObject({
  object: z.literal('list'),
  data: z.array(ModelSchema),
});
export type ModelList = z.infer<typeof ModelListSchema>;

/** OpenAI's error body. `code` is the contract's error code; `type` OpenAI's category. */
export const OpenAIErrorSchema = z.strictObject({
  error: z.strictObject({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
    /** The request id, to quote when reporting a problem. */
    request_id: z.string().optional(),
  }),
});
export type OpenAIError = z.infer<typeof OpenAIErrorSchema>;
