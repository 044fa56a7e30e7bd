import { SingleBar } from 'cli-progress';
import { createClient } from '@magma-som/sdk';
import type { BatchHandle, BatchStatus } from '@magma-som/sdk';
import { idempotencyKeyOf, loadAsks } from './manifest.js';
import type { AskDefaults, BatchAsk } from './manifest.js';
import { ResultsFile, rowOf } from './results-file.js';

export interface BatchCommand {
  /** A folder of images or a manifest.jsonl. */
  readonly source: string;
  readonly out: string;
  readonly defaults: AskDefaults;
  readonly url: string;
  readonly apiKey: string | undefined;
  readonly maxTokens: number | undefined;
  /** Time between progress polls. */
  readonly pollMs: number;
  /** Stops waiting (Ctrl-C); the batch goes on on the server and a re-run resumes it. */
  readonly signal: AbortSignal;
}

/** Exit codes: every item answered, some failed (rows with an error), interrupted. */
export const BATCH_EXIT = { answered: 0, someFailed: 1, interrupted: 130 } as const;

/** Results read per page; small, so rows reach the file soon after their items finish. */
const PAGE_SIZE = 20;

/**
 * Submits the asks as one batch (or joins the batch an earlier run of the same asks made),
 * shows its progress, appends each result missing from the output file, and prints a summary.
 */
export async function runBatch(command: BatchCommand): Promise<number> {
  const started = performance.now();
  const asks = await loadAsks(command.source, command.defaults);
  const options = command.maxTokens === undefined ? {} : { maxTokens: command.maxTokens };
  const idempotencyKey = idempotencyKeyOf(asks, options);
  const file = await ResultsFile.open(command.out);
  try {
    const before = asks.filter((ask) => file.written.has(ask.id)).length;
    if (before === asks.length) {
      console.error(`${command.out} already holds all ${asks.length} results; nothing to do`);
      return BATCH_EXIT.answered;
    }

    await using client = createClient({ baseUrl: command.url, apiKey: command.apiKey });
    // The batch handle is not `await using`: disposing it cancels an unfinished batch, and an
    // interrupted run must leave it running for the next run to pick up its results.
    const batch = await client.jobs.create(
      asks.map((ask) => ({
        image: ask.bytes,
        marks: ask.marks,
        prompt: ask.question,
        ...(command.maxTokens === undefined ? {} : { options }),
      })),
      { idempotencyKey, signal: command.signal },
    );
    console.error(
      `batch ${batch.batchId}: ${asks.length} asks, ${before} already in ${command.out}` +
        ` (key ${idempotencyKey})`,
    );

    const bar = new SingleBar({
      stream: process.stderr,
      format:
        ' {bar} {percentage}% | {value}/{total} | failed {failed} | {duration_formatted} | {remaining}',
      hideCursor: true,
      clearOnComplete: false,
    });
    const eta = etaOf(finishedOf(batch.lastStatus), asks.length);
    bar.start(asks.length, finishedOf(batch.lastStatus), {
      failed: batch.lastStatus.failed,
      remaining: eta(finishedOf(batch.lastStatus)),
    });
    let written = 0;
    // Both loops end on their own once the batch is finished, or on Ctrl-C; wait for both so
    // nothing writes to the file after it is closed.
    const [waited, appended] = await Promise.allSettled([
      batch.wait({
        pollIntervalMs: command.pollMs,
        signal: command.signal,
        onProgress: (next) =>
          bar.update(finishedOf(next), { failed: next.failed, remaining: eta(finishedOf(next)) }),
      }),
      appendResults(batch, asks, file, command).then((count) => {
        written = count;
      }),
    ]);
    bar.stop();
    if (command.signal.aborted) {
      console.error(
        `interrupted: ${file.written.size} of ${asks.length} results in ${command.out}; ` +
          `batch ${batch.batchId} goes on on the server, run the same command again to resume`,
      );
      return BATCH_EXIT.interrupted;
    }
    if (waited.status === 'rejected') throw waited.reason;
    if (appended.status === 'rejected') throw appended.reason;
    const status = waited.value;

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.error(
      `${status.state}: ${status.done} done, ${status.failed} failed, ${status.cancelled} cancelled` +
        ` of ${status.total} in ${seconds}s; ${written} new rows, ${file.written.size} in ${command.out}`,
    );
    return status.done === status.total ? BATCH_EXIT.answered : BATCH_EXIT.someFailed;
  } finally {
    await file.close();
  }
}

/** Writes the rows the file lacks, in item order, as pages of results finish. */
async function appendResults(
  batch: BatchHandle,
  asks: readonly BatchAsk[],
  file: ResultsFile,
  command: BatchCommand,
): Promise<number> {
  let written = 0;
  const results = batch.results({
    pageSize: PAGE_SIZE,
    pollIntervalMs: command.pollMs,
    signal: command.signal,
  });
  for await (const result of results) {
    const ask = asks[result.index];
    if (ask !== undefined && (await file.append(rowOf(ask, result)))) written++;
  }
  return written;
}

function finishedOf(status: BatchStatus): number {
  return status.done + status.failed + status.cancelled;
}

/**
 * "eta 12s" from the pace of this run (items finished since it started), or "eta -" before
 * the first one: items an earlier run saw finish say nothing about the pace now.
 */
function etaOf(finishedAtStart: number, total: number): (finished: number) => string {
  const started = performance.now();
  return (finished) => {
    const gained = finished - finishedAtStart;
    if (gained <= 0) return 'eta -';
    const seconds = ((performance.now() - started) / 1000 / gained) * (total - finished);
    return `eta ${Math.round(seconds)}s`;
  };
}
