import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AskStreamEvent } from '@magma-som/schemas';
import { APITimeoutError, InferenceFailedError } from '../src/index.js';
import type { MagmaClient, MagmaError } from '../src/index.js';
import { createClient } from './support/entry.js';
import { ContractError } from './support/contract-router.js';
import { FaultServer, sampleResponse, trpcError } from './support/fault-server.js';
import { errorData } from '@magma-som/schemas';
import { smallPng } from './support/images.js';

// askStream's two clocks: timeoutMs until the first event, streamIdleTimeoutMs between events.
// A stand-in server, because the real one cannot be made to stall between tokens on demand.

let server: FaultServer;
let client: MagmaClient;
let image: Buffer;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function collect(stream: AsyncIterable<AskStreamEvent>) {
  const events: AskStreamEvent[] = [];
  const error = await (async () => {
    for await (const event of stream) events.push(event);
  })().catch((e: unknown) => e as MagmaError);
  return { events, error };
}

beforeAll(async () => {
  image = await smallPng();
});

beforeEach(async () => {
  server = await FaultServer.start();
  client = createClient({ baseUrl: server.url, retry: { initialDelayMs: 5, jitter: 0 } });
});

afterEach(async () => {
  await client.close();
  await server.close();
});

describe('askStream timeouts', () => {
  it('a stream that keeps sending outlives timeoutMs: only the gaps between events count', async () => {
    // Seven tokens a second apart: 7 s in all, longer than both limits, no gap near either.
    server.handlers.askStream = async function* () {
      for (let i = 0; i < 7; i++) {
        await sleep(1_000);
        yield { type: 'token', text: `${i}` };
      }
      yield { type: 'done', response: sampleResponse('0123456') };
    };
    const { events, error } = await collect(
      client.askStream(
        { image, prompt: 'Count' },
        { timeoutMs: 5_000, streamIdleTimeoutMs: 5_000 },
      ),
    );
    expect(error).toBeUndefined();
    expect(events.map((e) => (e.type === 'token' ? e.text : e.type)).join('')).toBe('0123456done');
  });

  it('the idle clock stops while the consumer holds an event', async () => {
    const { events, error } = await collect(
      (async function* () {
        for await (const event of client.askStream(
          { image, prompt: 'Hi' },
          { streamIdleTimeoutMs: 200 },
        )) {
          // The consumer takes far longer than the idle limit over each event.
          await sleep(600);
          yield event;
        }
      })(),
    );
    expect(error).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(['token', 'token', 'done']);
  });

  it('a stall after the first event is an idle APITimeoutError, not retried', async () => {
    server.handlers.askStream = async function* () {
      yield { type: 'token', text: 'Mark' };
      await new Promise(() => undefined);
    };
    const { events, error } = await collect(
      client.askStream({ image, prompt: 'Hi' }, { streamIdleTimeoutMs: 300 }),
    );
    expect(events).toEqual([{ type: 'token', text: 'Mark' }]);
    expect(error).toBeInstanceOf(APITimeoutError);
    expect(error).toMatchObject({ code: 'TIMEOUT', idle: true, timeoutMs: 300, attempts: 1 });
    expect(server.requests).toHaveLength(1);
  });

  it('attempts counts the retries made before the stream started', async () => {
    server.fail(trpcError('OVERLOADED', { extra: { retryAfterMs: 5 } }));
    server.handlers.askStream = async function* () {
      yield { type: 'token', text: 'Mark' };
      throw new ContractError(errorData('INFERENCE_FAILED', 'the model failed'));
    };
    const { events, error } = await collect(client.askStream({ image, prompt: 'Hi' }));
    expect(events).toEqual([{ type: 'token', text: 'Mark' }]);
    expect(error).toBeInstanceOf(InferenceFailedError);
    expect(error!.attempts).toBe(2);
    expect(server.requests).toHaveLength(2);
  });
});
