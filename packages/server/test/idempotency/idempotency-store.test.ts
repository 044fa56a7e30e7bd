import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors/api-error.js';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.js';

/** A computation the test finishes by hand, counting how often it was started. */
function gated<T>() {
  let calls = 0;
  let release!: (value: T) => void;
  let fail!: (error: Error) => void;
  let signal: AbortSignal | undefined;
  const compute = (s: AbortSignal) => {
    calls++;
    signal = s;
    return new Promise<T>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
  };
  return {
    compute,
    get calls() {
      return calls;
    },
    get signal() {
      return signal;
    },
    release: (value: T) => release(value),
    fail: (error: Error) => fail(error),
  };
}

const open = () => new AbortController().signal;

describe('IdempotencyStore', () => {
  it('a second request with the key while the first runs joins it: one computation', async () => {
    const store = new IdempotencyStore<string>({ ttlMs: 60_000, maxKeys: 10 });
    const work = gated<string>();
    const first = store.run('k', 'body-a', open(), work.compute);
    const second = store.run('k', 'body-a', open(), work.compute);
    work.release('answer');
    expect(await first).toBe('answer');
    expect(await second).toBe('answer');
    expect(work.calls).toBe(1);
  });

  it('after it finished, the stored result until the TTL ends; then it runs again', async () => {
    let now = 1_000;
    const store = new IdempotencyStore<string>({ ttlMs: 500, maxKeys: 10, now: () => now });
    let calls = 0;
    const compute = async () => `answer ${++calls}`;
    expect(await store.run('k', 'body-a', open(), compute)).toBe('answer 1');
    now += 499;
    expect(await store.run('k', 'body-a', open(), compute)).toBe('answer 1');
    now += 1;
    expect(await store.run('k', 'body-a', open(), compute)).toBe('answer 2');
  });

  it('the same key with a different request is IDEMPOTENCY_KEY_REUSED, running or stored', async () => {
    const store = new IdempotencyStore<string>({ ttlMs: 60_000, maxKeys: 10 });
    const work = gated<string>();
    const first = store.run('k', 'body-a', open(), work.compute);
    const running = await store.run('k', 'body-b', open(), work.compute).catch((e: unknown) => e);
    expect(running).toBeInstanceOf(ApiError);
    expect((running as ApiError).code).toBe('IDEMPOTENCY_KEY_REUSED');
    work.release('answer');
    await first;
    const stored = await store.run('k', 'body-b', open(), work.compute).catch((e: unknown) => e);
    expect((stored as ApiError).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(work.calls).toBe(1);
  });

  it('a failure is not stored: the retry computes again', async () => {
    const store = new IdempotencyStore<string>({ ttlMs: 60_000, maxKeys: 10 });
    const work = gated<string>();
    const first = store.run('k', 'body-a', open(), work.compute);
    work.fail(new Error('model failed'));
    await expect(first).rejects.toThrow('model failed');
    const retry = store.run('k', 'body-a', open(), work.compute);
    work.release('answer');
    expect(await retry).toBe('answer');
    expect(work.calls).toBe(2);
  });

  it('keeps computing for a retry after its client left; cancels once the grace ran out', async () => {
    const store = new IdempotencyStore<string>({ ttlMs: 60_000, maxKeys: 10, abandonGraceMs: 50 });
    const work = gated<string>();
    const gone = new AbortController();
    const first = store.run('k', 'body-a', gone.signal, work.compute);
    gone.abort();
    await expect(first).rejects.toMatchObject({ code: 'CANCELLED' });
    // The retry arrives within the grace and gets the one computation's answer.
    const retry = store.run('k', 'body-a', open(), work.compute);
    work.release('answer');
    expect(await retry).toBe('answer');
    expect(work.calls).toBe(1);

    const other = gated<string>();
    const leaving = new AbortController();
    const abandoned = store.run('j', 'body-a', leaving.signal, other.compute);
    leaving.abort();
    await expect(abandoned).rejects.toMatchObject({ code: 'CANCELLED' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(other.signal?.aborted).toBe(true);
  });

  it('holds at most maxKeys, dropping the oldest finished key first', async () => {
    const store = new IdempotencyStore<string>({ ttlMs: 60_000, maxKeys: 2 });
    let calls = 0;
    const compute = async () => `answer ${++calls}`;
    await store.run('a', 'x', open(), compute);
    await store.run('b', 'x', open(), compute);
    await store.run('c', 'x', open(), compute);
    expect(store.size).toBe(2);
    expect(await store.run('b', 'x', open(), compute)).toBe('answer 2');
    expect(await store.run('a', 'x', open(), compute)).toBe('answer 4');
  });
  it('expires keys by when they finished, not when they started, past running ones', async () => {
    let now = 0;
    const store = new IdempotencyStore<string>({ ttlMs: 100, maxKeys: 10, now: () => now });
    const slow = gated<string>();
    const running = gated<string>();
    let calls = 0;
    const compute = async () => `answer ${++calls}`;
    const a = store.run('a', 'x', open(), slow.compute); // started first, finishes last
    store.run('r', 'x', open(), running.compute).catch(() => undefined); // runs throughout
    expect(await store.run('b', 'x', open(), compute)).toBe('answer 1'); // finished at 0
    now = 50;
    slow.release('slow answer');
    expect(await a).toBe('slow answer'); // finished at 50
    now = 120; // b has expired, a has not
    expect(await store.run('a', 'x', open(), compute)).toBe('slow answer');
    expect(await store.run('b', 'x', open(), compute)).toBe('answer 2');
    now = 160; // a has expired too; r still runs and is joined, not restarted
    expect(await store.run('a', 'x', open(), compute)).toBe('answer 3');
    const joined = store.run('r', 'x', open(), compute);
    running.release('r answer');
    expect(await joined).toBe('r answer');
    expect(running.calls).toBe(1);
  });
});
