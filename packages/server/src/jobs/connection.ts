import { Redis } from 'ioredis';
import type { AskRequest } from '@magma-som/schemas';

/** The BullMQ queue every batch item goes through, and the prefix of its keys. */
export const QUEUE_NAME = 'asks';
export const BULL_PREFIX = 'magma:bull';

/** One queued item: which batch and index it answers, and the ask itself (image inline). */
export interface AskJobData {
  readonly batchId: string;
  readonly index: number;
  readonly request: AskRequest;
}

/** BullMQ's job id of an item: deterministic, so adding an item twice adds it once. */
export function jobIdOf(batchId: string, index: number): string {
  return `${batchId}.${index}`;
}

/**
 * A Redis connection for the jobs. BullMQ's workers block on Redis and need commands to wait
 * for a reconnection rather than fail (maxRetriesPerRequest: null); API calls should fail fast
 * instead, so a client gets an error and not a hanging request while Redis is away.
 */
export function connectRedis(url: string, purpose: 'api' | 'worker'): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: purpose === 'worker' ? null : 2,
    connectionName: `magma-som-${purpose}`,
    lazyConnect: false,
  });
}
