import { z } from 'zod';
import { DEFAULT_LIMITS } from './limits.js';

/**
 * How the answer is generated. Defaults follow Magma's own settings: greedy decoding
 * (temperature 0), up to 128 new tokens, robot action tokens suppressed for QA.
 */
export const GenerationOptionsSchema = z.strictObject({
  maxTokens: z.number().int().min(1).max(DEFAULT_LIMITS.maxTokens).default(128),
  /** 0 = greedy (deterministic). Above 0 samples; pass `seed` to make it reproducible. */
  temperature: z.number().finite().min(0).max(2).default(0),
  /** Nucleus sampling mass; used only when temperature > 0. */
  topP: z.number().finite().gt(0).max(1).default(1),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional(),
  /** Generation stops when the answer ends with one of these; the stop text is not returned. */
  stop: z
    .array(z.string().min(1).max(DEFAULT_LIMITS.maxStopChars))
    .max(DEFAULT_LIMITS.maxStopSequences)
    .default([]),
  /** Keep Magma's robot action tokens (ids in the model's action range) out of answers. */
  suppressActionTokens: z.boolean().default(true),
});

export type GenerationOptions = z.infer<typeof GenerationOptionsSchema>;
export type GenerationOptionsInput = z.input<typeof GenerationOptionsSchema>;
