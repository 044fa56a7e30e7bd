#!/usr/bin/env bash
# CI for the Python model tools (tools/tiny-model, tools/magma_onnx, tools/reference):
#   1. byte-compile and lint (pyflakes) everything under tools/ and bench/baseline/;
#   2. a smoke run of the whole model pipeline on a few scenes, in a temp folder: data generation,
#      a few training steps, ONNX export, PyTorch-vs-Node parity fixtures checked by the engine's
#      parity test, fp16-edge and external-data variants of the bundle loaded by the engine, and
#      int4/int8 variants (tools/magma_onnx/quantize.py) checked against PyTorch with the same
#      dequantized weights, a mixed-dtype bundle (fp32 vision, fp16 decoder), and Magma-8B's export
#      path on a random checkpoint in the official layout (tools/magma_onnx/make_magma8b_fixture.py).
# Nothing in the repository is written (bytecode goes to the temp folder too).
#
# Usage: bash tools/ci/python-checks.sh [--lint-only | --smoke-only]
# Needs the Debian Python packages of tools/setup-python.sh and python3-pyflakes; .ci/run
# installs them when missing. Env: PYTHON (default /usr/bin/python3, the Debian one with torch),
# SMOKE_DIR (default: a new temp folder, removed at the end unless KEEP_SMOKE=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
lint=1 smoke=1
case "${1:-}" in
  --lint-only) smoke=0 ;;
  --smoke-only) lint=0 ;;
  "") ;;
  *) echo "usage: $0 [--lint-only | --smoke-only]" >&2; exit 2 ;;
esac

