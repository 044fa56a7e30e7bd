#!/usr/bin/env bash
# Installs what the model-building tools (tools/tiny-model, tools/magma_onnx, tools/reference)
# need on Debian: PyTorch 1.13 (CPU), onnx, numpy, PIL. OpenBLAS matters: without it Debian's
# torch falls back to the reference BLAS, about 50x slower for the matrix multiplies of training.
# The server, the SDK and the tests need none of this.
set -euo pipefail
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch python3-onnx python3-numpy python3-pil libopenblas0-pthread
