#!/usr/bin/env node
// Builds the optional native image addons, each on its own: native/build/jpeg-decode.node
// (libjpeg-turbo), native/build/png-decode.node (libpng) and native/build/resize-normalize.node
// (the model's resize + normalise, no library). Run on install and before the tests. Each needs
// a C compiler and Node's headers (shipped with Node, or the node-api-headers package), the
// decoders also their library's headers; when one is missing it says so and exits 0, and the
// server uses sharp or JavaScript for that step, as before (same pixels and floats, slower: see
// the server README's "Image decoding"). Plain JavaScript: it runs before anything is built.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const ADDONS = [
  {
    name: 'jpeg-decode',
    library: 'jpeg',
    package: 'libjpeg62-turbo-dev',
    header: 'decode-addon.h',
    what: 'JPEG decoder',
    fallback: 'JPEG images will be decoded by sharp',
  },
  {
    name: 'png-decode',
    library: 'png',
    package: 'libpng-dev',
    header: 'decode-addon.h',
    what: 'PNG decoder',
    fallback: 'PNG images will be decoded by sharp',
  },
  {
    name: 'resize-normalize',
    // its floats must be JavaScript's: no fused multiply-add (see the source's header)
    flags: ['-ffp-contract=off'],
    what: 'resize',
    fallback: 'images will be resized for the model in JavaScript',
  },
];

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

function build(addon) {
  const source = join(root, 'native', `${addon.name}.c`);
  const target = join(root, 'native', 'build', `${addon.name}.node`);
  // the addon's own source and the header it includes, if any
  const sources = [source, ...(addon.header ? [join(root, 'native', addon.header)] : [])];
  const newest = Math.max(...sources.map((file) => statSync(file).mtimeMs));
  if (!force && existsSync(target) && statSync(target).mtimeMs >= newest) return;
  const include = nodeHeaders();
  if (include === undefined) {
    say(
      `no node_api.h found; ${addon.fallback} (install node-api-headers to build the faster ${addon.what})`,
    );
    return;
  }
  const compiler = process.env.CC || 'cc';
  const partial = `${target}.${process.pid}.tmp`;
  mkdirSync(dirname(target), { recursive: true });
  // CFLAGS/LDFLAGS: headers and libraries elsewhere (e.g. Homebrew's jpeg-turbo, libpng)
  const extra = (name) => (process.env[name] ?? '').split(/\s+/).filter(Boolean);
  const flags = [
    '-O2',
    '-fPIC',
    '-shared',
    ...(addon.flags ?? []),
    `-I${include}`,
    ...extra('CFLAGS'),
    '-o',
    partial,
    source,
  ];
  flags.push(...extra('LDFLAGS'), ...(addon.library ? [`-l${addon.library}`] : []));
  // macOS resolves the N-API symbols from the node binary when the addon loads
  if (process.platform === 'darwin') flags.push('-undefined', 'dynamic_lookup');
  const result = spawnSync(compiler, flags, { encoding: 'utf8' });
  if (result.status !== 0) {
    rmSync(partial, { force: true });
    const why = result.error
      ? result.error.message
      : result.stderr.trim().split('\n').slice(-3).join(' | ');
    const needs = addon.library
      ? `a C compiler and the ${addon.library} headers (Debian/Ubuntu: apt-get install gcc ${addon.package})`
      : 'a C compiler (Debian/Ubuntu: apt-get install gcc)';
    say(`the faster ${addon.what} was not built (${why}); ${addon.fallback}. It needs ${needs}.`);
    return;
  }
  renameSync(partial, target);
}

if (process.env.MAGMA_SKIP_NATIVE_BUILD !== '1' && process.platform !== 'win32') {
  // win32: sharp decodes; the build here is for cc-style compilers
  for (const addon of ADDONS) build(addon);
}
