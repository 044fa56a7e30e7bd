"""PyTorch reference outputs for the ONNX-in-Node parity test (packages/server/test/engine/parity.test.ts).

  /usr/bin/python3 tools/tiny-model/make_parity_fixtures.py --checkpoint tools/tiny-model/runs/main/best.pt

Takes a few held-out scenes (one per crop grid) and a question each, runs magma-tiny-som in PyTorch
exactly as the engine runs the bundle (Magma preprocessing, stitched visual tokens with row
separators, double-BOS prompt, prefill then greedy decode steps with a KV cache) and writes the
image bytes, prompt ids, greedy tokens and every step's logits to
packages/server/test/fixtures/parity/parity.json. The checkpoint must be the one exported to
models/magma-tiny-som (the fixture records the bundle revision).
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from magma_onnx.export import load_checkpoint  # noqa: E402
from magma_onnx.model import greedy_decode as decode_greedily  # noqa: E402
from tiny_data import SceneSet, image_to_crops  # noqa: E402
from train import prefix_embeds, vision_tokens  # noqa: E402

MAX_NEW = 24


def greedy_decode(model, embeds: torch.Tensor, eos: set, max_new: int = MAX_NEW) -> tuple:
    """magma-tiny-som's greedy decode as the engine runs it (see magma_onnx.model.greedy_decode)."""
    lm = model.language_model
    return decode_greedily(lm.model, model.cfg.text, lm.lm_head, embeds, eos, max_new)


@torch.no_grad()
def greedy(model, data: SceneSet, scene_index: int, qa_index: int) -> dict:
    meta = data.meta
    scene = data.scenes[scene_index]
    qa = scene.qas[qa_index]
    rgb = data.image(scene_index)
    crops, rows, cols = image_to_crops(rgb, meta["crop_size"], meta["max_crops"])
    vis = vision_tokens(model, crops, 1, rows, cols)
    pre = prefix_embeds(model, meta["prefix_ids"], meta["image_token_id"], vis)
    emb = model.language_model.model.embed_tokens
    embeds = torch.cat([pre, emb(torch.tensor([qa.suffix_ids]))], dim=1)
    eos = {meta["eot_id"]}
    tokens, logits_steps = greedy_decode(model, embeds, eos)
    return {
        "question": qa.question,
        "expected_answer": qa.answer,
        "width": scene.width,
        "height": scene.height,
        "grid": {"rows": rows, "cols": cols},
        "image_tokens": vis.shape[1],
        "rgb_base64": base64.b64encode(rgb.tobytes()).decode("ascii"),
        "prompt_ids": meta["prefix_ids"] + qa.suffix_ids,
        "greedy_tokens": tokens,
        "logits": logits_steps,
    }


GRIDS = [(1, 1), (1, 2), (2, 1), (2, 2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--bundle", type=Path, default=ROOT / "models" / "magma-tiny-som")
    ap.add_argument("--out", type=Path, default=ROOT / "packages/server/test/fixtures/parity/parity.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = load_checkpoint(args.checkpoint)
    data = SceneSet(args.data, "heldout")
    cases = []
    types = ["describe", "color", "spatial", "find"]
    # the first held-out scene of each grid: one crop, a wide and a tall pair, and two rows of two
    for grid in GRIDS:
        i = next((j for j, scene in enumerate(data.scenes) if (scene.rows, scene.cols) == grid), None)
        if i is None:
            continue  # a small smoke set may lack one
        want = types[len(cases) % len(types)]
        k = next((j for j, qa in enumerate(data.scenes[i].qas) if qa.type == want), 0)
        cases.append(greedy(model, data, i, k))
    revision = json.loads((args.bundle / "config.json").read_text())["revision"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"revision": revision, "logit_tolerance": 1e-3, "cases": cases}) + "\n")
    for c in cases:
        print(f"{c['grid']} {c['question']!r}: {len(c['greedy_tokens'])} tokens (answer {c['expected_answer']!r})")
    print(f"wrote {args.out} for bundle revision {revision}")


if __name__ == "__main__":
    main()
