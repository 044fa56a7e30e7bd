"""PyTorch reference for the quantized bundles: greedy tokens and logits of magma-tiny-som with the
same weights quantize.py puts in `_q4`/`_q8` graphs, dequantized, on the parity prompts.

  /usr/bin/python3 tools/magma_onnx/quantized_parity.py --checkpoint tools/tiny-model/runs/som/best.pt \
      --bundle models/magma-tiny-som --bits 4 --block-size 32 --out /tmp/parity_q4.json

The checkpoint must be the one the bundle was exported from. Cases (image bytes, prompt ids) come
from the fp32 parity fixture (packages/server/test/fixtures/parity/parity.json), so the engine's
quantized run (packages/server/test/engine/quantized.test.ts, MAGMA_QUANT_PARITY_DIR) is compared
on the very same inputs. The decoder's linear layers (q/k/v/o, gate/up/down, lm_head unless
--no-lm-head) and the projector's two Linears get W := dequantize(quantize(W)) with quantize.py's
own functions, whose packing is checked against onnxruntime by that test.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(ROOT / "tools" / "tiny-model"))

from magma_onnx.export import load_checkpoint  # noqa: E402
from magma_onnx.quantize import dequantize, pack, quantize_blocks  # noqa: E402
from tiny_data import image_to_crops  # noqa: E402
from make_parity_fixtures import greedy_decode  # noqa: E402
from train import prefix_embeds, vision_tokens  # noqa: E402

MAX_NEW = 24


def fake_quantize_(linear: torch.nn.Linear, bits: int, block_size: int, symmetric: bool) -> None:
    """Replaces the Linear's weight [N, K] by what the MatMulNBits node computes with."""
    w = linear.weight.detach().numpy().astype(np.float32)
    n, k = w.shape
    codes, scales, zero_points = quantize_blocks(w, bits, block_size, symmetric)
    zp = None if zero_points is None else pack(zero_points, bits).reshape(-1)
    w_deq = dequantize(pack(codes, bits), scales.reshape(-1), zp, k, n, bits, block_size)
    linear.weight.data.copy_(torch.from_numpy(w_deq))


def quantized_model(checkpoint: Path, bits: int, block_size: int, symmetric: bool, lm_head: bool):
    model = load_checkpoint(checkpoint)
    lm = model.language_model
    linears = [m for layer in lm.model.layers for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    linears += [m for m in model.multi_modal_projector.proj.modules() if isinstance(m, torch.nn.Linear)]
    if lm_head:
        linears.append(lm.lm_head)
    for linear in linears:
        fake_quantize_(linear, bits, block_size, symmetric)
    return model.eval(), len(linears)


@torch.no_grad()
def greedy(model, case: dict, crop: int, max_crops: int, image_id: int, eos: set) -> dict:
    rgb = np.frombuffer(base64.b64decode(case["rgb_base64"]), dtype=np.uint8).copy()
    rgb = rgb.reshape(case["height"], case["width"], 3)
    crops, rows, cols = image_to_crops(rgb, crop, max_crops)
    vis = vision_tokens(model, crops, 1, rows, cols)
    embeds = prefix_embeds(model, case["prompt_ids"], image_id, vis)
    tokens, logits_steps = greedy_decode(model, embeds, eos, MAX_NEW)
    return {"question": case["question"], "grid": case["grid"], "greedy_tokens": tokens, "logits": logits_steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--bundle", type=Path, default=ROOT / "models" / "magma-tiny-som")
    ap.add_argument("--fixture", type=Path, default=ROOT / "packages/server/test/fixtures/parity/parity.json")
    ap.add_argument("--bits", type=int, choices=(4, 8), required=True)
    ap.add_argument("--block-size", type=int, default=32)
    ap.add_argument("--asymmetric", action="store_true")
    ap.add_argument("--no-lm-head", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    config = json.loads((args.bundle / "config.json").read_text())
    pre = json.loads((args.bundle / "preprocessor_config.json").read_text())
    gen = json.loads((args.bundle / "generation_config.json").read_text())
    eos = set(gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]])
    fixture = json.loads(args.fixture.read_text())
    model, count = quantized_model(args.checkpoint, args.bits, args.block_size, not args.asymmetric,
                                   not args.no_lm_head)
    cases = [greedy(model, c, pre["base_img_size"], pre["num_crops"], config["image_token_index"], eos)
             for c in fixture["cases"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "revision": config["revision"], "bits": args.bits, "block_size": args.block_size,
        "symmetric": not args.asymmetric, "quantized_linears": count, "cases": cases,
    }) + "\n")
    for c in cases:
        print(f"{c['grid']} {c['question']!r}: {c['greedy_tokens']}")
    print(f"wrote {args.out} ({count} linear layers quantized to int{args.bits})")


if __name__ == "__main__":
    main()
