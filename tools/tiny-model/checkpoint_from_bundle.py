"""A training checkpoint rebuilt from the shipped bundle, so training can resume on a fresh clone.

Training runs (tools/tiny-model/runs/) are not committed; the bundle is the model of record.
Its fp32 ONNX graphs hold every weight (bench/baseline/bundle_weights.py reads them back), and
its config.json holds the chain of runs that made it. The auxiliary heads are training-only and
not exported: a run resuming this checkpoint starts them fresh (train.py says so).

    /usr/bin/python3 tools/tiny-model/checkpoint_from_bundle.py \
        [--bundle models/magma-tiny-som] --out tools/tiny-model/runs/bundle.pt
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "baseline"))

from bundle_weights import load_bundle_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "models" / "magma-tiny-som")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    config = json.loads((args.bundle / "config.json").read_text())
    som = config.get("magma_som", {})
    model = load_bundle_model(args.bundle)
    training = dict(som.get("training") or {})
    step = training.pop("step", None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "config": model.cfg.to_dict(),
            "model": model.state_dict(),
            # train.py records this as the resumed checkpoint's chain, so the exporter keeps it whole.
            "training": training,
            "step": step,
            "from_bundle": {"path": str(args.bundle), "revision": config.get("revision")},
        },
        str(args.out),
    )
    print(f"{args.out}: revision {config.get('revision')}, step {step}, {sum(p.numel() for p in model.parameters())} params")


if __name__ == "__main__":
    main()
