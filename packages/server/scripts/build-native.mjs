#!/usr/bin/env node
// Builds native/build/jpeg-decode.node: the optional direct JPEG decoder (native/jpeg-decode.c).
// Run on install and before the tests. It needs a C compiler, Node's headers (shipped with
// Node, or the node-api-headers package) and libjpeg-turbo's headers; when one is missing it
// says so and exits 0, and the server decodes every JPEG through sharp, as before (same
// pixels, about 2 ms slower at 1024x768). Plain JavaScript: it runs before anything is built.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'jpeg-decode.c');
const target = join(root, 'native', 'build', 'jpeg-decode.node');
const force = process.argv.includes('--force');

function say(message) {
  console.error(`@magma-som/server: ${message}`);
}

function nodeHeaders() {
  const candidates = [join(dirname(process.execPath), '..', 'include', 'node')];
  try {
    const headers = createRequire(import.meta.url)('node-api-headers');
    candidates.push(headers.include_dir);
  } catch {
    // not installed: Node's own headers, if any, will do
  }
  return candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
}

function build() {
  if (process.env.MAGMA_SKIP_NATIVE_BUILD === '1') return;
  if (process.platform === 'win32') return; // sharp decodes; the build below is for cc-style compilers
  if (!force && existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs) return;
  const include = nodeHeaders();
  if (include === undefined) {
    say(
      'no node_api.h found; JPEGs will be decoded by sharp (install node-api-headers to build the faster decoder)',
    );
    return;
  }
  const compiler = process.env.CC || 'cc';
  const partial = `${target}.${process.pid}.tmp`;
  mkdirSync(dirname(target), { recursive: true });
  // CFLAGS/LDFLAGS: headers and library elsewhere (e.g. Homebrew's jpeg-turbo)
  const extra = (name) => (process.env[name] ?? '').split(/\s+/).filter(Boolean);
  const flags = [
    '-O2',
    '-fPIC',
    '-shared',
    `-I${include}`,
    ...extra('CFLAGS'),
    '-o',
    partial,
    source,
  ];
  flags.push(...extra('LDFLAGS'), '-ljpeg');
  // macOS resolves the N-API symbols from the node binary when the addon loads
  if (process.platform === 'darwin') flags.push('-undefined', 'dynamic_lookup');
  const result = spawnSync(compiler, flags, { encoding: 'utf8' });
  if (result.status !== 0) {
    rmSync(partial, { force: true });
    const why = result.error
      ? result.error.message
      : result.stderr.trim().split('\n').slice(-3).join(' | ');
    say(
      `the faster JPEG decoder was not built (${why}); JPEGs will be decoded by sharp. ` +
        'It needs a C compiler and libjpeg-turbo headers (Debian/Ubuntu: apt-get install gcc libjpeg62-turbo-dev).',
    );
    return;
  }
  renameSync(partial, target);
}

build();
