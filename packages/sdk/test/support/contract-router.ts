import { initTRPC, TRPCError } from '@trpc/server';
import {
  AskFieldsSchema,
  AskRequestSchema,
  BatchCreateRequestSchema,
  BatchRefSchema,
  BatchResultsPageSchema,
  BatchResultsRequestSchema,
  BatchStatusSchema,
  ErrorDataSchema,
  errorData,
} from '@magma-som/schemas';
import type {
  AskResponse,
  AskStreamEvent,
  BatchCreateRequest,
  BatchResultsPage,
  BatchStatus,
  ErrorData,
  ImageUploadResponse,
  ServerInfo,
} from '@magma-som/schemas';
import { z } from 'zod';

/** What the test server's procedures do; each test supplies its own. */
export interface ContractHandlers {
  ask(input: unknown, headers: Record<string, string | string[] | undefined>): Promise<AskResponse>;
  askStream(input: unknown): AsyncGenerator<AskStreamEvent>;
  askUpload(image: Blob, fields: unknown): Promise<AskResponse>;
  /** Optional: a fixed id by default. */
  uploadImage?(image: Blob): Promise<ImageUploadResponse>;
  info(): ServerInfo;
  /** Optional: batch jobs answer JOBS_NOT_ENABLED by default, as a server without Redis. */
  jobs?: ContractJobHandlers;
}

export interface ContractJobHandlers {
  create(input: BatchCreateRequest): Promise<BatchStatus>;
  status(batchId: string): Promise<BatchStatus>;
  results(batchId: string, cursor: number, limit: number): Promise<BatchResultsPage>;
  cancel(batchId: string): Promise<BatchStatus>;
}

function jobsOf(handlers: ContractHandlers): ContractJobHandlers {
  if (handlers.jobs !== undefined) return handlers.jobs;
  const off = (): Promise<never> =>
    Promise.reject(new ContractError(errorData('JOBS_NOT_ENABLED', 'batch jobs are not enabled')));
  return { create: off, status: off, results: off, cancel: off };
}

export interface ContractContext {
  readonly handlers: ContractHandlers;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** A TRPCError carrying the contract's ErrorData, as the real server throws them. */
export class ContractError extends TRPCError {
  constructor(readonly data: ErrorData) {
    super({ code: trpcCodeFor(data.httpStatus), message: data.message });
  }
}

function trpcCodeFor(status: number): TRPCError['code'] {
  const codes: Record<number, TRPCError['code']> = {
    400: 'BAD_REQUEST',
    401: 'UNAUTHORIZED',
    404: 'NOT_FOUND',
    413: 'PAYLOAD_TOO_LARGE',
    429: 'TOO_MANY_REQUESTS',
    499: 'CLIENT_CLOSED_REQUEST',
    503: 'SERVICE_UNAVAILABLE',
    504: 'GATEWAY_TIMEOUT',
  };
  return codes[status] ?? 'INTERNAL_SERVER_ERROR';
}

const t = initTRPC.context<ContractContext>().create({
  errorFormatter({ shape, error }) {
    const data =
      error instanceof ContractError
        ? error.data
        : error.cause instanceof z.ZodError
          ? errorData('INVALID_INPUT', 'the request does not match the schema', {
              issues: error.cause.issues.map((issue) => ({
                path: issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key)),
                message: issue.message,
              })),
            })
          : errorData('INTERNAL', error.message);
    return { ...shape, data: ErrorDataSchema.parse(data) };
  },
});

/**
 * The server router's procedures (same names, kinds and schemas as packages/server's appRouter;
 * router-types.test.ts pins the client to that one), with handlers each test supplies. The fault
 * server serves it through tRPC's own adapter, so the client meets tRPC's real wire format
 * without loading the model or the server's native dependencies.
 */
export const contractRouter = t.router({
  ask: t.procedure
    .input(AskRequestSchema)
    .mutation(({ input, ctx }) => ctx.handlers.ask(input, ctx.headers)),
  askStream: t.procedure.input(AskRequestSchema).mutation(async function* ({
    input,
    ctx,
  }): AsyncGenerator<AskStreamEvent, void, unknown> {
    yield* ctx.handlers.askStream(input);
  }),
  askUpload: t.procedure.input(z.instanceof(FormData)).mutation(({ input, ctx }) => {
    const image = input.get('image');
    const request = input.get('request');
    if (!(image instanceof Blob) || typeof request !== 'string') {
      throw new ContractError(errorData('INVALID_INPUT', 'multipart needs image and request'));
    }
    const fields = AskFieldsSchema.parse(JSON.parse(request));
    return ctx.handlers.askUpload(image, fields);
  }),
  uploadImage: t.procedure
    .input(z.instanceof(FormData))
    .mutation(async ({ input, ctx }): Promise<ImageUploadResponse> => {
      const image = input.get('image');
      if (!(image instanceof Blob)) {
        throw new ContractError(errorData('INVALID_INPUT', 'multipart needs image'));
      }
      return (
        ctx.handlers.uploadImage?.(image) ?? {
          imageId: `img_${'A'.repeat(43)}`,
          bytes: image.size,
          ttlSeconds: 600,
        }
      );
    }),
  info: t.procedure.query(({ ctx }) => ctx.handlers.info()),
  jobs: t.router({
    create: t.procedure
      .input(BatchCreateRequestSchema)
      .output(BatchStatusSchema)
      .mutation(({ input, ctx }) => jobsOf(ctx.handlers).create(input)),
    status: t.procedure
      .input(BatchRefSchema)
      .output(BatchStatusSchema)
      .query(({ input, ctx }) => jobsOf(ctx.handlers).status(input.batchId)),
    results: t.procedure
      .input(BatchResultsRequestSchema)
      .output(BatchResultsPageSchema)
      .query(({ input, ctx }) =>
        jobsOf(ctx.handlers).results(input.batchId, input.cursor, input.limit),
      ),
    cancel: t.procedure
      .input(BatchRefSchema)
      .output(BatchStatusSchema)
      .mutation(({ input, ctx }) => jobsOf(ctx.handlers).cancel(input.batchId)),
  }),
});

export type ContractRouter = typeof contractRouter;
