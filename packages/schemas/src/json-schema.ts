import { z } from 'zod';
import type { ZodType } from 'zod';
import {
  AskFieldsSchema,
  AskRequestSchema,
  AskResponseSchema,
  AskStreamEventSchema,
} from './ask.js';
import { ErrorDataSchema } from './errors.js';
import { GenerationOptionsSchema } from './generation.js';
import { HealthSchema, ReadinessSchema, ServerInfoSchema } from './health.js';
import {
  BatchCreateRequestSchema,
  BatchItemResultSchema,
  BatchResultsPageSchema,
  BatchStatusSchema,
} from './jobs.js';
import { MarkListSchema, MarkSchema } from './mark.js';
import {
  ChatCompletionChunkSchema,
  ChatCompletionRequestSchema,
  ChatCompletionSchema,
  ModelListSchema,
  OpenAIErrorSchema,
} from './openai.js';
import { AskSseEventSchema } from './rest.js';

/**
 * The contract's schemas published as JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1).
 * Requests are described as a client writes them (`input`: fields with defaults are optional),
 * responses as the server sends them (`output`). Checks zod runs in code (unique labels,
 * x1 < x2, valid base64) have no JSON Schema form and are enforced by the server.
 */
const CONTRACT: Readonly<Record<string, { schema: ZodType; io: 'input' | 'output' }>> = {
  Mark: { schema: MarkSchema, io: 'input' },
  MarkList: { schema: MarkListSchema, io: 'input' },
  GenerationOptions: { schema: GenerationOptionsSchema, io: 'input' },
  AskFields: { schema: AskFieldsSchema, io: 'input' },
  AskRequest: { schema: AskRequestSchema, io: 'input' },
  AskResponse: { schema: AskResponseSchema, io: 'output' },
  AskStreamEvent: { schema: AskStreamEventSchema, io: 'output' },
  AskSseEvent: { schema: AskSseEventSchema, io: 'output' },
  ErrorData: { schema: ErrorDataSchema, io: 'output' },
  Health: { schema: HealthSchema, io: 'output' },
  Readiness: { schema: ReadinessSchema, io: 'output' },
  ServerInfo: { schema: ServerInfoSchema, io: 'output' },
  ChatCompletionRequest: { schema: ChatCompletionRequestSchema, io: 'input' },
  ChatCompletion: { schema: ChatCompletionSchema, io: 'output' },
  ChatCompletionChunk: { schema: ChatCompletionChunkSchema, io: 'output' },
  ModelList: { schema: ModelListSchema, io: 'output' },
  OpenAIError: { schema: OpenAIErrorSchema, io: 'output' },
  BatchCreateRequest: { schema: BatchCreateRequestSchema, io: 'input' },
  BatchStatus: { schema: BatchStatusSchema, io: 'output' },
  BatchItemResult: { schema: BatchItemResultSchema, io: 'output' },
  BatchResultsPage: { schema: BatchResultsPageSchema, io: 'output' },
};

/** Names of the published schemas (the file names of `json/<name>.json`). */
export const CONTRACT_SCHEMA_NAMES: readonly string[] = Object.keys(CONTRACT);

export type JsonSchemaObject = Record<string, unknown>;

/** One contract schema as JSON Schema, without `$schema` (OpenAPI components omit it). */
export function contractJsonSchema(name: string): JsonSchemaObject {
  const entry = CONTRACT[name];
  if (entry === undefined) throw new Error(`no contract schema named ${name}`);
  const { $schema: _dialect, ...schema } = z.toJSONSchema(entry.schema, {
    target: 'draft-2020-12',
    io: entry.io,
    unrepresentable: 'any',
  }) as JsonSchemaObject;
  return { title: name, ...schema };
}

/** Every contract schema as JSON Schema, by name. */
export function contractJsonSchemas(): Record<string, JsonSchemaObject> {
  return Object.fromEntries(CONTRACT_SCHEMA_NAMES.map((name) => [name, contractJsonSchema(name)]));
}

/** The text of a published `json/<name>.json` file (stable: the drift test compares bytes). */
export function contractJsonSchemaFile(name: string): string {
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    ...contractJsonSchema(name),
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
