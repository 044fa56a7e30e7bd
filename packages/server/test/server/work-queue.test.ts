import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors/api-error.js';
import { WorkQueue } from '../../src/queue/work-queue.js';

const never = new AbortController().signal;

describe('WorkQueue', () => {
  it('admits queueSize + maxConcurrency requests, then refuses with OVERLOADED and a retry hint', () => {
    const queue = new WorkQueue({ maxConcurrency: 2, queueSize: 1 });
    const tickets = [queue.admit(), queue.admit(), queue.admit()];
    expect(queue.depth).toBe(3);
    let refusal: unknown;
    try {
      queue.admit();
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ApiError);
    expect(refusal).toMatchObject({ code: 'OVERLOADED' });
    expect((refusal as ApiError).retryAfterMs).toBeGreaterThanOrEqual(1000);
    tickets[0]!.release();
    expect(() => queue.admit()).not.toThrow();
  });

  it('grants slots first come, first served, up to maxConcurrency', async () => {
    const queue = new WorkQueue({ maxConcurrency: 1, queueSize: 3 });
    const order: number[] = [];
    const tickets = [0, 1, 2].map(() => queue.admit());
    const granted = tickets.map((ticket, i) => ticket.acquire(never).then(() => order.push(i)));
    await granted[0];
    expect(order).toEqual([0]);
    expect(queue.inFlight).toBe(1);
    expect(queue.depth).toBe(2);
    tickets[0]!.release();
    await granted[1];
    tickets[1]!.release();
    await granted[2];
    expect(order).toEqual([0, 1, 2]);
  });

  it('takes an aborted waiter out of the line with the abort reason', async () => {
    const queue = new WorkQueue({ maxConcurrency: 1, queueSize: 2 });
    const first = queue.admit();
    await first.acquire(never);
    const second = queue.admit();
    const controller = new AbortController();
    const waiting = second.acquire(controller.signal);
    const reason = new ApiError('CANCELLED', 'gone');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    second.release();
    expect(queue.depth).toBe(0);

    // The slot goes to the next live waiter, not to the aborted one.
    const third = queue.admit();
    const granted = third.acquire(never);
    first.release();
    await granted;
    expect(queue.inFlight).toBe(1);
  });

  it('resolves idle() once every ticket is released, and release is idempotent', async () => {
    const queue = new WorkQueue({ maxConcurrency: 1, queueSize: 1 });
    const a = queue.admit();
    await a.acquire(never);
    const b = queue.admit();
    let idle = false;
    const done = queue.idle().then(() => (idle = true));
    a.release();
    a.release();
    await Promise.resolve();
    expect(idle).toBe(false);
    b.release();
    await done;
    expect(queue.depth + queue.inFlight).toBe(0);
  });
});
