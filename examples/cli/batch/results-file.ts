import { open, readFile, truncate } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { BatchItemResult } from '@magma-som/sdk';
import type { BatchAsk } from './manifest.js';

/** One line of results.jsonl. */
export type ResultRow =
  | {
      readonly id: string;
      readonly image: string;
      readonly question: string;
      readonly status: 'done';
      readonly answer: string;
      readonly references: readonly number[];
      readonly attempts: number;
    }
  | {
      readonly id: string;
      readonly image: string;
      readonly question: string;
      readonly status: 'failed';
      readonly error: { readonly code: string; readonly message: string };
      readonly attempts: number;
    };

export function rowOf(ask: BatchAsk, result: BatchItemResult): ResultRow {
  const base = { id: ask.id, image: ask.image, question: ask.question };
  return result.status === 'done'
    ? {
        ...base,
        status: 'done',
        answer: result.response.answer,
        references: result.response.references.map((reference) => reference.label),
        attempts: result.attempts,
      }
    : {
        ...base,
        status: 'failed',
        error: { code: result.error.code, message: result.error.message },
        attempts: result.attempts,
      };
}

/**
 * The output file, appended to one line per result. Rows already in it (from an interrupted
 * run) are not written again. A last line cut short by a hard kill is dropped first, so the
 * file stays one JSON object per line.
 */
export class ResultsFile {
  private constructor(
    private readonly handle: FileHandle,
    /** Ids of the rows the file holds. */
    readonly written: Set<string>,
  ) {}

  static async open(path: string): Promise<ResultsFile> {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    if (complete.length < text.length) await truncate(path, Buffer.byteLength(complete));
    const written = new Set<string>();
    for (const line of complete.split('\n')) {
      if (line.trim() === '') continue;
      const id = (JSON.parse(line) as { id?: unknown }).id;
      if (typeof id === 'string') written.add(id);
    }
    return new ResultsFile(await open(path, 'a'), written);
  }

  /** Appends the row unless the file has one for its id; answers whether it wrote. */
  async append(row: ResultRow): Promise<boolean> {
    if (this.written.has(row.id)) return false;
    await this.handle.write(`${JSON.stringify(row)}\n`);
    this.written.add(row.id);
    return true;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
