"""Export microsoft/Magma-8B (a local checkpoint folder in the official Hub layout) to the
docs/BUNDLE.md layout with the same graph code as magma-tiny-som. No remote code, no network.

  python tools/magma_onnx/hf_magma.py --checkpoint <folder> --revision <40-hex commit> \\
      --out models/magma-8b --dtype fp16 --vision-dtype fp32

The folder is a snapshot of the Hub repository at the pinned commit (config.json, the safetensors
shards with model.safetensors.index.json, tokenizer and processor files); see README.md for how to
fetch it. magma8b_checkpoint.py reads it with a strict name map (any missing, unexpected,
mis-shaped or wrongly typed tensor, or a config the pipeline does not implement, stops the export
with its name) into this repository's own modules, one graph at a time:
  vision_tower.clip_vision_model.trunk + multi_modal_projector -> vision_encoder
  language_model.model.embed_tokens                           -> embed_tokens
  language_model.model.{layers,norm} + language_model.lm_head -> decoder_model_merged
Each graph has its own dtype (fp32: `X.onnx`, fp16: `X_fp16.onnx`); a graph exported in fp16 is
first compared with the float32 modules on sample inputs and refused above --fp16-tolerance.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, Optional

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magma_onnx.export import (  # noqa: E402
    ExportSource,
    export_decoder,
    export_embed,
    export_vision,
    graph_path,
    llama_text_config,
    token_id,
    write_json,
)
from magma_onnx.magma8b_checkpoint import CheckpointError, MagmaCheckpoint  # noqa: E402
from magma_onnx.model import encode_crops, llama_forward  # noqa: E402

REPO = "microsoft/Magma-8B"
COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
# Largest accepted max|y_fp16 - y_fp32| / max(1, max|y_fp32|) per graph output. fp16 keeps 11
# significant bits (~5e-4 relative per rounding) and errors grow with depth; an overflow gives
# inf/NaN or errors of order 1. 2e-2 is a tripwire for those, not an accuracy bound, and has not
# been calibrated on Magma-8B's weights (none here): read the printed errors of a real export.
FP16_TOLERANCE = 2e-2


class DtypeCheckError(RuntimeError):
    """A graph's reduced-precision outputs drift from float32 beyond the tolerance."""


def relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    got, ref = got.float().cpu(), ref.float().cpu()
    if not torch.isfinite(got).all():
        return float("inf")
    return float((got - ref).abs().max() / max(1.0, float(ref.abs().max())))


def check_dtype(graph: str, fn, modules, inputs: tuple, dtype: torch.dtype, device: str, tolerance: float) -> Optional[float]:
    """Runs `fn(*inputs)` with `modules` in float32 and in `dtype`; refuses the graph above `tolerance`.

    Leaves the modules in `dtype` on `device`. Returns the worst relative error (None for fp32)."""
    with torch.no_grad():
        for m in modules:
            m.to(device=device, dtype=torch.float32)
        on = tuple(x.to(device) for x in inputs)
        ref = fn(*on)
        if dtype == torch.float32:
            return None
        for m in modules:
            m.to(dtype=dtype)
        got = fn(*(x.to(dtype) if x.is_floating_point() else x for x in on))
    worst = max(relative_error(g, r) for g, r in zip(got, ref))
    print(f"{graph}: {str(dtype).replace('torch.', '')} vs float32 on sample inputs: relative error {worst:.2e}")
    if not worst <= tolerance:
        raise DtypeCheckError(
            f"{graph}: the {dtype} graph differs from float32 by {worst:.3g} (> {tolerance}) on sample inputs; "
            "export it in fp32 (e.g. --vision-dtype fp32)"
        )
    return worst


def half_supported(device: str) -> bool:
    """Whether torch can run fp16 matmuls on `device` (torch 1.13 has no fp16 CPU kernels)."""
    try:
        x = torch.ones(2, 2, dtype=torch.float16, device=device)
        torch.nn.functional.linear(x, x)
        return True
    except RuntimeError:
        return False


def check_revision(checkpoint: Path, revision: str) -> None:
    """A Hub-cache snapshot folder is named by its commit: it must be the pinned one."""
    if checkpoint.resolve().parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", checkpoint.resolve().name):
        if checkpoint.resolve().name != revision:
            raise CheckpointError(f"{checkpoint} is the snapshot of {checkpoint.resolve().name}, not --revision {revision}")


