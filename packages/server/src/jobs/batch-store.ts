import type { Redis } from 'ioredis';
import type { BatchItemResult, BatchState, BatchStatus } from '@magma-som/schemas';
import { errorData } from '@magma-som/schemas';

/** Where batches live in Redis, next to (not inside) BullMQ's own keys. */
export const KEY_PREFIX = 'magma:';

const metaKey = (batchId: string): string => `${KEY_PREFIX}batch:${batchId}`;
const resultsKey = (batchId: string): string => `${KEY_PREFIX}batch:${batchId}:results`;
const idemKey = (key: string): string => `${KEY_PREFIX}idem:${key}`;

// Each script runs atomically in Redis, so two workers finishing the same item (one of them
// after its lock expired) cannot both count it: HSETNX keeps the first result, and only the
// call that stored it moves the counters. The last result starts the batch's expiry clock.
const FINISH_IF_DONE = `
local function finishIfDone(meta, results, now, ttl, idemPrefix)
  local m = redis.call('HMGET', meta, 'total', 'done', 'failed', 'cancelled', 'idem')
  local finished = (tonumber(m[2]) or 0) + (tonumber(m[3]) or 0) + (tonumber(m[4]) or 0)
  if finished < tonumber(m[1]) then return 0 end
  local expires = tonumber(now) + tonumber(ttl)
  redis.call('HSET', meta, 'finishedAt', now, 'expiresAt', expires)
  redis.call('PEXPIREAT', meta, expires)
  redis.call('PEXPIREAT', results, expires)
  if m[5] and m[5] ~= '' then redis.call('PEXPIREAT', idemPrefix .. m[5], expires) end
  return 1
end
`;

/** KEYS: meta, results. ARGV: index, result JSON, counter (done|failed), now, ttl, idem prefix. */
const RECORD_SCRIPT = `${FINISH_IF_DONE}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
finishIfDone(KEYS[1], KEYS[2], ARGV[4], ARGV[5], ARGV[6])
return 1
`;

/**
 * KEYS: meta, results. ARGV: now, ttl, idem prefix, error JSON. Gives every item still without a
 * result a CANCELLED one; answers how many, or -1 for an unknown batch.
 */
const CANCEL_SCRIPT = `${FINISH_IF_DONE}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'finishedAt') == 1 then return 0 end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
local cancelled = 0
for i = 0, total - 1 do
  local entry = '{"index":' .. i .. ',"status":"failed","error":' .. ARGV[4] .. ',"attempts":0}'
  cancelled = cancelled + redis.call('HSETNX', KEYS[2], i, entry)
end
redis.call('HINCRBY', KEYS[1], 'cancelled', cancelled)
redis.call('HSET', KEYS[1], 'cancelledAt', ARGV[1])
finishIfDone(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
return cancelled
`;

/**
 * KEYS: meta, idem (or meta again). ARGV: batchId, total, now, fingerprint, idem key ('' = none),
 * meta prefix. Answers the id of the batch that holds the key: this one when it is new.
 */
const CREATE_SCRIPT = `
if ARGV[5] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing and redis.call('EXISTS', ARGV[6] .. existing) == 1 then return existing end
  redis.call('SET', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], 'total', ARGV[2], 'done', 0, 'failed', 0, 'cancelled', 0,
  'createdAt', ARGV[3], 'fingerprint', ARGV[4], 'idem', ARGV[5], 'enqueued', 0)
return ARGV[1]
`;

interface ScriptCommands {
  magmaRecord(meta: string, results: string, ...args: (string | number)[]): Promise<number>;
  magmaCancel(meta: string, results: string, ...args: (string | number)[]): Promise<number>;
  magmaCreate(meta: string, idem: string, ...args: (string | number)[]): Promise<string>;
}

export interface BatchMeta {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly createdAt: number;
  readonly finishedAt: number | undefined;
  readonly expiresAt: number | undefined;
  readonly cancelledAt: number | undefined;
  readonly fingerprint: string;
  readonly idempotencyKey: string | undefined;
  readonly enqueued: boolean;
}

/** Batch bookkeeping in Redis: progress counters, one result per item, idempotency keys. */
export class BatchStore {
  private readonly redis: Redis & ScriptCommands;

  constructor(
    redis: Redis,
    private readonly resultTtlMs: number,
  ) {
    redis.defineCommand('magmaRecord', { numberOfKeys: 2, lua: RECORD_SCRIPT });
    redis.defineCommand('magmaCancel', { numberOfKeys: 2, lua: CANCEL_SCRIPT });
    redis.defineCommand('magmaCreate', { numberOfKeys: 2, lua: CREATE_SCRIPT });
    this.redis = redis as Redis & ScriptCommands;
  }

