import { z } from 'zod';
import { DEFAULT_LIMITS } from './limits.js';
import { ImageInputSchema } from './image.js';
import { MarkListSchema, MarkSchema } from './mark.js';
import { GenerationOptionsSchema } from './generation.js';

export const MarkedImageFormatSchema = z.enum(['png', 'jpeg']);
export const MarkSizingSchema = z.enum(['model', 'magma']);
export type MarkSizingMode = z.infer<typeof MarkSizingSchema>;

/** Everything in an ask except the image: the fields sent beside a binary upload. */
export const AskFieldsSchema = z.strictObject({
  prompt: z
    .string()
    .trim()
    .min(1, 'prompt is empty')
    .max(
      DEFAULT_LIMITS.maxPromptChars,
      `prompt is longer than ${DEFAULT_LIMITS.maxPromptChars} characters`,
    ),
  marks: MarkListSchema.default([]),
  options: GenerationOptionsSchema.default(GenerationOptionsSchema.parse({})),
  /** Return the image exactly as the model saw it (marks drawn), in this format. */
  returnMarkedImage: z.boolean().default(false),
  markedImageFormat: MarkedImageFormatSchema.default('png'),
  /**
   * How big labels and outlines are drawn. 'model' (default): large enough for the model to read
   * after its processor shrinks the image (at least the bundle's declared minimum in model pixels,
   * never smaller than Magma's rule). 'magma': Magma's plain rule in image pixels (4% of the
   * shorter side, 16-30 px labels, 2 px outlines), the original look.
   */
  markSizing: MarkSizingSchema.default('model'),
  /**
   * Use the server's prefix cache (default true): repeated questions about one image with the
   * same marks reuse its vision features and the model's state up to the question, and answer
   * the same. false: neither read nor stored.
   */
  cache: z.boolean().default(true),
});

/** A Set-of-Mark question: an image, its marks, and a prompt that names them ("#1"). */
export const AskRequestSchema = AskFieldsSchema.extend({
  image: ImageInputSchema,
});

export type AskFields = z.infer<typeof AskFieldsSchema>;
export type AskFieldsInput = z.input<typeof AskFieldsSchema>;
export type AskRequest = z.infer<typeof AskRequestSchema>;
/** What a caller writes: defaults may be left out. */
export type AskRequestInput = z.input<typeof AskRequestSchema>;

export const FinishReasonSchema = z.enum(['stop', 'length', 'cancelled']);
export type FinishReason = z.infer<typeof FinishReasonSchema>;

/** A mark the answer names, as "Mark: N" (Magma's form) or "#N". */
export const MarkReferenceSchema = z.strictObject({
  label: z.number().int().min(0),
  /** The text that named it, e.g. "Mark: 2" or "#2". */
  text: z.string(),
  /** Character offset of `text` in the answer. */
  offset: z.number().int().min(0),
  /** The submitted mark with that label; absent when the answer names a label nobody drew. */
  mark: MarkSchema.optional(),
});
export type MarkReference = z.infer<typeof MarkReferenceSchema>;

const milliseconds = z.number().finite().min(0);

export const UsageSchema = z.strictObject({
  /** Tokens fed to the model, image positions included. */
  promptTokens: z.number().int().min(0),
  /** Visual tokens of the image (part of promptTokens). */
  imageTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  totalTokens: z.number().int().min(0),
  /**
   * Prompt tokens taken from the prefix cache instead of being computed (the system prompt and
   * the image, on a repeated question about the same image and marks); part of promptTokens.
   * Absent from older servers: 0.
   */
  cachedTokens: z.number().int().min(0).default(0),
});

export const TimingsSchema = z.strictObject({
  /** Waiting for the engine. */
  queueMs: milliseconds,
  /** Decoding the image and drawing the marks. */
  imageMs: milliseconds,
  /** Crop grid, resize and normalisation. */
  preprocessMs: milliseconds,
  visionMs: milliseconds,
  prefillMs: milliseconds,
  decodeMs: milliseconds,
  totalMs: milliseconds,
});

export const MarkedImageSchema = z.strictObject({
  format: MarkedImageFormatSchema,
  /** Base64 of the encoded image. */
  data: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});

export const ModelRefSchema = z.strictObject({
  id: z.string(),
  revision: z.string(),
});

export const AskResponseSchema = z.strictObject({
  requestId: z.string(),
  answer: z.string(),
  references: z.array(MarkReferenceSchema),
  finishReason: FinishReasonSchema,
  usage: UsageSchema,
  timings: TimingsSchema,
  model: ModelRefSchema,
  /** Crop grid the image was processed with (rows x cols). */
  grid: z.strictObject({ rows: z.number().int().positive(), cols: z.number().int().positive() }),
  markedImage: MarkedImageSchema.optional(),
});

export type Usage = z.infer<typeof UsageSchema>;
export type Timings = z.infer<typeof TimingsSchema>;
export type MarkedImage = z.infer<typeof MarkedImageSchema>;
export type AskResponse = z.infer<typeof AskResponseSchema>;

/** Events of a streamed ask: text as it is generated, then the whole response. */
export const AskStreamEventSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('token'), text: z.string() }),
  z.strictObject({ type: z.literal('done'), response: AskResponseSchema }),
]);
export type AskStreamEvent = z.infer<typeof AskStreamEventSchema>;
