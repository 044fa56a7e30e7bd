import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The model shipped in the repository, used when MAGMA_MODEL_DIR is not set. */
export const BUNDLED_MODEL = join('models', 'magma-tiny-som');

/**
 * Finds the bundled tiny model by walking up from this module to the folder that holds
 * models/magma-tiny-som, so it works from src/ (tsx, vitest) and from dist/ inside the repo.
 * A published install has no models/ folder above it: it must set MAGMA_MODEL_DIR.
 */
export function findBundledModelDir(from: string = import.meta.url): string | undefined {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    const candidate = join(dir, BUNDLED_MODEL);
    if (existsSync(join(candidate, 'config.json')) || existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