work=${SMOKE_DIR:-$(mktemp -d -t magma-python-ci.XXXXXX)}
mkdir -p "$work"
cleanup() { [[ "${KEEP_SMOKE:-0}" == 1 || -n "${SMOKE_DIR:-}" ]] || rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n==== python-checks: %s (%ds so far)\n' "$*" "$SECONDS"; }

# The tools' sources, without generated data and training runs (git-ignored, possibly huge),
# and the benchmark's Python baseline server (bench/baseline/).
mapfile -t sources < <(find tools bench/baseline -name '*.py' -not -path 'tools/tiny-model/data*' \
  -not -path 'tools/tiny-model/runs/*' | sort)
((${#sources[@]})) || { echo "no Python sources found under tools/" >&2; exit 1; }

if ((lint)); then
  step "byte-compile ${#sources[@]} files"
  PYTHONPYCACHEPREFIX="$work/pycache" "$PYTHON" -m compileall -q "${sources[@]}"
  step "pyflakes"
  "$PYTHON" -m pyflakes "${sources[@]}"
  echo "python-checks: lint OK"
fi
((smoke)) || exit 0

export PYTHONPYCACHEPREFIX="$work/pycache" PYTHONDONTWRITEBYTECODE=1
smoke_start=$SECONDS
# Magma-8B's export path on a small random checkpoint in the official layout (bf16, two shards,
# index, Hub config structure): the strict loader's refusals, then checkpoint -> hf_magma.py ->
# bundle -> the TypeScript engine, same greedy tokens and logits within 1e-4 of PyTorch.
step "smoke: Magma-8B checkpoint loader (unittest: refusals, name map, safetensors)"
"$PYTHON" -m unittest tools/magma_onnx/test_magma8b_checkpoint.py
step "smoke: Magma-8B official-layout fixture -> hf_magma.py -> engine parity"
"$PYTHON" tools/magma_onnx/make_magma8b_fixture.py --out "$work/magma8b"
"$PYTHON" tools/magma_onnx/hf_magma.py --checkpoint "$work/magma8b/checkpoint" \
  --revision "$(cat "$work/magma8b/revision")" --out "$work/magma8b-bundle" --dtype fp32 --device cpu \
  --name magma8b-fixture
MAGMA_PARITY_MODEL_DIR="$work/magma8b-bundle" MAGMA_PARITY_FIXTURE="$work/magma8b/parity.json" \
  nice -n 5 npx --no-install vitest run --project server packages/server/test/engine/parity.test.ts
step "smoke: tools/gpu-check/run.sh --dry-run (CPU, the fixture's shapes)"
OUT="$work/gpu-check" bash tools/gpu-check/run.sh --dry-run

step "smoke: data (48 train, 8 held-out scenes)"
nice -n 5 node --import tsx tools/tiny-model/generate-data.ts --train 48 --heldout 8 \
  --out "$work/data" --tokenizer models/magma-tiny-som

step "smoke: a few training steps"
# Small batches: train.py's GridSampler draws a batch from one crop grid's scenes and fails when
# a grid has fewer scenes than the batch (48 scenes spread over 6 grids: 5 to 11 each).
nice -n 5 "$PYTHON" tools/tiny-model/train.py --data "$work/data" --run "$work/run" \
  --vision-minutes 0.1 --minutes 0.2 --eval-every 5 --eval-scenes 8 --vision-batch 4 --batch 4
test -s "$work/run/best.pt" || { echo "training wrote no best.pt" >&2; exit 1; }

step "smoke: export to an ONNX bundle"
"$PYTHON" tools/magma_onnx/export.py --checkpoint "$work/run/best.pt" --out "$work/bundle" \
  --tokenizer-dir models/magma-tiny-som --revision smoke

step "smoke: PyTorch parity fixtures for the exported bundle"
"$PYTHON" tools/tiny-model/make_parity_fixtures.py --checkpoint "$work/run/best.pt" \
  --data "$work/data" --bundle "$work/bundle" --out "$work/parity.json"

step "smoke: a checkpoint rebuilt from the bundle gives the same fixtures, and training resumes from it"
"$PYTHON" tools/tiny-model/checkpoint_from_bundle.py --bundle "$work/bundle" --out "$work/from-bundle.pt"
"$PYTHON" tools/tiny-model/make_parity_fixtures.py --checkpoint "$work/from-bundle.pt" \
  --data "$work/data" --bundle "$work/bundle" --out "$work/parity-from-bundle.json"
"$PYTHON" - "$work/parity.json" "$work/parity-from-bundle.json" <<'PY'
import json, sys
a, b = (json.load(open(path)) for path in sys.argv[1:])
for doc in (a, b):
    doc.pop("checkpoint", None)
if a != b:
    sys.exit("parity fixtures from the rebuilt checkpoint differ from the trained checkpoint's")
PY
nice -n 5 "$PYTHON" tools/tiny-model/train.py --data "$work/data" --run "$work/run-resumed" \
  --resume "$work/from-bundle.pt" --no-aux --vision-minutes 0 --minutes 0.1 --eval-every 5 \
  --eval-scenes 8 --batch 4 --grid-weight 1x3=2 --grid-weight 3x1=2
test -s "$work/run-resumed/best.pt" || { echo "the resumed run wrote no best.pt" >&2; exit 1; }
# The bundle has no aux heads: this resumed run starts them fresh and warms them first.
nice -n 5 "$PYTHON" tools/tiny-model/train.py --data "$work/data" --run "$work/run-warmed" \
  --resume "$work/from-bundle.pt" --head-warmup 10 --vision-minutes 0 --minutes 0.1 --eval-every 5 \
  --eval-scenes 8 --batch 4 | tee "$work/run-warmed.log"
grep -q "^head step 10 " "$work/run-warmed.log" || { echo "the head warm-up did not run" >&2; exit 1; }
test -s "$work/run-warmed/best.pt" || { echo "the warmed run wrote no best.pt" >&2; exit 1; }

step "smoke: bundle variants (fp16 edges, external data, mixed per-graph dtypes, no prefix inputs)"
"$PYTHON" tools/reference/make_bundle_variants.py "$work/bundle" "$work/bundle-fp16" --fp16-edges
"$PYTHON" tools/reference/make_bundle_variants.py "$work/bundle" "$work/bundle-external" --external-data
"$PYTHON" tools/reference/make_bundle_variants.py "$work/bundle" "$work/bundle-mixed" --mixed
"$PYTHON" tools/reference/make_bundle_variants.py "$work/bundle" "$work/bundle-legacy" --without-prefix-inputs

step "smoke: int4/int8 variants and their PyTorch reference (dequantized weights)"
cp -r "$work/bundle" "$work/bundle-quant"
for bits in 4 8; do
  "$PYTHON" tools/magma_onnx/quantize.py --bundle "$work/bundle-quant" --bits "$bits" --block-size 32
  "$PYTHON" tools/magma_onnx/quantized_parity.py --checkpoint "$work/run/best.pt" \
    --bundle "$work/bundle-quant" --fixture "$work/parity.json" --bits "$bits" --out "$work/parity_q$bits.json"
done

step "smoke: the TypeScript engine loads them (parity and variant tests)"
MAGMA_PARITY_MODEL_DIR="$work/bundle" MAGMA_PARITY_FIXTURE="$work/parity.json" \
  MAGMA_VARIANT_BUNDLES="$work" \
  nice -n 5 npx --no-install vitest run --project server \
  packages/server/test/engine/parity.test.ts packages/server/test/engine/bundle-variants.test.ts
# A few training steps give a model whose greedy tokens may differ between int4 and fp32: only
# the exact check against PyTorch with the same dequantized weights is asserted here.
MAGMA_QUANT_MODEL_DIR="$work/bundle-quant" MAGMA_PARITY_FIXTURE="$work/parity.json" \
  MAGMA_QUANT_PARITY_DIR="$work" \
  nice -n 5 npx --no-install vitest run --project server \
  packages/server/test/engine/quantized.test.ts -t "PyTorch|packing|contract|recorded"

printf '\npython-checks: OK (smoke %ds, all %ds)\n' $((SECONDS - smoke_start)) "$SECONDS"
