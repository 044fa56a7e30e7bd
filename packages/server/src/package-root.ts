import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The server package's root folder: the nearest folder above `from` (a module URL, this module by
 * default) holding a package.json. Modules sit at different depths below it in src/ (tsx, vitest)
 * and in the tsup build (dist/, dist/chunks/), so files shipped with the package (its
 * package.json, the label font, the built playground) are found from here, not by relative paths.
 * Undefined if no package.json is found up to the file system's root.
 */
export function serverPackageRoot(from: string = import.meta.url): string | undefined {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
