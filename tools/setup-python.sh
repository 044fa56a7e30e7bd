#!/usr/bin/env bash
# Installs what the model-building tools (tools/tiny-model, tools/magma_onnx, tools/reference)
# need on Debian: PyTorch 1.13 (CPU), onnx, numpy, PIL. OpenBLAS matters: without it Debian's
# torch falls back to the reference BLAS, about 20x slower for the matrix multiplies of training
# (tools/python-env-check.py checks which BLAS torch actually maps). Does nothing when all is
# there. The server, the SDK and the tests need none of this.
set -euo pipefail
cd "$(dirname "$0")/.."
check=(/usr/bin/python3 tools/python-env-check.py torch onnx numpy PIL)
if "${check[@]}"; then
  echo "tools/setup-python.sh: torch (on OpenBLAS), onnx, numpy and PIL present"
  exit 0
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch python3-onnx python3-numpy python3-pil libopenblas0-pthread
"${check[@]}"
