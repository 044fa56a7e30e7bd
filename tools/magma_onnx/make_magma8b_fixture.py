"""A small random checkpoint in microsoft/Magma-8B's official layout, and its PyTorch reference outputs.

  /usr/bin/python3 tools/magma_onnx/make_magma8b_fixture.py --out /tmp/m8b [--tokenizer-dir models/magma-tiny-som]

Writes into --out:
  checkpoint/   config.json with Magma-8B's structure (vision_config and text_config dicts, Hub key
                names; widths, depths and vocabulary shrunk), the tensors under the official names
                (vision_tower.clip_vision_model.trunk..., multi_modal_projector..., language_model...,
                plus the unused open_clip head tensors) stored in bf16 over two safetensors shards
                with model.safetensors.index.json, tokenizer and processor files.
  parity.json   for packages/server/test/engine/parity.test.ts: a few prompts on images of four crop
                grids, with the prompt ids (tools/magma_onnx/prompt-ids.ts, the engine's tokenizer
                path), the greedy tokens and every step's logits of the reference modules.
  revision      the 40-hex revision to export it under (derived from the seed).

The reference modules are built here, independently of magma8b_checkpoint.py's name map, and hold
the bf16-rounded weights in float32; hf_magma.py must rebuild the same model from the files alone.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tiny-model"))

from magma_onnx.export import CLIP_MEAN, CLIP_STD, tok_vocab_size, token_id  # noqa: E402
from magma_onnx.magma8b_checkpoint import BACKBONES  # noqa: E402
from magma_onnx.model import (  # noqa: E402
    ConvNeXtTrunk,
    LlamaForCausalLM,
    MultiModalProjector,
    TextConfig,
    VisionConfig,
    encode_crops,
    greedy_decode,
    stitch_image,
)
from magma_onnx.safetensors_io import write_file  # noqa: E402
from tiny_data import image_to_crops  # noqa: E402

MAX_CROPS = 4
# Shapes: "fixture" (CI parity), and random-weight stand-ins for GPU checks (tools/gpu-check/run.sh):
# "2b" (Magma-8B's vision tower and vocabulary, a 16-layer 2048-wide decoder) and "8b" (Magma-8B).
SHAPES = {
    # two 32-stride cells per crop side: 6 visual tokens for a 1x1 grid
    "fixture": dict(backbone="convnext-fixture", img_size=64, hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, intermediate_size=160, vocab_size=None),
    "2b": dict(backbone="convnextxxlarge", img_size=512, hidden_size=2048, num_hidden_layers=16,
               num_attention_heads=16, num_key_value_heads=4, head_dim=128, intermediate_size=8192, vocab_size=128320),
    "8b": dict(backbone="convnextxxlarge", img_size=512, hidden_size=4096, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, head_dim=128, intermediate_size=14336, vocab_size=128320),
}
MAX_NEW = 8
LOGIT_TOLERANCE = 1e-4
# (width, height, question): sizes chosen so the processor picks four different grids and resizes.
CASES = [
    (50, 40, "What color is object #1?"),
    (150, 70, "Describe the marked objects."),
    (60, 140, "Which object is left of #2?"),
    (120, 110, "Where is mark #3?"),
]


def text_config(shape: dict, tokenizer_vocab: int) -> TextConfig:
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
            "intermediate_size")
    return TextConfig(**{k: shape[k] for k in keys}, vocab_size=shape["vocab_size"] or tokenizer_vocab,
                      rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=8192)


def randomize(module: nn.Module, g: torch.Generator) -> None:
    """Every tensor distinct and non-trivial (norm weights and biases too), so a swapped or
    skipped tensor in a loader changes the outputs."""
    for name, p in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "gamma":
            v = 0.3 + 0.7 * torch.rand(p.shape, generator=g)
            v[0] = 7e-6  # tiny layer scales occur in real checkpoints (below fp16's normal range)
        elif p.dim() == 1 and leaf == "weight":
            v = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
        elif leaf == "bias" or "seperator" in name:
            v = 0.1 * torch.randn(p.shape, generator=g)
        elif "embed_tokens" in name:
            v = torch.randn(p.shape, generator=g)
        else:
            fan_in = p[0].numel()
            v = torch.randn(p.shape, generator=g) * fan_in**-0.5
        p.data = v.to(torch.bfloat16).float()  # what bf16 storage gives back, widened exactly


class Reference:
    """The fixture model as plain modules (this repository's model.py layout, timm/HF names)."""

    def __init__(self, vocab: int, seed: int, shape: str = "fixture"):
        g = torch.Generator().manual_seed(seed)
        self.shape = SHAPES[shape]
        self.backbone_name, self.img_size = self.shape["backbone"], self.shape["img_size"]
        b = BACKBONES[self.backbone_name]
        self.text = text_config(self.shape, vocab)
        vcfg = VisionConfig(img_size=self.img_size, feature_stride=32, depths=list(b.depths), dims=list(b.dims),
                            layer_norm_eps=b.layer_norm_eps)
        self.trunk = ConvNeXtTrunk(vcfg).eval()
        self.projector = MultiModalProjector(b.dims[-1], self.text.hidden_size).eval()
        self.lm = LlamaForCausalLM(self.text).eval()
        self.head_norm = nn.LayerNorm(b.dims[-1])  # open_clip/timm head tensors: stored, never used
        self.head_proj = nn.Linear(b.dims[-1], b.head_embed_dim, bias=False)
        for m in (self.trunk, self.projector, self.lm, self.head_norm, self.head_proj):
            randomize(m, g)

    def official_tensors(self) -> Dict[str, torch.Tensor]:
        out: Dict[str, torch.Tensor] = {}
        for prefix, module in (
            ("vision_tower.clip_vision_model.trunk.", self.trunk),
            ("vision_tower.clip_vision_model.trunk.head.norm.", self.head_norm),
            ("vision_tower.clip_vision_model.head.proj.", self.head_proj),
            ("multi_modal_projector.", self.projector),
            ("language_model.", self.lm),
        ):
            for name, p in module.state_dict().items():
                out[prefix + name] = p.detach().to(torch.bfloat16)
        return out

    @torch.no_grad()
    def greedy(self, rgb: np.ndarray, prompt_ids: List[int], image_id: int, eos: set) -> dict:
        crops, rows, cols = image_to_crops(rgb, self.img_size, MAX_CROPS)
        vis = stitch_image(encode_crops(self.trunk, self.projector.proj, crops), rows, cols, self.projector.row_seperator)
        emb = self.lm.model.embed_tokens
        at = prompt_ids.index(image_id)
        ids = torch.tensor(prompt_ids)
        embeds = torch.cat([emb(ids[:at]), vis, emb(ids[at + 1:])])[None]
        tokens, logits_steps = greedy_decode(self.lm.model, self.text, self.lm.lm_head, embeds, eos, MAX_NEW)
        return {"grid": {"rows": rows, "cols": cols}, "image_tokens": vis.shape[0], "greedy_tokens": tokens,
                "logits": logits_steps}


def official_config(ref: Reference, tok: dict) -> dict:
    """config.json with the Hub file's structure (keys of the remote-code MagmaConfig and its Llama text_config)."""
    t = ref.text
    b = BACKBONES[ref.backbone_name]
    return {
        "architectures": ["MagmaForCausalLM"],
        "auto_map": {
            "AutoConfig": "microsoft/Magma-8B--configuration_magma.MagmaConfig",
            "AutoModelForCausalLM": "microsoft/Magma-8B--modeling_magma.MagmaForCausalLM",
        },
        "image_token_index": token_id(tok, "<image>"),
        "mm_use_image_start_end": True,
        "model_type": "magma",
        "text_config": {
            "_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct",
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": token_id(tok, "<|begin_of_text|>"),
            "eos_token_id": token_id(tok, "<|eot_id|>"),
            "hidden_act": "silu",
            "hidden_size": t.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": t.intermediate_size,
            "max_position_embeddings": t.max_position_embeddings,
            "mlp_bias": False,
            "model_type": "llama",
            "num_attention_heads": t.num_attention_heads,
            "num_hidden_layers": t.num_hidden_layers,
            "num_key_value_heads": t.num_key_value_heads,
            "pretraining_tp": 1,
            "rms_norm_eps": t.rms_norm_eps,
            "rope_scaling": None,
            "rope_theta": t.rope_theta,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "vocab_size": t.vocab_size,
        },
        "tokenizer_model_max_length": 4096,
        "tokenizer_padding_side": "right",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.44.1",
        "vision_config": {
            "img_anyres_strategy": "crop",
            "img_size": ref.img_size,
            "max_num_crops": MAX_CROPS,
            "mm_hidden_size": b.dims[-1],
            "mm_projector_type": "mlp2x_gelu",
            "mm_use_im_patch_token": False,
            "mm_use_im_start_end": False,
            "vision_backbone": ref.backbone_name,
            "vision_feature_layer": "clip_vis_dense",
        },
    }


def write_shards(folder: Path, tensors: Dict[str, torch.Tensor], shards: int = 2) -> None:
    names = sorted(tensors)
    total = sum(tensors[n].numel() * tensors[n].element_size() for n in names)
    groups: List[List[str]] = [[] for _ in range(shards)]
    seen = 0
    for n in names:  # contiguous runs of about equal bytes, as the Hub's sharding does
        groups[min(shards - 1, seen * shards // total)].append(n)
        seen += tensors[n].numel() * tensors[n].element_size()
    weight_map = {}
    for i, group in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_file(folder / fname, {n: tensors[n] for n in group}, {"format": "pt"})
        weight_map.update({n: fname for n in group})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def prompt_ids(tokenizer_dir: Path, questions: List[str]) -> List[List[int]]:
    out = subprocess.run(
        ["node", "--import", "tsx", str(HERE / "prompt-ids.ts"), str(tokenizer_dir), *questions],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def noise_image(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth blobs plus noise: gives the ConvNeXt varied inputs, like the engine tests' noiseImage.
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 100 * np.sin((x + 7 * c) / (5 + c)) * np.cos(y / (6 + c)) for c in range(3)], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def write_checkpoint(ckpt: Path, tokenizer_dir: Path, seed: int, shape: str = "fixture") -> Reference:
    """The checkpoint folder alone (no Node needed); returns the reference modules it holds."""
    if ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True)
    tok = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    ref = Reference(tok_vocab_size(tok), seed, shape)
    write_shards(ckpt, ref.official_tensors())
    (ckpt / "config.json").write_text(json.dumps(official_config(ref, tok), indent=2) + "\n")
    for fname in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(tokenizer_dir / fname, ckpt / fname)
    bos, eot, pad = (token_id(tok, x) for x in ("<|begin_of_text|>", "<|eot_id|>", "<pad>"))
    (ckpt / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": bos, "eos_token_id": eot, "pad_token_id": pad, "do_sample": False,
         "transformers_version": "4.44.1"}, indent=2) + "\n")
    (ckpt / "preprocessor_config.json").write_text(json.dumps(
        {"anyres_strategy": "crop", "base_img_size": ref.img_size, "do_convert_rgb": True, "image_mean": CLIP_MEAN,
         "image_processor_type": "MagmaImageProcessor", "image_std": CLIP_STD, "num_crops": MAX_CROPS,
         "processor_class": "MagmaProcessor"}, indent=2) + "\n")
    return ref


def write_fixture(out: Path, tokenizer_dir: Path, seed: int, shape: str = "fixture", parity: bool = True) -> Tuple[Path, str]:
    ckpt = out / "checkpoint"
    ref = write_checkpoint(ckpt, tokenizer_dir, seed, shape)
    tok = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    eot = token_id(tok, "<|eot_id|>")
    revision = hashlib.sha1(f"magma8b-{shape}-{seed}".encode()).hexdigest()
    (out / "revision").write_text(revision + "\n")
    if not parity:
        return ckpt, revision
    ids = prompt_ids(tokenizer_dir, [q for _, _, q in CASES])
    cases = []
    for k, ((w, h, question), pids) in enumerate(zip(CASES, ids)):
        rgb = noise_image(w, h, seed + k)
        case = ref.greedy(rgb, pids, token_id(tok, "<image>"), {eot})
        cases.append({"question": question, "width": w, "height": h,
                      "rgb_base64": base64.b64encode(rgb.tobytes()).decode("ascii"), "prompt_ids": pids, **case})
    grids = [f"{c['grid']['rows']}x{c['grid']['cols']}" for c in cases]
    assert len(set(grids)) == len(grids), f"fixture cases must cover distinct crop grids, got {grids}"
    fixture = {"revision": revision, "logit_tolerance": LOGIT_TOLERANCE, "cases": cases}
    (out / "parity.json").write_text(json.dumps(fixture) + "\n")
    return ckpt, revision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tokenizer-dir", type=Path, default=ROOT / "models" / "magma-tiny-som",
                    help="tokenizer files with Magma's special tokens (read only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="fixture",
                    help="fixture: CI parity; 2b/8b: random-weight stand-ins for GPU timing (no parity.json)")
    args = ap.parse_args()
    if args.shape == "fixture":
        torch.set_num_threads(1)
    ckpt, revision = write_fixture(args.out, args.tokenizer_dir, args.seed, args.shape, parity=args.shape == "fixture")
    print(f"wrote {ckpt} (revision {revision}){' and parity.json' if args.shape == 'fixture' else ''}")


if __name__ == "__main__":
    main()
