"""Export microsoft/Magma-8B to the docs/BUNDLE.md layout with the same graph code as magma-tiny-som.

Needs a GPU machine with internet (see tools/magma_onnx/README.md for versions and commands):

  python tools/magma_onnx/hf_magma.py --revision <40-hex commit of microsoft/Magma-8B> --out models/magma-8b

The adapter maps HF MagmaForCausalLM onto the exporter's ExportSource:
  vision_tower.clip_vision_model.trunk          -> trunk (timm ConvNeXt-XXLarge: .stem, .stages)
  multi_modal_projector.proj (proj.0/1/2)       -> projector (mlp2x_gelu)
  multi_modal_projector.row_seperator           -> row separator
  language_model.model.{embed_tokens,layers,norm}, language_model.lm_head -> Llama decoder
Before exporting it checks that every ConvNeXt `...blocks.N.gamma` (layer scale) equals the value in
the safetensors shards: old transformers silently renamed `gamma` and left timm's 1e-6 init in place.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Dict

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magma_onnx.export import ExportSource, export_graphs, llama_text_config, token_id, write_json  # noqa: E402
from magma_onnx.model import TextConfig  # noqa: E402

REPO = "microsoft/Magma-8B"
GAMMA_KEY = re.compile(r"^vision_tower\.clip_vision_model\.trunk\.stages\.\d+\.blocks\.\d+\.gamma$")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def check_layer_scale(model: torch.nn.Module, snapshot: Path) -> int:
    """Compare every ConvNeXt gamma in the loaded model with the checkpoint's safetensors value."""
    from safetensors import safe_open

    index = json.loads((snapshot / "model.safetensors.index.json").read_text())["weight_map"]
    params = dict(model.named_parameters())
    keys = [k for k in index if GAMMA_KEY.match(k)]
    if not keys:
        raise RuntimeError("no ConvNeXt gamma tensors found in the checkpoint index; check the key names")
    bad = []
    for key in keys:
        with safe_open(str(snapshot / index[key]), framework="pt") as f:
            stored = f.get_tensor(key)
        loaded = params.get(key)
        if loaded is None or not torch.equal(loaded.detach().cpu().to(stored.dtype), stored):
            bad.append(key)
    if bad:
        raise RuntimeError(
            f"{len(bad)}/{len(keys)} ConvNeXt layer-scale gammas differ from the checkpoint (e.g. {bad[0]}); "
            "transformers did not load them (use the pinned version in README.md)"
        )
    return len(keys)


def text_config(cfg) -> TextConfig:
    t = cfg.text_config
    heads = t.num_attention_heads
    return TextConfig(
        hidden_size=t.hidden_size,
        num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=heads,
        num_key_value_heads=t.num_key_value_heads,
        head_dim=getattr(t, "head_dim", None) or t.hidden_size // heads,
        intermediate_size=t.intermediate_size,
        vocab_size=t.vocab_size,
        rms_norm_eps=t.rms_norm_eps,
        rope_theta=float(t.rope_theta),
        max_position_embeddings=t.max_position_embeddings,
    )


def magma_source(model, img_size: int) -> ExportSource:
    lm = model.language_model
    text = text_config(model.config)
    rows = lm.model.embed_tokens.weight.shape[0]
    if rows != text.vocab_size:  # the real embedding rows win over the config value
        text.vocab_size = rows
    if getattr(model.config.text_config, "rope_scaling", None):
        raise NotImplementedError("rope_scaling is set; the exporter implements plain Llama RoPE only")
    return ExportSource(
        trunk=model.vision_tower.clip_vision_model.trunk,
        projector=model.multi_modal_projector.proj,
        row_separator=model.multi_modal_projector.row_seperator,
        embed_tokens=lm.model.embed_tokens,
        lm=lm.model,
        lm_head=lm.lm_head,
        text=text,
        img_size=img_size,
    )


def bundle_configs(model, src: ExportSource, snapshot: Path, revision: str, dtype_name: str) -> Dict[str, dict]:
    tok = json.loads((snapshot / "tokenizer.json").read_text())
    vision = model.config.vision_config
    vision = vision if isinstance(vision, dict) else vision.to_dict()
    t = src.text
    config = {
        "model_type": "magma",
        "architectures": ["MagmaForCausalLM"],
        "name": "Magma-8B",
        "revision": revision,
        "torch_dtype": dtype_name,
        "image_token_index": token_id(tok, "<image>"),
        "mm_use_image_start_end": bool(getattr(model.config, "mm_use_image_start_end", True)),
        "text_config": llama_text_config(t, "silu", False),
        "vision_config": {
            "vision_backbone": vision.get("vision_backbone", "convnextxxlarge"),
            "img_size": src.img_size,
            "feature_stride": 32,
            "mm_hidden_size": int(model.multi_modal_projector.proj[0].in_features),
            "mm_projector_type": "mlp2x_gelu",
            "img_anyres_strategy": vision.get("img_anyres_strategy", "crop"),
            "max_num_crops": vision.get("max_num_crops", 4),
        },
        "action_token_range": [127744, 127999],
        # docs/BUNDLE.md "magma_som": the model-pixel floor for marks. Magma-8B's own training
        # screenshots (~1920x1080, labels at its 30 px cap) reach its 1024 px grid at ~0.5x, so
        # ~16 px labels and Magma's 2 px outlines are what it read; Magma's image-pixel rule
        # stays the floor above that (packages/server/src/images/mark-sizing.ts).
        "magma_som": {"marks": {"min_label_text_height": 16, "min_outline_width": 2}},
    }
    preprocessor = json.loads((snapshot / "preprocessor_config.json").read_text())
    generation = json.loads((snapshot / "generation_config.json").read_text())
    return {"config.json": config, "preprocessor_config.json": preprocessor, "generation_config.json": generation}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--revision", required=True, help="full commit hash of microsoft/Magma-8B on the Hub")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    if not re.fullmatch(r"[0-9a-f]{40}", args.revision):
        ap.error("--revision must be a 40-hex commit hash (pin the export)")

    from huggingface_hub import snapshot_download
    from transformers import AutoModelForCausalLM

    snapshot = Path(snapshot_download(REPO, revision=args.revision))
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        str(snapshot), trust_remote_code=True, torch_dtype=dtype, revision=args.revision
    ).to(args.device).eval()
    print(f"layer scale check: {check_layer_scale(model, snapshot)} ConvNeXt gammas match the safetensors")

    img_size = int(json.loads((snapshot / "preprocessor_config.json").read_text()).get("base_img_size", 512))
    src = magma_source(model, img_size)
    args.out.mkdir(parents=True, exist_ok=True)
    for fname in TOKENIZER_FILES:
        shutil.copyfile(snapshot / fname, args.out / fname)
    for fname, obj in bundle_configs(model, src, snapshot, args.revision, "float16" if args.dtype == "fp16" else "float32").items():
        write_json(args.out / fname, obj)
    suffix = "_fp16" if args.dtype == "fp16" else ""
    export_graphs(src, args.out / "onnx", dtype=dtype, suffix=suffix)
    print(f"exported {REPO}@{args.revision} to {args.out} ({args.dtype})")


if __name__ == "__main__":
    main()
