import {
  TRPCClientError,
  createTRPCClient,
  httpBatchStreamLink,
  httpLink,
  splitLink,
} from '@trpc/client';
import type { AskStreamEvent } from '@magma-som/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import type { AppRouter } from '../../src/index.js';
import { askBody, startTestEngine, startTestServer, testImage } from './helpers.js';
import type { RunningServer } from './helpers.js';

// The server through @trpc/client, the way the SDK talks to it: typed results and typed
// error.data on every link the SDK uses.

let engine: Engine;
let running: RunningServer;
let png: Buffer;

beforeAll(async () => {
  engine = await startTestEngine();
  running = await startTestServer(engine, { apiKeys: ['k'], rateLimitMax: 0 });
  png = await testImage();
}, 120_000);

afterAll(async () => {
  await running?.server.shutdown();
  await engine?.close();
});

function client(key = 'k') {
  const url = `${running.url}/trpc`;
  const headers = { authorization: `Bearer ${key}` };
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.path === 'askStream',
        true: httpBatchStreamLink({ url, headers, maxItems: 1 }),
        // httpLink carries JSON and FormData alike.
        false: httpLink({ url, headers }),
      }),
    ],
  });
}

describe('@trpc/client', () => {
  it('ask and info return the schema types', async () => {
    const trpc = client();
    const info = await trpc.info.query();
    expect(info.model.id).toBe(engine.info.name);
    const answer = await trpc.ask.mutate(askBody(png));
    expect(answer.usage.completionTokens).toBeGreaterThan(0);
    expect(answer.grid.rows).toBeGreaterThan(0);
  });

  it('askStream yields token events and a final done event', async () => {
    const stream = await client().askStream.mutate(
      askBody(png, { options: { maxTokens: 6, temperature: 1, seed: 3 } }),
    );
    const events: AskStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.at(-1)!.type).toBe('done');
    const done = events.at(-1) as Extract<AskStreamEvent, { type: 'done' }>;
    const text = events.flatMap((event) => (event.type === 'token' ? [event.text] : [])).join('');
    expect(text).toBe(done.response.answer);
    expect(done.response.usage.completionTokens).toBeGreaterThan(0);
  });

  it('askStream reports a bad image as a typed error inside the stream', async () => {
    const stream = await client().askStream.mutate(askBody(png.subarray(0, 50)));
    const error = await (async () => {
      try {
        for await (const _event of stream) {
          // nothing arrives before the error
        }
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<AppRouter>).data).toMatchObject({
      code: 'INVALID_IMAGE',
      httpStatus: 400,
    });
  });

  it('askUpload sends FormData through httpLink', async () => {
    const form = new FormData();
    form.set('image', new Blob([png], { type: 'image/png' }), 'shot.png');
    const { image: _image, ...fields } = askBody(png);
    form.set('request', JSON.stringify(fields));
    const answer = await client().askUpload.mutate(form);
    expect(answer.usage.imageTokens).toBeGreaterThan(0);
  });

  it('errors arrive as TRPCClientError with ErrorData in data', async () => {
    const failure = await client('wrong')
      .info.query()
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TRPCClientError);
    const data = (failure as TRPCClientError<AppRouter>).data!;
    expect(data).toMatchObject({ code: 'UNAUTHORIZED', httpStatus: 401, retryable: false });
    expect(data.requestId).toEqual(expect.any(String));

    const invalid = await client()
      .ask.mutate({ ...askBody(png), marks: [{ label: 3, x1: 0, y1: 0, x2: 999, y2: 5 }] })
      .then(
        () => expect.unreachable('an out-of-image mark must be refused'),
        (error: unknown) => error as TRPCClientError<AppRouter>,
      );
    expect(invalid.data).toMatchObject({ code: 'INVALID_MARKS', httpStatus: 400 });
    expect(invalid.data!.issues![0]!.path).toEqual(['marks', 0]);
  });
});
