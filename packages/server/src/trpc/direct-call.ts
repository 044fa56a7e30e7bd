import {
  callTRPCProcedure,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  transformTRPCResponse,
} from '@trpc/server';
import type { TRPCError } from '@trpc/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from './context.js';
import { appRouter } from './router.js';

/** Mutations answered here: the call every SDK ask makes. */
const DIRECT_MUTATIONS = new Set(['ask']);

export interface DirectCallHooks {
  createContext(req: FastifyRequest, reply: FastifyReply): Promise<RequestContext>;
  /** Headers for a failed call (Retry-After); tRPC's responseMeta. */
  errorHeaders(error: TRPCError): Record<string, string>;
  onError(opts: { error: TRPCError; path: string; ctx: RequestContext }): void;
}

/**
 * Answers a plain single call of a JSON mutation (`POST /trpc/ask`, no batch, no stream) without
 * tRPC's Fetch-API adapter, and returns false for anything else, which goes to tRPC's handler.
 * The adapter turns every Node request into a WHATWG Request (with abort signals) and every answer
 * into a Response that Fastify then reads back: about 0.9 ms of main-thread CPU per call here
 * against the REST route's handling of the same ask (BENCHMARKS.md), as much as the rest of a
 * cached answer's work on that thread. The call itself is tRPC's (procedure lookup, middlewares,
 * input and output validation), and so are the error shape (the router's formatter), the status
 * (the shape's httpStatus) and the body, so clients see the same bytes either way.
 */
export async function answerDirectCall(
  req: FastifyRequest,
  reply: FastifyReply,
  path: string,
  hooks: DirectCallHooks,
): Promise<boolean> {
  if (!isDirectCallRequest(req, path)) return false;
  const { body } = req;
  if (typeof body !== 'string' && !(body instanceof ParsedJsonBody)) return false;
  const input = body instanceof ParsedJsonBody ? body.value : parseBody(body);
  // a body that is not JSON gets tRPC's own parse error
  if (input === NOT_JSON) return false;

  const config = appRouter._def._config;
  const ctx = await hooks.createContext(req, reply);
  let json: unknown;
  let status = 200;
  try {
    const data = await callTRPCProcedure({
      router: appRouter,
      path,
      type: 'mutation',
      ctx,
      getRawInput: () => Promise.resolve(input),
      signal: undefined,
      batchIndex: 0,
    });
    json = { result: { data } };
  } catch (cause) {
    const error = getTRPCErrorFromUnknown(cause);
    hooks.onError({ error, path, ctx });
    const shape = getTRPCErrorShape({ config, error, type: 'mutation', path, input, ctx });
    const httpStatus = (shape.data as { httpStatus?: unknown } | undefined)?.httpStatus;
    status = typeof httpStatus === 'number' ? httpStatus : 500;
    void reply.headers(hooks.errorHeaders(error));
    json = { error: shape };
  }
  await reply
    .code(status)
    .header('vary', 'trpc-accept, accept')
    .header('content-type', 'application/json')
    // bytes: Fastify would add "; charset=utf-8" to a string's content type, and tRPC does not
    .send(Buffer.from(JSON.stringify(transformTRPCResponse(config, json as never))));
  return true;
}

const NOT_JSON = Symbol('not JSON');

/** A JSON body the scope's parser parsed already (a large one, in a worker). */
export class ParsedJsonBody {
  constructor(readonly value: unknown) {}
}

/**
 * POST to one mutation named above, no query (batch, input), JSON content type, no stream
 * accepted: known before the body is read.
 */
export function isDirectCallRequest(req: FastifyRequest, path: string): boolean {
  if (req.method !== 'POST' || !DIRECT_MUTATIONS.has(path) || req.url.includes('?')) return false;
  const contentType = req.headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase();
  if (contentType !== 'application/json') return false;
  const accept = req.headers['accept'];
  const streams =
    req.headers['trpc-accept'] !== undefined ||
    (typeof accept === 'string' &&
      accept.split(',').some((type) => type.trim() === 'application/jsonl'));
  return !streams;
}

/** The body as tRPC reads it: empty = no input. */
function parseBody(body: string): unknown {
  if (body === '') return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return NOT_JSON;
  }
}
