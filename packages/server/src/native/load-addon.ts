import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// The optional native addons (native/*.c), built by scripts/build-native.mjs on install when a C
// compiler is there. Each has a JavaScript or sharp path that gives the same result, so a
// missing build only costs speed.

export interface LoadedAddon<T> {
  readonly addon?: T;
  /** Why there is no addon (for the start-up log): not built, or it did not load. */
  readonly missing?: string;
}

/** native/build/<name>.node, found from src/ (tsx) or from dist/ and its chunks alike. */
export function loadAddon<T>(name: string): LoadedAddon<T> {
  const file = `native/build/${name}.node`;
  // src/<concern>/ and dist/ (dist/image-pool/ for the worker's chunk) sit at different depths.
  for (const up of ['../', '../../', '../../../']) {
    const path = fileURLToPath(new URL(up + file, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      return { addon: createRequire(import.meta.url)(path) as T };
    } catch (error) {
      return { missing: `${path} did not load: ${(error as Error).message}` };
    }
  }
  return { missing: `${file} is not built` };
}
