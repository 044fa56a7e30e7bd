#!/usr/bin/env bash
# Packaging test: the SDK as a user gets it from npm.
#  1. builds @magma-som/schemas and @magma-som/sdk, checks the SDK's published declarations
#     import nothing of the server, and runs `attw --pack`;
#  2. packs both into tarballs and installs them (with their dependencies from the registry)
#     into a fresh project outside the workspace;
#  3. type-checks TypeScript consumers (ESM and CommonJS) with the published declarations;
#  4. runs them, and plain-JavaScript ones (native `await using` on Node 24+), against a real
#     server started from the workspace;
#  5. (before 2's install) a production install of the tarballs alone: no typescript, its size,
#     and the import time of the SDK's entry next to openai-node's (install-size.sh).
# Usage: bash packages/sdk/test/pack/run.sh   (KEEP=1 keeps the temporary project)
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

step "build schemas and sdk"
npm run build --silent -w packages/schemas -w packages/sdk >/dev/null

step "published declarations import nothing of the server"
for file in "$sdk"/dist/index.d.ts "$sdk"/dist/index.d.cts; do
  [[ -f "$file" ]] || fail "$file is missing"
  if grep -nE "(from|import\() *['\"](@magma-som/server|fastify|@fastify/|onnxruntime-node|sharp|@napi-rs/canvas)" "$file"; then
    fail "$file imports server-only packages"
  fi
  # Every module the declarations name must be one the SDK depends on.
  for spec in $(grep -oE "from ['\"][^'\"]+['\"]" "$file" | sed -E "s/from ['\"]([^'\"]+)['\"]/\1/" | sort -u); do
    case "$spec" in
      @magma-som/schemas) ;;
      *) fail "$file imports $spec, which is not a dependency of the SDK's types" ;;
    esac
  done
done
echo "ok: dist/index.d.ts and dist/index.d.cts import only @magma-som/schemas"

step "are the types wrong (attw --pack)"
npx --no-install attw --pack packages/sdk

step "npm pack"
mkdir -p "$work/tarballs"
npm pack --silent --pack-destination "$work/tarballs" -w packages/schemas -w packages/sdk >/dev/null
ls "$work/tarballs"
if tar -tzf "$work"/tarballs/magma-som-sdk-*.tgz | grep -q '^package/test/'; then
  fail "the SDK tarball contains tests"
fi

step "production install: size, no typescript, import time"
bash "$here/install-size.sh" "$work/tarballs" "$work"

step "install the tarballs into a fresh project"
cp -R "$here/consumer" "$work/app"
cd "$work/app"
types_node=$(node -p "require('$root/node_modules/@types/node/package.json').version")
npm install --no-audit --no-fund --loglevel=error "$work"/tarballs/*.tgz "@types/node@$types_node"
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

step "packaging test passed"