  /**
   * Creates the batch's record, or finds the batch an idempotency key already names; answers
   * its id and whether it was created now.
   */
  async create(
    batchId: string,
    total: number,
    fingerprint: string,
    idempotencyKey: string | undefined,
  ): Promise<{ batchId: string; created: boolean }> {
    const meta = metaKey(batchId);
    const holder = await this.redis.magmaCreate(
      meta,
      idempotencyKey === undefined ? meta : idemKey(idempotencyKey),
      batchId,
      total,
      Date.now(),
      fingerprint,
      idempotencyKey ?? '',
      `${KEY_PREFIX}batch:`,
    );
    return { batchId: holder, created: holder === batchId };
  }

  /** Whether an idempotency key names a batch already. */
  async holdsKey(idempotencyKey: string): Promise<boolean> {
    return (await this.redis.exists(idemKey(idempotencyKey))) === 1;
  }

  async markEnqueued(batchId: string): Promise<void> {
    await this.redis.hset(metaKey(batchId), 'enqueued', 1);
  }

  /** Stores an item's result unless it has one; false when it had one (or the batch is gone). */
  async record(batchId: string, result: BatchItemResult): Promise<boolean> {
    const stored = await this.redis.magmaRecord(
      metaKey(batchId),
      resultsKey(batchId),
      result.index,
      JSON.stringify(result),
      result.status === 'done' ? 'done' : 'failed',
      Date.now(),
      this.resultTtlMs,
      idemKey(''),
    );
    return stored === 1;
  }

  /** Cancels what has no result yet; undefined for an unknown batch, else how many items. */
  async cancel(batchId: string): Promise<number | undefined> {
    const error = errorData('CANCELLED', 'the batch was cancelled before this item ran');
    const cancelled = await this.redis.magmaCancel(
      metaKey(batchId),
      resultsKey(batchId),
      Date.now(),
      this.resultTtlMs,
      idemKey(''),
      JSON.stringify(error),
    );
    return cancelled < 0 ? undefined : cancelled;
  }

  async meta(batchId: string): Promise<BatchMeta | undefined> {
    const raw = await this.redis.hgetall(metaKey(batchId));
    if (raw.total === undefined) return undefined;
    const num = (value: string | undefined): number | undefined =>
      value === undefined || value === '' ? undefined : Number(value);
    return {
      total: Number(raw.total),
      done: Number(raw.done ?? 0),
      failed: Number(raw.failed ?? 0),
      cancelled: Number(raw.cancelled ?? 0),
      createdAt: Number(raw.createdAt),
      finishedAt: num(raw.finishedAt),
      expiresAt: num(raw.expiresAt),
      cancelledAt: num(raw.cancelledAt),
      fingerprint: raw.fingerprint ?? '',
      idempotencyKey: raw.idem === undefined || raw.idem === '' ? undefined : raw.idem,
      enqueued: raw.enqueued === '1',
    };
  }

  /** Whether items of this batch should still run (not cancelled, not expired). */
  async isOpen(batchId: string): Promise<boolean> {
    const [total, cancelledAt] = await this.redis.hmget(metaKey(batchId), 'total', 'cancelledAt');
    return total !== null && cancelledAt === null;
  }

  /** The stored results of items first .. first+count-1, in index order, and how many lack one. */
  async results(
    batchId: string,
    first: number,
    count: number,
  ): Promise<{ items: BatchItemResult[]; pending: number }> {
    if (count <= 0) return { items: [], pending: 0 };
    const fields = Array.from({ length: count }, (_, i) => String(first + i));
    const values = await this.redis.hmget(resultsKey(batchId), ...fields);
    const items: BatchItemResult[] = [];
    let pending = 0;
    for (const value of values) {
      if (value === null) pending++;
      else items.push(JSON.parse(value) as BatchItemResult);
    }
    return { items, pending };
  }

  /** Indices that already have a result (to re-enqueue only the others). */
  async finishedIndices(batchId: string): Promise<Set<number>> {
    const keys = await this.redis.hkeys(resultsKey(batchId));
    return new Set(keys.map(Number));
  }
}

/** The status a client sees, from the stored counters. */
export function statusOf(batchId: string, meta: BatchMeta): BatchStatus {
  const { total, done, failed, cancelled } = meta;
  const iso = (ms: number): string => new Date(ms).toISOString();
  let state: BatchState;
  if (meta.cancelledAt !== undefined) state = 'cancelled';
  else if (meta.finishedAt !== undefined) state = 'completed';
  else state = done + failed > 0 ? 'running' : 'queued';
  return {
    batchId,
    state,
    total,
    done,
    failed,
    cancelled,
    pending: total - done - failed - cancelled,
    createdAt: iso(meta.createdAt),
    ...(meta.finishedAt !== undefined ? { finishedAt: iso(meta.finishedAt) } : {}),
    ...(meta.expiresAt !== undefined ? { expiresAt: iso(meta.expiresAt) } : {}),
    ...(meta.idempotencyKey !== undefined ? { idempotencyKey: meta.idempotencyKey } : {}),
  };
}
