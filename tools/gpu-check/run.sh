#!/usr/bin/env bash
# GPU readiness check for Magma-8B's serving path, for a machine with an NVIDIA GPU and no internet.
# Builds a random-weight checkpoint in Magma-8B's official layout (default: Magma-8B's vision tower
# and vocabulary with a 2B decoder, to stay within ~10 minutes; --shape 8b for the full shapes),
# exports it with tools/magma_onnx/hf_magma.py (fp16 decoder and embeddings, fp32 vision when torch
# has CUDA; fp32 otherwise), then, per execution provider, times with the server's engine code:
# vision + prefill of a 2x2-crop image prompt, prefill and decode ms/token at each context, and the
# decode step's ratio to its HBM floor (decoder bytes + KV read, over the GPU's bandwidth).
# docs/KV-ON-DEVICE.md says what the numbers decide.
#
#   bash tools/gpu-check/run.sh [--shape 2b|8b] [--providers cuda,webgpu] [--contexts 1024,4096]
#   bash tools/gpu-check/run.sh --dry-run     # CPU, the CI fixture's tiny shapes (CI runs this)
#
# Before going offline: `ONNXRUNTIME_NODE_INSTALL=skip npm ci`, then onnxruntime-node's CUDA
# provider (`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`,
# README "GPU"), and Python 3 with torch (a CUDA build for fp16 graphs) and onnx. A provider that
# cannot start is reported and skipped. Env: PYTHON, OUT (work folder, default a new temp folder),
# HBM_GBPS (default from the GPU's name).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-/usr/bin/python3}
shape=2b providers=cuda,webgpu contexts=1024,4096 steps=16 dry=0
while (($#)); do
  case "$1" in
    --dry-run) dry=1 shape=fixture providers=cpu contexts=64,256 steps=4 ;;
    --shape) shape=$2; shift ;;
    --providers) providers=$2; shift ;;
    --contexts) contexts=$2; shift ;;
    --steps) steps=$2; shift ;;
    *) echo "usage: $0 [--dry-run] [--shape 2b|8b] [--providers cuda,webgpu] [--contexts 1024,4096] [--steps N]" >&2; exit 2 ;;
  esac
  shift
done
work=${OUT:-$(mktemp -d -t magma-gpu-check.XXXXXX)}
mkdir -p "$work"
# A dry run's temp folder goes; a real run keeps its bundle and results.
cleanup() { if ((dry)) && [[ -z "${OUT:-}" ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT
step() { printf '\n==== gpu-check: %s (%ds so far)\n' "$*" "$SECONDS"; }

hbm=${HBM_GBPS:-}
if ((dry)); then
  hbm=${hbm:-100}  # nominal: a CPU has no HBM floor; the ratio only shows the arithmetic runs
else
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1) ||
    { echo "gpu-check: nvidia-smi failed: no NVIDIA GPU or driver" >&2; exit 1; }
  echo "GPU: $gpu"
  if [[ -z "$hbm" ]]; then
    case "$gpu" in  # vendor peak HBM bandwidth, GB/s
      *H200*) hbm=4800 ;; *H100*PCIe*) hbm=2000 ;; *H100*) hbm=3350 ;; *A100*80GB*) hbm=2039 ;;
      *A100*) hbm=1555 ;; *L40S*) hbm=864 ;; *L4*) hbm=300 ;; *A10*) hbm=600 ;;
      *) hbm=1000; echo "gpu-check: unknown GPU, assuming 1000 GB/s (set HBM_GBPS)" ;;
    esac
  fi
fi
device=cpu dtype_args=(--dtype fp32)
if ((!dry)) && "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  device=cuda dtype_args=(--dtype fp16 --vision-dtype fp32)
fi

step "random checkpoint, shape $shape"
"$PYTHON" tools/magma_onnx/make_magma8b_fixture.py --shape "$shape" --out "$work/ckpt"
step "export (${dtype_args[*]}, torch on $device)"
"$PYTHON" tools/magma_onnx/hf_magma.py --checkpoint "$work/ckpt/checkpoint" --revision "$(cat "$work/ckpt/revision")" \
  --out "$work/bundle" "${dtype_args[@]}" --device "$device" --name "magma-$shape-random"
du -sh "$work/bundle/onnx"

measured=0
for provider in ${providers//,/ }; do
  step "measure on $provider (HBM $hbm GB/s)"
  rc=0
  timeout 300 node --import tsx tools/gpu-check/measure.ts --model "$work/bundle" --provider "$provider" \
    --contexts "$contexts" --steps "$steps" --hbm-gbps "$hbm" --json "$work/$provider.json" || rc=$?
  case $rc in
    0) measured=$((measured + 1)) ;;
    3) echo "gpu-check: $provider skipped (not available in this onnxruntime-node install)" ;;
    *) echo "gpu-check: $provider failed (exit $rc)" >&2; exit 1 ;;
  esac
done
((measured > 0)) || { echo "gpu-check: no provider could be measured" >&2; exit 1; }
printf "\ngpu-check: OK, %d provider(s) measured in %ds\n" "$measured" "$SECONDS"
((dry)) || echo "results: $work/*.json, bundle: $work/bundle"
