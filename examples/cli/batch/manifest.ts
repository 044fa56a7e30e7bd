import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { MarkInput } from '@magma-som/sdk';
import { UsageError } from '../mark-option.js';

/** One question about one image: a line of the manifest, or an image and a question of a folder. */
export interface BatchAsk {
  /** Names the row in results.jsonl; unique within the batch. */
  readonly id: string;
  /** The image path as the manifest or folder gave it (relative paths are kept relative). */
  readonly image: string;
  readonly marks: readonly MarkInput[];
  readonly question: string;
  readonly bytes: Buffer;
}

/** Defaults from the command line for folder images without a sidecar. */
export interface AskDefaults {
  readonly marks: readonly MarkInput[];
  readonly questions: readonly string[];
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif']);

/**
 * Reads the asks of `source`: a manifest (a .jsonl file, one ask per line) or a folder (every
 * image in it, with marks and questions from a `<name>.json` sidecar or the command line).
 */
export async function loadAsks(source: string, defaults: AskDefaults): Promise<BatchAsk[]> {
  const info = await stat(source).catch(() => {
    throw new UsageError(`${source}: no such file or folder`);
  });
  const asks = info.isDirectory() ? await loadFolder(source, defaults) : await loadManifest(source);
  if (asks.length === 0) throw new UsageError(`${source}: no asks found`);
  const seen = new Set<string>();
  for (const ask of asks) {
    if (seen.has(ask.id)) throw new UsageError(`${source}: id ${JSON.stringify(ask.id)} repeats`);
    seen.add(ask.id);
  }
  return asks;
}

/**
 * manifest.jsonl: one JSON object per line,
 *   {"image": "shots/a.png", "marks": [[x1, y1, x2, y2], ...], "question": "...", "id": "a"}
 * `image` is relative to the manifest's folder; `marks` is optional (the SDK's mark forms);
 * `id` defaults to the line number. Blank lines are skipped.
 */
async function loadManifest(path: string): Promise<BatchAsk[]> {
  const text = await readFile(path, 'utf8');
  const asks: BatchAsk[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const where = `${path}:${i + 1}`;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not a JSON object`);
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new UsageError(`${where}: not a JSON object`);
    }
    const { image, marks, question, id } = entry as Record<string, unknown>;
    if (typeof image !== 'string' || image === '') {
      throw new UsageError(`${where}: "image" must be a path`);
    }
    if (typeof question !== 'string' || question.trim() === '') {
      throw new UsageError(`${where}: "question" must be text`);
    }
    if (marks !== undefined && !Array.isArray(marks)) {
      throw new UsageError(`${where}: "marks" must be an array of boxes`);
    }
    if (id !== undefined && (typeof id !== 'string' || id === '')) {
      throw new UsageError(`${where}: "id" must be a non-empty string`);
    }
    asks.push({
      id: id ?? String(i + 1),
      image,
      marks: (marks ?? []) as MarkInput[],
      question,
      bytes: await readImage(resolve(dirname(path), image), where),
    });
  }
  return asks;
}

/**
 * A folder: each image (png, jpg, webp, gif; sorted by name) with the marks and questions of
 * its sidecar `<name>.json`, `{"marks": [...], "questions": ["...", ...]}`, or else those of
 * the command line. One ask per image and question, with the id `<file>#<n>`.
 */
async function loadFolder(folder: string, defaults: AskDefaults): Promise<BatchAsk[]> {
  const names = (await readdir(folder))
    .filter((name) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase()))
    .sort();
  const asks: BatchAsk[] = [];
  for (const name of names) {
    const path = join(folder, name);
    const sidecar = await readSidecar(join(folder, `${basename(name, extname(name))}.json`));
    const marks = sidecar?.marks ?? defaults.marks;
    const questions = sidecar?.questions ?? defaults.questions;
    if (questions.length === 0) {
      throw new UsageError(`${path}: no questions (give --question, or a sidecar ${name}.json)`);
    }
    const bytes = await readImage(path, path);
    for (const [n, question] of questions.entries()) {
      asks.push({ id: `${name}#${n + 1}`, image: path, marks, question, bytes });
    }
  }
  return asks;
}

async function readSidecar(
  path: string,
): Promise<{ marks: MarkInput[]; questions: string[] } | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let parsed: { marks?: unknown; questions?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new UsageError(`${path}: not JSON`);
  }
  const { marks = [], questions } = parsed;
  const valid =
    Array.isArray(marks) &&
    Array.isArray(questions) &&
    questions.length > 0 &&
    questions.every((q) => typeof q === 'string' && q.trim() !== '');
  if (!valid) {
    throw new UsageError(`${path}: expected {"marks": [...], "questions": ["...", ...]}`);
  }
  return { marks: marks as MarkInput[], questions: questions as string[] };
}

async function readImage(path: string, where: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new UsageError(`${where}: cannot read image ${path}`);
  }
}

/**
 * The batch's idempotency key, derived from what is asked (ids, image bytes, marks, questions,
 * options): running the same command again joins the same batch on the server instead of
 * starting another, and a changed manifest starts a new one.
 */
export function idempotencyKeyOf(asks: readonly BatchAsk[], options: object): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(options));
  for (const ask of asks) {
    const image = createHash('sha256').update(ask.bytes).digest('hex');
    hash.update(JSON.stringify([ask.id, image, ask.marks, ask.question]));
  }
  return `magma-som-batch:${hash.digest('base64url').slice(0, 32)}`;
}
