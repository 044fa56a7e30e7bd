import { z } from 'zod';
import { AskResponseSchema } from './ask.js';
import { ErrorDataSchema } from './errors.js';

/**
 * The `data:` of each server-sent event of `POST /v1/som/ask/stream`: the SSE event name is the
 * `type` (`token`, `done` or `error`), and the data says it again so it can be read alone.
 */
export const AskSseEventSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('token'), text: z.string() }),
  z.strictObject({ type: z.literal('done'), response: AskResponseSchema }),
  z.strictObject({ type: z.literal('error'), error: ErrorDataSchema }),
]);
export type AskSseEvent = z.infer<typeof AskSseEventSchema>;
