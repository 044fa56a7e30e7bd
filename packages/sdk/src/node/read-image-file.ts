import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { InvalidImageError } from '../errors.js';

/** Reads an image file by path or `file:` URL, failing with InvalidImageError. */
export async function readImageFile(source: string | URL): Promise<Uint8Array> {
  const path = source instanceof URL ? fileURLToPath(source) : source;
  try {
    return await readFile(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InvalidImageError(`cannot read image file ${JSON.stringify(path)} (${reason})`, {
      cause: error,
    });
  }
}
