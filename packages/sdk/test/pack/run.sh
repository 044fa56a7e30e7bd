#!/usr/bin/env bash
# Packaging test: the SDK as a user gets it from npm.
#  1. builds @magma-som/sdk, checks its published declarations import no other package (it has
#     no dependencies: what it uses is bundled), and runs `attw --pack`;
#  2. packs it into a tarball and installs that alone into a fresh project outside the workspace;
#  3. type-checks TypeScript consumers (ESM and CommonJS) with the published declarations;
#  4. runs them, and plain-JavaScript ones (native `await using` on Node 24+), against a real
#     server started from the workspace; then Deno and Bun (their npm packages) run one too;
#  5. (before 2's install) a production install of the tarball alone: no typescript, undici or
#     zod, at most 5 MB; a browser bundle of a minimal app from it, at most 60 kB gzipped; the
#     import time of the SDK's entry next to openai-node's, printed, not gated (install-size.sh).
# Usage: bash packages/sdk/test/pack/run.sh
#   KEEP=1 keeps the temporary project; SKIP_RUNTIMES=1 skips installing Deno and Bun.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
sdk="$root/packages/sdk"
work=$(mktemp -d "${TMPDIR:-/tmp}/magma-sdk-pack.XXXXXX")
server_pid=""

cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "${KEEP:-}" == "1" ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$root"

step "build sdk"
npm run build --silent -w packages/sdk >/dev/null

step "published declarations and the default entry stand alone"
node -e "const p = require('$sdk/package.json'); if (Object.keys(p.dependencies ?? {}).length) { console.error('dependencies:', p.dependencies); process.exit(1); }" \
  || fail "the SDK declares dependencies; it should bundle what it uses"
for file in "$sdk"/dist/*.d.ts "$sdk"/dist/*.d.cts; do
  # The SDK has no dependencies, so its declarations may name only its own files.
  for spec in $(grep -ohE "(from|import\() *['\"][^'\"]+['\"]" "$file" | grep -oE "['\"][^'\"]+['\"]" | tr -d "'\"" | sort -u); do
    [[ "$spec" == ./* ]] || fail "$file imports $spec, which a user's install does not have"
  done
done
# The default entry (browsers, edge runtimes) and its chunks: Web APIs only.
for file in "$sdk"/dist/index.js "$sdk"/dist/chunk-*.js; do
  if grep -nE "(from|import\(|require\() *['\"](node:[a-z_/]+|undici|fs|fs/promises|crypto|url|stream)['\"]" "$file"; then
    fail "$file imports a Node module"
  fi
done
echo "ok: declarations import only the SDK's own files; dist/index.js and its chunks no Node modules"

step "are the types wrong (attw --pack)"
# node10 (TypeScript's pre-exports resolution) cannot see the ./node sub-path; Node itself and
# every current moduleResolution can.
npx --no-install attw --pack packages/sdk --profile node16

step "npm pack"
mkdir -p "$work/tarballs"
npm pack --silent --pack-destination "$work/tarballs" -w packages/sdk >/dev/null
ls "$work/tarballs"
if tar -tzf "$work"/tarballs/magma-som-sdk-*.tgz | grep -q '^package/test/'; then
  fail "the SDK tarball contains tests"
fi

step "production install: size, no typescript/undici/zod, browser bundle, import time"
bash "$here/install-size.sh" "$work/tarballs" "$work"

step "install the tarballs into a fresh project"
cp -R "$here/consumer" "$work/app"
cd "$work/app"
types_node=$(node -p "require('$root/node_modules/@types/node/package.json').version")
npm install --no-audit --no-fund --loglevel=error "$work"/tarballs/magma-som-sdk-*.tgz "@types/node@$types_node"
[[ ! -e node_modules/@magma-som/server ]] || fail "installing the SDK pulled in the server"

step "type-check the consumers against the published declarations"
node "$root/node_modules/typescript/bin/tsc" -p tsconfig.json
ls dist

step "start a server from the workspace"
cd "$root"
node --conditions=@magma-som/source --import tsx "$sdk/test/pack/serve.ts" "$work/scene.png" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 120); do
  if grep -q '^http' "$work/server.out" 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; fail "the server exited"; }
  sleep 0.5
done
read -r url api_key < <(grep -m1 '^http' "$work/server.out") || fail "the server did not start"
echo "server at $url"

step "run the consumers"
cd "$work/app"
export MAGMA_URL="$url" MAGMA_API_KEY="$api_key" MAGMA_IMAGE="$work/scene.png"
node dist/esm.mjs
node dist/cjs.cjs
node plain.mjs
node plain.cjs
# Native `await using` in plain JavaScript parses on Node 24+ only (Node 20 and 22: SyntaxError).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major >= 24 )); then
  node native.mjs
else
  echo "native.mjs (native \`await using\`) skipped: Node $(node -v) does not parse it; Node 24+ runs it"
fi

step "Deno and Bun (from the npm registry)"
if [[ "${SKIP_RUNTIMES:-}" == "1" ]]; then
  echo "skipped (SKIP_RUNTIMES=1)"
else
  mkdir -p "$work/runtimes"
  (cd "$work/runtimes" && echo '{"name":"runtimes","private":true}' >package.json \
    && npm install --no-audit --no-fund --loglevel=error deno@^2 bun@^1 >/dev/null) \
    || fail "could not install deno and bun from the npm registry (SKIP_RUNTIMES=1 skips them)"
  # Deno reads the app's package.json and node_modules; Bun resolves them like Node.
  "$work/runtimes/node_modules/.bin/deno" run --quiet --allow-net --allow-read --allow-env runtimes.mjs
  "$work/runtimes/node_modules/.bin/bun" runtimes.mjs
fi

step "packaging test passed"
