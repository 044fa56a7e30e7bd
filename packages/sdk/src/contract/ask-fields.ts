// The SDK's local check of an ask, before anything is sent: the contract's AskFieldsSchema
// (@magma-som/schemas, zod) written again with zod/mini, whose functions tree-shake, so a
// browser bundle carries a few kB of validation instead of all of zod. The server checks every
// request with the original; test/contract.test.ts holds the two to the same answers.
import * as z from 'zod/mini';
import { en } from 'zod/locales';
import { DEFAULT_LIMITS, markBoxIssues } from '@magma-som/schemas/plain';

// zod/mini has no messages of its own; this bundled copy of zod is the SDK's alone.
z.config(en());

const coordinate = z.number().check(z.minimum(0, 'must be >= 0'));
const nonNegativeInt = z.int().check(z.minimum(0));

const MarkStyleSchema = z.strictObject({
  color: z.optional(z.string().check(z.regex(/^#[0-9a-fA-F]{6}$/, 'must be a #rrggbb colour'))),
});

const MarkSchema = z
  .strictObject({
    label: nonNegativeInt.check(z.maximum(DEFAULT_LIMITS.maxLabel)),
    x1: coordinate,
    y1: coordinate,
    x2: coordinate,
    y2: coordinate,
    style: z.optional(MarkStyleSchema),
  })
  .check(
    z.superRefine((mark, ctx) => {
      for (const issue of markBoxIssues(mark)) ctx.addIssue({ code: 'custom', ...issue });
    }),
  );

const MarkListSchema = z.array(MarkSchema).check(
  z.maxLength(DEFAULT_LIMITS.maxMarks, `at most ${DEFAULT_LIMITS.maxMarks} marks`),
  z.superRefine((marks, ctx) => {
    const seen = new Map<number, number>();
    marks.forEach((mark, index) => {
      const first = seen.get(mark.label);
      if (first === undefined) seen.set(mark.label, index);
      else {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'label'],
          message: `duplicate label ${mark.label} (also used by marks[${first}])`,
        });
      }
    });
  }),
);

const GenerationOptionsSchema = z.strictObject({
  maxTokens: z.optional(z.int().check(z.minimum(1), z.maximum(DEFAULT_LIMITS.maxTokens))),
  temperature: z.optional(z.number().check(z.minimum(0), z.maximum(2))),
  topP: z.optional(z.number().check(z.gt(0), z.maximum(1))),
  seed: z.optional(nonNegativeInt.check(z.maximum(2 ** 32 - 1))),
  stop: z.optional(
    z
      .array(z.string().check(z.minLength(1), z.maxLength(DEFAULT_LIMITS.maxStopChars)))
      .check(z.maxLength(DEFAULT_LIMITS.maxStopSequences)),
  ),
  suppressActionTokens: z.optional(z.boolean()),
});

/** Everything in an ask except the image. Defaults are left to the server. */
export const AskFieldsSchema = z.strictObject({
  prompt: z
    .string()
    .check(
      z.trim(),
      z.minLength(1, 'prompt is empty'),
      z.maxLength(
        DEFAULT_LIMITS.maxPromptChars,
        `prompt is longer than ${DEFAULT_LIMITS.maxPromptChars} characters`,
      ),
    ),
  marks: z.optional(MarkListSchema),
  options: z.optional(GenerationOptionsSchema),
  returnMarkedImage: z.optional(z.boolean()),
  markedImageFormat: z.optional(z.enum(['png', 'jpeg'])),
  markSizing: z.optional(z.enum(['model', 'magma'])),
  cache: z.optional(z.boolean()),
});

export type ValidationIssue = z.core.$ZodIssue;
