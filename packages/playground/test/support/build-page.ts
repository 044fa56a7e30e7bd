import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** Where the page is built to: inside the server package, which serves it. */
export const PAGE_DIR = fileURLToPath(new URL('../../../server/playground/', import.meta.url));

/**
 * Builds the page through nx, with the packages it is built from (the SDK's browser build), so
 * a plain `npm test` on a fresh clone tests the current page. After `npm run build` this is a
 * cache hit that changes nothing.
 */
export async function buildPage(): Promise<string> {
  const nx = fileURLToPath(new URL('node_modules/nx/bin/nx.js', `file://${ROOT}`));
  try {
    await promisify(execFile)(
      process.execPath,
      [nx, 'run', '@magma-som/playground:build', '--outputStyle=static'],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 },
    );
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`building the playground failed:\n${stdout}\n${stderr}`);
  }
  if (!existsSync(`${PAGE_DIR}index.html`)) throw new Error(`no page was built in ${PAGE_DIR}`);
  return PAGE_DIR;
}
