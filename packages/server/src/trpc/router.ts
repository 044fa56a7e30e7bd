import {
  AskFieldsSchema,
  AskRequestSchema,
  AskResponseSchema,
  ImageUploadResponseSchema,
  ServerInfoSchema,
} from '@magma-som/schemas';
import type { AskFields, AskRequest, AskResponse, AskStreamEvent } from '@magma-som/schemas';
import { z } from 'zod';
import { ApiError, issuesFrom } from '../errors/api-error.js';
import type { AskCall, RequestContext } from './context.js';
import { apiErrorOf, toTRPCError } from './errors.js';
import { t } from './init.js';
import { jobsRouter } from './jobs-router.js';
import { procedure } from './procedure.js';
import { streamTokens } from './token-stream.js';

/** Whether the client itself asked for a number of tokens (not the schema's default). */
function asksMaxTokens(raw: unknown): boolean {
  const options = (raw as { options?: { maxTokens?: unknown } } | null)?.options;
  return typeof options === 'object' && options !== null && options.maxTokens !== undefined;
}

/** Notes whether maxTokens was sent: only an explicit value over the cap is refused. */
const withMaxTokensFlag = t.middleware(async ({ getRawInput, next }) =>
  next({ ctx: { explicitMaxTokens: asksMaxTokens(await getRawInput().catch(() => undefined)) } }),
);

function jsonCall(
  input: AskRequest,
  ctx: RequestContext & { explicitMaxTokens: boolean },
): AskCall {
  const { image, ...fields } = input;
  return {
    fields,
    image: { kind: 'base64', value: image, checked: true },
    requestId: ctx.requestId,
    signal: ctx.signal,
    explicitMaxTokens: ctx.explicitMaxTokens,
    idempotencyKey: ctx.idempotencyKey,
    clientKey: ctx.clientKey,
  };
}

export const appRouter = t.router({
  /** One Set-of-Mark question, image as base64 or a data URL. */
  ask: procedure
    .use(withMaxTokensFlag)
    .input(AskRequestSchema)
    .output(AskResponseSchema)
    .mutation(({ input, ctx }) => ctx.services.ask(jsonCall(input, ctx))),

  /** The same question, answered as a stream: token events as text is generated, then done. */
  askStream: t.procedure
    .use(withMaxTokensFlag)
    .input(AskRequestSchema)
    .mutation(async function* ({ input, ctx }): AsyncGenerator<AskStreamEvent, void, unknown> {
      const started = performance.now();
      let outcome = 'ok';
      try {
        const tokens = streamTokens((onToken) =>
          ctx.services.ask({ ...jsonCall(input, ctx), onToken }),
        );
        let next = await tokens.next();
        while (!next.done) {
          yield { type: 'token', text: next.value };
          next = await tokens.next();
        }
        yield { type: 'done', response: next.value };
      } catch (error) {
        const trpcError = toTRPCError(error);
        outcome = apiErrorOf(trpcError).code;
        throw trpcError;
      } finally {
        ctx.services.recordCall('askStream', outcome, performance.now() - started);
      }
    }),

  /**
   * The binary path: multipart form with the raw image file in `image` and the other fields
   * as JSON in `request`. No base64, and its own byte limit (maxUploadBytes).
   */
  askUpload: procedure
    .input(z.instanceof(FormData))
    .output(AskResponseSchema)
    .mutation(async ({ input, ctx }): Promise<AskResponse> => {
      const { fields, bytes, explicitMaxTokens } = await readUpload(input);
      return ctx.services.ask({
        fields,
        explicitMaxTokens,
        image: { kind: 'bytes', bytes },
        requestId: ctx.requestId,
        signal: ctx.signal,
        idempotencyKey: ctx.idempotencyKey,
        clientKey: ctx.clientKey,
      });
    }),

  /**
   * Stores an image (multipart, the file in `image`) for repeated asks: answers its id, which an
   * ask sends as `image` instead of the bytes, until the upload expires (IMAGE_NOT_FOUND).
   */
  uploadImage: procedure
    .input(z.instanceof(FormData))
    .output(ImageUploadResponseSchema)
    .mutation(async ({ input, ctx }) => {
      const image = input.get('image');
      if (!(image instanceof Blob)) {
        throw invalidInput(['image'], 'form field "image" must be the image file');
      }
      return ctx.services.uploadImage(new Uint8Array(await image.arrayBuffer()));
    }),

  /** What the server runs and the limits in force. */
  info: procedure.output(ServerInfoSchema).query(({ ctx }) => ctx.services.info()),

  /** Batch jobs through Redis: jobs.create, jobs.status, jobs.results, jobs.cancel. */
  jobs: jobsRouter,
});

export type AppRouter = typeof appRouter;

/** Splits an upload form into validated fields and the image bytes. */
async function readUpload(
  form: FormData,
): Promise<{ fields: AskFields; bytes: Uint8Array; explicitMaxTokens: boolean }> {
  const image = form.get('image');
  const request = form.get('request');
  if (!(image instanceof Blob)) {
    throw invalidInput(['image'], 'form field "image" must be the image file');
  }
  let json: unknown;
  try {
    const text = request instanceof Blob ? await request.text() : request;
    if (typeof text !== 'string') throw new Error('missing');
    json = JSON.parse(text);
  } catch {
    throw invalidInput(['request'], 'form field "request" must be the ask fields as JSON');
  }
  const parsed = AskFieldsSchema.safeParse(json);
  if (!parsed.success) {
    const issues = issuesFrom(parsed.error.issues).map((issue) => ({
      ...issue,
      path: ['request', ...issue.path],
    }));
    throw new ApiError('INVALID_INPUT', 'the request does not match the schema', { issues });
  }
  return {
    fields: parsed.data,
    bytes: new Uint8Array(await image.arrayBuffer()),
    explicitMaxTokens: asksMaxTokens(json),
  };
}

function invalidInput(path: string[], message: string): ApiError {
  return new ApiError('INVALID_INPUT', message, { issues: [{ path, message }] });
}
