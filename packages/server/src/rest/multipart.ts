import { AskFieldsSchema, contractJsonSchema } from '@magma-som/schemas';
import type { AskFields, ErrorIssue } from '@magma-som/schemas';
import { ApiError, issuesFrom } from '../errors/api-error.js';
import { hasExplicitMaxTokens } from './deps.js';

/**
 * How each ask field travels as a form field, read from the contract so new fields work
 * without changes here: strings (and enums) as text, booleans as `true`/`false`, the rest
 * (marks, options) as JSON.
 */
const FIELD_KINDS: ReadonlyMap<string, 'text' | 'boolean' | 'json'> = new Map(
  Object.entries(
    (contractJsonSchema('AskFields').properties ?? {}) as Record<string, { type?: unknown }>,
  ).map(([name, schema]) => [
    name,
    schema.type === 'string' ? 'text' : schema.type === 'boolean' ? 'boolean' : 'json',
  ]),
);

export interface MultipartAsk {
  readonly fields: AskFields;
  readonly bytes: Uint8Array;
  readonly explicitMaxTokens: boolean;
}

/**
 * A multipart/form-data ask: the image as a file part `image`, `prompt` as text, `marks` and
 * `options` as JSON, the other ask fields as text. The body arrives whole (Fastify enforced
 * its limit); the web platform's own form parser splits it.
 */
export async function readMultipartAsk(body: Buffer, contentType: string): Promise<MultipartAsk> {
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch {
    throw new ApiError('INVALID_INPUT', 'the multipart/form-data body is malformed');
  }
  const issues: ErrorIssue[] = [];
  const raw: Record<string, unknown> = {};
  let image: Blob | undefined;
  for (const name of new Set(form.keys())) {
    const values = form.getAll(name);
    const value = values[0]!;
    if (values.length > 1) {
      issues.push({ path: [name], message: `form field ${name} is given more than once` });
    } else if (name === 'image') {
      if (typeof value === 'string') {
        issues.push({
          path: ['image'],
          message: 'image must be a file part (curl -F image=@file)',
        });
      } else {
        image = value;
      }
    } else if (typeof value !== 'string') {
      issues.push({ path: [name], message: `form field ${name} must be text, not a file` });
    } else {
      const kind = FIELD_KINDS.get(name);
      if (kind === 'text') {
        raw[name] = value;
      } else if (kind === 'boolean') {
        if (value === 'true' || value === 'false') raw[name] = value === 'true';
        else issues.push({ path: [name], message: `form field ${name} must be true or false` });
      } else if (kind === 'json') {
        try {
          raw[name] = JSON.parse(value);
        } catch {
          issues.push({ path: [name], message: `form field ${name} must be JSON` });
        }
      } else {
        issues.push({ path: [name], message: 'unknown form field' });
      }
    }
  }
  if (image === undefined && !issues.some((issue) => issue.path[0] === 'image')) {
    issues.push({ path: ['image'], message: 'the image file part is missing' });
  }
  const parsed = AskFieldsSchema.safeParse(raw);
  if (!parsed.success) issues.push(...issuesFrom(parsed.error.issues));
  if (issues.length > 0 || !parsed.success || image === undefined) {
    throw new ApiError('INVALID_INPUT', 'the form does not match the schema', { issues });
  }
  return {
    fields: parsed.data,
    bytes: new Uint8Array(await image.arrayBuffer()),
    explicitMaxTokens: hasExplicitMaxTokens(raw.options),
  };
}
