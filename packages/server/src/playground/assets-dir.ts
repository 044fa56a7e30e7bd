import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { serverPackageRoot } from '../package-root.js';

/**
 * The built playground page: `playground/` at the root of this package, written there by
 * packages/playground's build (`npm run build`) and shipped with the package. Undefined when the
 * page has not been built.
 */
export function findPlaygroundDir(from: string = import.meta.url): string | undefined {
  const root = serverPackageRoot(from);
  if (root === undefined) return undefined;
  const candidate = join(root, 'playground');
  return existsSync(join(candidate, 'index.html')) ? candidate : undefined;
}
