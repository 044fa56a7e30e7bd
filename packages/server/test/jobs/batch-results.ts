import { BatchResultsPageSchema } from '@magma-som/schemas';
import type { AskRequestInput, BatchItemResult } from '@magma-som/schemas';
import { expect } from 'vitest';
import { postTrpc } from '../server/helpers.js';

/** Every stored result of a batch, read page by page through the REST route a client uses. */
export async function readAllResults(
  url: string,
  batchId: string,
  pageSize: number,
): Promise<BatchItemResult[]> {
  const results: BatchItemResult[] = [];
  for (let cursor: number | undefined = 0; cursor !== undefined;) {
    const response = await fetch(
      `${url}/v1/som/batches/${batchId}/results?cursor=${cursor}&limit=${pageSize}`,
    );
    const page = BatchResultsPageSchema.parse(await response.json());
    results.push(...page.items);
    cursor = page.nextCursor;
  }
  return results;
}

/**
 * Each result is done and equals a direct `ask` of its item on the server at `directUrl`; item i
 * of the batch is `distinct[i % distinct.length]`.
 */
export async function expectAnswersOfDirectAsks(
  directUrl: string,
  distinct: readonly AskRequestInput[],
  results: readonly BatchItemResult[],
): Promise<void> {
  const answers: string[] = [];
  for (const ask of distinct) {
    const response = await postTrpc(directUrl, 'ask', ask);
    answers.push(
      ((await response.json()) as { result: { data: { answer: string } } }).result.data.answer,
    );
  }
  for (const result of results) {
    expect(result.status).toBe('done');
    if (result.status === 'done') {
      expect(result.response.answer).toBe(answers[result.index % distinct.length]);
    }
  }
}
