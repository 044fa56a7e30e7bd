import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { AskResponse } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors/api-error.js';
import type { AskCall, RequestContext, ServerServices } from '../../src/trpc/context.js';
import { answerDirectCall } from '../../src/trpc/direct-call.js';

// Which calls trpc/direct-call.ts answers itself (the rest is handed to tRPC's handler, here a
// 299), and what it answers. The ask service is a recording stand-in: this is about the transport.
// procedures.test.ts checks the answers equal tRPC's own, on the real server.

const HANDED_ON = 299;

const answer = (requestId: string): AskResponse => ({
  requestId,
  answer: '#1 red circle',
  references: [{ label: 1, text: '#1', offset: 0 }],
  finishReason: 'stop',
  usage: {
    promptTokens: 10,
    imageTokens: 4,
    completionTokens: 3,
    totalTokens: 13,
    cachedTokens: 0,
  },
  timings: {
    queueMs: 0,
    imageMs: 1,
    preprocessMs: 1,
    visionMs: 1,
    prefillMs: 1,
    decodeMs: 1,
    totalMs: 5,
  },
  model: { id: 'stand-in', revision: '1' },
  grid: { rows: 1, cols: 1 },
});

let app: FastifyInstance;
const calls: AskCall[] = [];
const errors: string[] = [];
let fail: ApiError | undefined;

beforeAll(async () => {
  app = Fastify();
  await app.register(
    (scope, _options, done) => {
      scope.removeContentTypeParser('application/json');
      scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_r, body, next) =>
        next(null, body),
      );
      scope.all<{ Params: { path: string } }>('/:path', async (req, reply) => {
        const services = {
          ask: (call: AskCall) => {
            calls.push(call);
            return fail ? Promise.reject(fail) : Promise.resolve(answer(call.requestId));
          },
          recordCall: () => undefined,
        } as unknown as ServerServices;
        const context: RequestContext = {
          requestId: req.id,
          signal: new AbortController().signal,
          clientKey: 'test',
          ip: req.ip,
          log: req.log,
          services,
        };
        const answered = await answerDirectCall(req, reply, req.params.path, {
          createContext: () => Promise.resolve(context),
          errorHeaders: (error): Record<string, string> => {
            const retryAfterMs =
              error.cause instanceof ApiError ? error.cause.extra.retryAfterMs : undefined;
            return retryAfterMs === undefined ? {} : { 'retry-after': String(retryAfterMs / 1000) };
          },
          onError: ({ error }) => errors.push(error.message),
        });
        if (!answered) await reply.code(HANDED_ON).send('handed on');
      });
      done();
    },
    { prefix: '/trpc' },
  );
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

const ask = { image: 'aGVsbG8=', prompt: 'What is #1?' };

function post(url: string, body: string, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

describe('answerDirectCall', () => {
  it("answers a plain ask in tRPC's envelope, with tRPC's headers", async () => {
    fail = undefined;
    const response = await post('/trpc/ask', JSON.stringify(ask));
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['vary']).toBe('trpc-accept, accept');
    const body = response.json<{ result: { data: AskResponse } }>();
    expect(body.result.data.answer).toBe('#1 red circle');
    expect(calls.at(-1)?.fields.prompt).toBe('What is #1?');
    // the schema's defaults were applied by the procedure's input validation
    expect(calls.at(-1)?.fields.markSizing).toBe('model');
  });

  it.each([
    ['a batch', '/trpc/ask?batch=1', JSON.stringify({ 0: ask }), {}],
    ['a query string', '/trpc/ask?x=1', JSON.stringify(ask), {}],
    ['another procedure', '/trpc/askStream', JSON.stringify(ask), {}],
    ['a body that is not JSON', '/trpc/ask', '{"image":', {}],
    [
      'a streamed answer asked for',
      '/trpc/ask',
      JSON.stringify(ask),
      { 'trpc-accept': 'application/jsonl' },
    ],
    [
      'jsonl accepted',
      '/trpc/ask',
      JSON.stringify(ask),
      { accept: 'text/html, application/jsonl' },
    ],
  ])('hands %s to tRPC', async (_name, url, body, headers) => {
    const before = calls.length;
    const response = await post(url, body, headers);
    expect(response.statusCode).toBe(HANDED_ON);
    expect(calls.length).toBe(before);
  });

  it('hands other methods and content types to tRPC', async () => {
    expect((await app.inject({ method: 'GET', url: '/trpc/ask' })).statusCode).toBe(HANDED_ON);
    const text = await post('/trpc/ask', JSON.stringify(ask), { 'content-type': 'text/plain' });
    expect(text.statusCode).toBe(HANDED_ON);
  });

  it('takes a content type with parameters and in any case', async () => {
    fail = undefined;
    const response = await post('/trpc/ask', JSON.stringify(ask), {
      'content-type': 'Application/JSON; charset=utf-8',
    });
    expect(response.statusCode).toBe(200);
  });

  it("answers a failed call with the router's error shape, its status and Retry-After", async () => {
    fail = new ApiError('OVERLOADED', 'the queue is full', { retryAfterMs: 2000 });
    const response = await post('/trpc/ask', JSON.stringify(ask));
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('2');
    const body = response.json<{ error: { message: string; data: Record<string, unknown> } }>();
    expect(body.error.message).toBe('the queue is full');
    expect(body.error.data).toMatchObject({ code: 'OVERLOADED', httpStatus: 503, retryable: true });
    expect(errors.at(-1)).toBe('the queue is full');
  });

  it('answers invalid input as INVALID_INPUT without calling the service', async () => {
    fail = undefined;
    const before = calls.length;
    const response = await post('/trpc/ask', JSON.stringify({ image: 'aGVsbG8=' }));
    expect(response.statusCode).toBe(400);
    expect(response.json<{ error: { data: { code: string } } }>().error.data.code).toBe(
      'INVALID_INPUT',
    );
    expect(calls.length).toBe(before);
  });
});
