#!/usr/bin/env bash
# Installs what the benchmark's Python baseline (bench/baseline/server.py) needs on Debian:
# FastAPI, uvicorn, PyTorch (CPU), PIL, onnx (to read the bundle's weights), regex and jinja2
# (the tokenizer's pre-tokenizer pattern and chat template). Run as root. `npm run bench` checks
# for them and names this script when one is missing; nothing else in the project needs them.
set -euo pipefail
PYTHON=${PYTHON:-/usr/bin/python3}
check=(tools/python-env-check.py fastapi uvicorn torch PIL onnx numpy regex jinja2)
cd "$(dirname "$0")/../.."
# `--check`: exit 1, naming what is missing, instead of installing it (the bench calls this).
if [[ "${1:-}" == --check ]]; then exec "$PYTHON" "${check[@]}"; fi
# Torch on the reference BLAS counts as missing: the baseline would be measured ~20x slower per
# matrix multiply than it runs when deployed (tools/python-env-check.py).
if "$PYTHON" "${check[@]}" 2>/dev/null; then
  echo "bench/baseline: Python packages present (torch on OpenBLAS)"
  exit 0
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y python3-fastapi python3-uvicorn python3-torch \
  python3-pil python3-onnx python3-numpy python3-regex python3-jinja2 libopenblas0-pthread
"$PYTHON" "${check[@]}"
