import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serverPackageRoot } from './package-root.js';

/** The server package's version, read from its package.json (found from src/ and dist/ alike). */
export function serverVersion(): string {
  const root = serverPackageRoot(import.meta.url);
  if (root === undefined) return '0.0.0';
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name?: string;
    version?: string;
  };
  return pkg.name === '@magma-som/server' && pkg.version ? pkg.version : '0.0.0';
}
