import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The built playground page: `playground/` at the root of this package, written there by
 * packages/playground's build (`npm run build`) and shipped with the package. Found by walking
 * up from this module to the package root, so it works from src/ (tsx, vitest) and from dist/.
 * Undefined when the page has not been built.
 */
export function findPlaygroundDir(from: string = import.meta.url): string | undefined {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const candidate = join(dir, 'playground');
      return existsSync(join(candidate, 'index.html')) ? candidate : undefined;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