def bundle_configs(ckpt: MagmaCheckpoint, revision: str, graph_dtypes: Dict[str, str], name: str) -> Dict[str, dict]:
    c = ckpt.config
    tok = json.loads((ckpt.folder / "tokenizer.json").read_text())
    image_id = token_id(tok, "<image>")
    if image_id != c.image_token_index:
        raise CheckpointError(f"config.json image_token_index {c.image_token_index} != tokenizer.json <image> id {image_id}")
    pre = json.loads((ckpt.folder / "preprocessor_config.json").read_text())
    if pre.get("anyres_strategy", "crop") != "crop":
        raise CheckpointError(f"preprocessor_config.json anyres_strategy is {pre.get('anyres_strategy')!r}, expected 'crop'")
    if pre.get("base_img_size") != c.img_size:
        raise CheckpointError(f"preprocessor_config.json base_img_size {pre.get('base_img_size')} != vision_config.img_size {c.img_size}")
    if pre.get("num_crops") != c.max_num_crops:
        raise CheckpointError(f"preprocessor_config.json num_crops {pre.get('num_crops')} != vision_config.max_num_crops {c.max_num_crops}")
    text = c.text
    config = {
        "model_type": "magma",
        "architectures": ["MagmaForCausalLM"],
        "name": name,
        "revision": revision,
        "torch_dtype": "float16" if "fp16" in graph_dtypes.values() else "float32",
        "image_token_index": image_id,
        "mm_use_image_start_end": c.mm_use_image_start_end,
        "text_config": llama_text_config(text, "silu", False),
        "vision_config": {
            "vision_backbone": c.backbone_name,
            "img_size": c.img_size,
            "feature_stride": 32,
            "depths": list(c.backbone.depths),
            "dims": list(c.backbone.dims),
            "mm_hidden_size": c.mm_hidden_size,
            "mm_projector_type": "mlp2x_gelu",
            "img_anyres_strategy": "crop",
            "max_num_crops": c.max_num_crops,
        },
        "action_token_range": [127744, 127999] if text.vocab_size > 128000 else None,
        # docs/BUNDLE.md "magma_som": the model-pixel floor for marks. Magma-8B's own training
        # screenshots (~1920x1080, labels at its 30 px cap) reach its 1024 px grid at ~0.5x, so
        # ~16 px labels and Magma's 2 px outlines are what it read; Magma's image-pixel rule
        # stays the floor above that (packages/server/src/images/mark-sizing.ts).
        "magma_som": {
            "marks": {"min_label_text_height": 16, "min_outline_width": 2},
            "source": {"repo": REPO, "checkpoint_dtype": c.torch_dtype},
        },
    }
    if config["action_token_range"] is None:  # a shrunk vocabulary (the fixture) has no action tokens
        del config["action_token_range"]
    if len(set(graph_dtypes.values())) > 1:
        # docs/BUNDLE.md "Per-graph dtypes": the engine loads the declared file where the
        # requested dtype has none, and MAGMA_DTYPE=auto picks the decoder's dtype.
        config["magma_som"]["graph_dtypes"] = graph_dtypes
        config["magma_som"]["default_dtype"] = graph_dtypes["decoder_model_merged"]
    return {"config.json": config, "preprocessor_config.json": pre}


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    revision: str,
    graph_dtypes: Dict[str, str],
    device: str = "cpu",
    tolerance: float = FP16_TOLERANCE,
    name: str = "Magma-8B",
) -> Dict[str, Optional[float]]:
    """Checks the checkpoint, writes the bundle's JSON files and its three graphs; returns each
    fp16 graph's relative error against float32."""
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        raise ValueError("--revision must be a 40-hex commit hash (pin the export)")
    check_revision(checkpoint, revision)
    if "fp16" in graph_dtypes.values() and not half_supported(device):
        raise ValueError(f"fp16 graphs need a device with fp16 kernels; torch {torch.__version__} has none on "
                         f"{device!r} (use --device cuda, or fp32 for every graph)")
    ckpt = MagmaCheckpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    onnx_dir = out / "onnx"
    onnx_dir.mkdir(exist_ok=True)
    for stale in onnx_dir.glob("*.onnx*"):
        stale.unlink()  # a previous export with other dtypes must not leave graphs the engine could pick
    configs = bundle_configs(ckpt, revision, graph_dtypes, name)
    for fname in COPIED_FILES:
        shutil.copyfile(checkpoint / fname, out / fname)
    for fname, obj in configs.items():
        write_json(out / fname, obj)
    # One graph at a time: only its modules (float32, then its export dtype) are in memory.
    graphs = (("vision_encoder", _vision_stage), ("embed_tokens", _embed_stage), ("decoder_model_merged", _decoder_stage))
    errors: Dict[str, Optional[float]] = {}
    sample: Dict[str, torch.Tensor] = {}
    for graph, stage in graphs:
        dtype = DTYPES[graph_dtypes[graph]]
        errors[graph] = stage(ckpt, graph_path(onnx_dir, graph, dtype), dtype, device, tolerance, sample)
    return errors


NO_PARTS = dict(trunk=None, projector=None, row_separator=None, embed_tokens=None, lm=None, lm_head=None)


def _vision_stage(ckpt: MagmaCheckpoint, path: Path, dtype, device: str, tolerance: float, sample: dict):
    c = ckpt.config
    trunk, projector, row_sep = ckpt.vision()
    pixels = torch.randn(2, 3, c.img_size, c.img_size, generator=torch.Generator().manual_seed(0))
    error = check_dtype("vision_encoder", lambda x: (encode_crops(trunk, projector, x),), [trunk, projector],
                        (pixels,), dtype, device, tolerance)
    parts = {"trunk": trunk, "projector": projector, "row_separator": row_sep.to(device, dtype)}
    export_vision(ExportSource(**{**NO_PARTS, **parts}, text=c.text, img_size=c.img_size), path, dtype)
    return error


def _embed_stage(ckpt: MagmaCheckpoint, path: Path, dtype, device: str, tolerance: float, sample: dict):
    c = ckpt.config
    emb = ckpt.embed_tokens()
    ids = torch.arange(1, 17, dtype=torch.int64)[None] % c.text.vocab_size
    with torch.no_grad():
        sample["embeds"] = emb(ids)  # realistic decoder inputs for the decoder's check
    error = check_dtype("embed_tokens", lambda x: (emb(x),), [emb], (ids,), dtype, device, tolerance)
    export_embed(ExportSource(**{**NO_PARTS, "embed_tokens": emb}, text=c.text, img_size=c.img_size), path)
    return error


def _decoder_stage(ckpt: MagmaCheckpoint, path: Path, dtype, device: str, tolerance: float, sample: dict):
    c = ckpt.config
    lm, lm_head = ckpt.decoder()
    embeds = sample["embeds"]
    n = embeds.shape[1]

    def decode(x, mask, pos):
        hidden, _ = llama_forward(lm, c.text, x, mask, pos, None)
        return (lm_head(hidden),)

    error = check_dtype("decoder_model_merged", decode, [lm, lm_head],
                        (embeds, torch.ones(1, n, dtype=torch.int64), torch.arange(n)[None]), dtype, device, tolerance)
    export_decoder(ExportSource(**{**NO_PARTS, "lm": lm, "lm_head": lm_head}, text=c.text, img_size=c.img_size),
                   path, dtype)
    return error


def parse_graph_dtypes(args: argparse.Namespace) -> Dict[str, str]:
    return {
        "vision_encoder": args.vision_dtype or args.dtype,
        "embed_tokens": args.embed_dtype or args.dtype,
        "decoder_model_merged": args.decoder_dtype or args.dtype,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True, help="local folder in the Hub layout (the pinned snapshot)")
    ap.add_argument("--revision", required=True, help="full commit hash of microsoft/Magma-8B the folder was fetched at")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp16", help="dtype of every graph not set below")
    ap.add_argument("--vision-dtype", choices=sorted(DTYPES))
    ap.add_argument("--embed-dtype", choices=sorted(DTYPES))
    ap.add_argument("--decoder-dtype", choices=sorted(DTYPES))
    ap.add_argument("--device", default="cuda", help="where the float16 checks and traces run (torch 1.13 has no fp16 CPU kernels)")
    ap.add_argument("--fp16-tolerance", type=float, default=FP16_TOLERANCE)
    ap.add_argument("--name", default="Magma-8B")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    dtypes = parse_graph_dtypes(args)
    try:
        export_checkpoint(args.checkpoint, args.out, args.revision, dtypes, args.device, args.fp16_tolerance, args.name)
    except (CheckpointError, DtypeCheckError, ValueError) as e:
        print(f"hf_magma: refused: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"exported {args.checkpoint} ({REPO}@{args.revision}) to {args.out}: {dtypes}")


if __name__ == "__main__":
    main()
