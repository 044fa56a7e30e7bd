"""Export a Magma-like PyTorch model to the ONNX bundle of docs/BUNDLE.md.

The exporter only needs an `ExportSource`: the ConvNeXt trunk (stem + stages), the mlp2x_gelu
projector, the row separator, the token embedding, the Llama layers + final norm, the lm_head and
the text config numbers. magma-tiny-som (model.py) and microsoft/Magma-8B (hf_magma.py) both
provide one, so both go through the same graph code below.

Tiny model, from a training checkpoint (or random weights with --random):
  /usr/bin/python3 tools/magma_onnx/export.py --checkpoint tools/tiny-model/runs/main/best.pt \
      --out models/magma-tiny-som
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magma_onnx.model import (  # noqa: E402
    MagmaTiny,
    MagmaTinyConfig,
    TextConfig,
    encode_crops,
    llama_forward,
)

OPSET = 17
TWO_GB = 2 * 1024**3


@dataclass
class ExportSource:
    """What the exporter needs from a Magma-like model (duck-typed modules, HF Llama layout)."""

    # A part may be None when only the other graphs are exported (hf_magma.py loads one graph at a time).
    trunk: Optional[nn.Module]  # .stem and .stages (timm ConvNeXt layout)
    projector: Optional[nn.Module]  # mlp2x_gelu: Linear -> GELU(erf) -> Linear
    row_separator: Optional[torch.Tensor]  # [1,1,H] or [H]
    embed_tokens: Optional[nn.Module]
    lm: Optional[nn.Module]  # .layers[i].{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj, *_layernorm}, .norm
    lm_head: Optional[nn.Module]
    text: TextConfig
    img_size: int


class VisionEncoder(nn.Module):
    def __init__(self, src: ExportSource):
        super().__init__()
        self.trunk, self.projector = src.trunk, src.projector
        self.row_separator = nn.Parameter(src.row_separator.detach().reshape(-1).clone(), requires_grad=False)

    def forward(self, pixel_values: torch.Tensor):
        features = encode_crops(self.trunk, self.projector, pixel_values)
        return features, self.row_separator


class EmbedTokens(nn.Module):
    def __init__(self, src: ExportSource):
        super().__init__()
        self.embed_tokens = src.embed_tokens

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)


class Decoder(nn.Module):
    """inputs_embeds + mask + positions + flat past KV + flat prefix KV -> logits (float32) + flat present KV.

    The prefix (keys and values of a cached image prompt) is attended to but not copied into the
    present, so a decoder step moves only the positions after it (docs/BUNDLE.md).
    """

    def __init__(self, src: ExportSource):
        super().__init__()
        self.lm, self.lm_head, self.text = src.lm, src.lm_head, src.text

    def forward(self, inputs_embeds, attention_mask, position_ids, num_logits_to_keep, *kv_flat):
        layers = self.text.num_hidden_layers
        pairs = [(kv_flat[2 * i], kv_flat[2 * i + 1]) for i in range(2 * layers)]
        past, prefix = pairs[:layers], pairs[layers:]
        hidden, presents = llama_forward(
            self.lm, self.text, inputs_embeds, attention_mask, position_ids, past, prefix=prefix
        )
        # Keep only the last k positions (k <= 0 keeps all), with tensor ops so k stays an input.
        t_idx = torch.cumsum(torch.ones_like(position_ids[0]), dim=0) - 1  # [T]
        t_len = torch.ones_like(position_ids[0]).sum()
        keep = (t_idx >= t_len - num_logits_to_keep) | (num_logits_to_keep <= 0)
        hidden = torch.index_select(hidden, 1, torch.nonzero(keep).reshape(-1))
        logits = self.lm_head(hidden).float()
        return (logits, *[t for kv in presents for t in kv])


def _finalize(tmp_path: Path, out_path: Path, outputs: List[str]) -> None:
    """Move an exported graph into place; graphs over 2 GB keep weights in one X.onnx_data beside them."""
    import onnx
    from onnx import helper

    model = onnx.load(str(tmp_path), load_external_data=True)
    # An output that is a constant (the row separator) loses its name to constant folding: restore it.
    for out, name in zip(model.graph.output, outputs):
        if out.name != name:
            model.graph.node.append(helper.make_node("Identity", [out.name], [name]))
            out.name = name
    data_name = out_path.name + "_data"
    big = sum(t.ByteSize() for t in model.graph.initializer) > TWO_GB - (64 << 20)
    for stale in (out_path, out_path.with_name(data_name)):
        if stale.exists():
            stale.unlink()
    if big:
        onnx.save_model(model, str(out_path), save_as_external_data=True, all_tensors_to_one_file=True, location=data_name)
    else:
        onnx.save_model(model, str(out_path))
    onnx.checker.check_model(str(out_path))


def _export(module: nn.Module, args: tuple, path: Path, inputs: List[str], outputs: List[str], axes: Dict[str, Dict[int, str]]):
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / path.name
        torch.onnx.export(
            module,
            args,
            str(tmp_path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
        _finalize(tmp_path, path, outputs)


GRAPH_NAMES = ("vision_encoder", "embed_tokens", "decoder_model_merged")
DTYPE_SUFFIX = {torch.float32: "", torch.float16: "_fp16"}


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device  # trace where the weights live (GPU for Magma-8B in fp16)


@torch.no_grad()
def export_vision(src: ExportSource, path: Path, dtype: torch.dtype = torch.float32) -> None:
    s = src.img_size
    pixel_values = torch.zeros(2, 3, s, s, dtype=dtype, device=_device(src.projector))
    _export(
        VisionEncoder(src).eval(),
        (pixel_values,),
        path,
        ["pixel_values"],
        ["image_features", "row_separator"],
        {"pixel_values": {0: "num_crops"}, "image_features": {0: "num_crops"}},
    )


@torch.no_grad()
def export_embed(src: ExportSource, path: Path) -> None:
    input_ids = torch.tensor([[1, 2, 3]], dtype=torch.int64, device=_device(src.embed_tokens))
    _export(
        EmbedTokens(src).eval(),
        (input_ids,),
        path,
        ["input_ids"],
        ["inputs_embeds"],
        {"input_ids": {0: "batch", 1: "seq"}, "inputs_embeds": {0: "batch", 1: "seq"}},
    )


def decoder_sample(
    t: TextConfig, dtype: torch.dtype, dev: torch.device, b: int = 2, p: int = 3, n: int = 4, q: int = 5
) -> tuple:
    """Decoder inputs (embeds, mask, positions, keep, *past, *prefix): a non-empty past and prefix so both are traced."""
    g = torch.Generator().manual_seed(0)
    embeds = torch.randn(b, n, t.hidden_size, generator=g).to(dev, dtype)
    mask = torch.ones(b, q + p + n, dtype=torch.int64, device=dev)
    pos = torch.arange(q + p, q + p + n, dtype=torch.int64, device=dev).expand(b, n).contiguous()
    keep = torch.tensor(1, dtype=torch.int64, device=dev)
    past = [torch.randn(b, t.num_key_value_heads, p, t.head_dim, generator=g).to(dev, dtype)
            for _ in range(2 * t.num_hidden_layers)]
    prefix = [torch.randn(b, t.num_key_value_heads, q, t.head_dim, generator=g).to(dev, dtype)
              for _ in range(2 * t.num_hidden_layers)]
    return (embeds, mask, pos, keep, *past, *prefix)


@torch.no_grad()
def export_decoder(src: ExportSource, path: Path, dtype: torch.dtype = torch.float32) -> None:
    t = src.text
    names_in = ["inputs_embeds", "attention_mask", "position_ids", "num_logits_to_keep"]
    names_out = ["logits"]
    axes: Dict[str, Dict[int, str]] = {
        "inputs_embeds": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "total_seq"},
        "position_ids": {0: "batch", 1: "seq"},
        "logits": {0: "batch", 1: "logits_seq"},
    }
    for i in range(t.num_hidden_layers):
        for kind in ("key", "value"):
            names_in.append(f"past_key_values.{i}.{kind}")
            names_out.append(f"present.{i}.{kind}")
            axes[f"past_key_values.{i}.{kind}"] = {0: "batch", 2: "past_seq"}
            axes[f"present.{i}.{kind}"] = {0: "batch", 2: "total_seq"}
    for i in range(t.num_hidden_layers):
        for kind in ("key", "value"):
            names_in.append(f"prefix_key_values.{i}.{kind}")
            axes[f"prefix_key_values.{i}.{kind}"] = {0: "batch", 2: "prefix_seq"}
    _export(Decoder(src).eval(), decoder_sample(t, dtype, _device(src.lm_head)), path, names_in, names_out, axes)


def graph_path(onnx_dir: Path, graph: str, dtype: torch.dtype) -> Path:
    return onnx_dir / f"{graph}{DTYPE_SUFFIX[dtype]}.onnx"


@torch.no_grad()
def export_graphs(src: ExportSource, onnx_dir: Path, dtype: torch.dtype = torch.float32, suffix: str = "") -> None:
    """Write vision_encoder, embed_tokens and decoder_model_merged (+ suffix) into onnx_dir."""
    onnx_dir.mkdir(parents=True, exist_ok=True)
    export_vision(src, onnx_dir / f"vision_encoder{suffix}.onnx", dtype)
    export_embed(src, onnx_dir / f"embed_tokens{suffix}.onnx")
    export_decoder(src, onnx_dir / f"decoder_model_merged{suffix}.onnx", dtype)


def token_id(tokenizer_json: dict, content: str) -> int:
    for tok in tokenizer_json["added_tokens"]:
        if tok["content"] == content:
            return int(tok["id"])
    raise KeyError(f"{content} is not an added token")


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


# ---------------------------------------------------------------- magma-tiny-som


CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
NUM_CROPS = 4


def llama_text_config(t: Any, hidden_act: str, tie_word_embeddings: bool) -> dict:
    """config.json's text_config for a Llama decoder; `t` has Llama config attribute names."""
    return {
        "model_type": "llama",
        "hidden_size": t.hidden_size,
        "num_hidden_layers": t.num_hidden_layers,
        "num_attention_heads": t.num_attention_heads,
        "num_key_value_heads": t.num_key_value_heads,
        "head_dim": t.head_dim,
        "intermediate_size": t.intermediate_size,
        "vocab_size": t.vocab_size,
        "rms_norm_eps": t.rms_norm_eps,
        "rope_theta": t.rope_theta,
        "rope_scaling": None,
        "max_position_embeddings": t.max_position_embeddings,
        "hidden_act": hidden_act,
        "tie_word_embeddings": tie_word_embeddings,
    }


def tiny_source(model: MagmaTiny) -> ExportSource:
    return ExportSource(
        trunk=model.vision_tower.trunk,
        projector=model.multi_modal_projector.proj,
        row_separator=model.multi_modal_projector.row_seperator,
        embed_tokens=model.language_model.model.embed_tokens,
        lm=model.language_model.model,
        lm_head=model.language_model.lm_head,
        text=model.cfg.text,
        img_size=model.cfg.vision.img_size,
    )


# What magma-tiny-som was trained to read, in model pixels (docs/BUNDLE.md "magma_som"): the
# server sizes labels and outlines so they reach this after the processor's resize.
TINY_MARK_MINIMUMS = {"min_label_text_height": 16, "min_outline_width": 2}


def tiny_configs(
    cfg: MagmaTinyConfig, tok: dict, name: str, revision: str, training: Optional[dict] = None
) -> Dict[str, dict]:
    t, v = cfg.text, cfg.vision
    bos, eot, eos, pad = (token_id(tok, x) for x in ("<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", "<pad>"))
    config = {
        "model_type": "magma",
        "architectures": ["MagmaForCausalLM"],
        "name": name,
        "revision": revision,
        "torch_dtype": "float32",
        "image_token_index": token_id(tok, "<image>"),
        "mm_use_image_start_end": True,
        "bos_token_id": bos,
        "eos_token_id": [eot, eos],
        "pad_token_id": pad,
        "text_config": llama_text_config(t, t.hidden_act, t.tie_word_embeddings),
        "vision_config": {
            "vision_backbone": "convnext-tiny-som",
            "img_size": v.img_size,
            "feature_stride": v.feature_stride,
            "depths": v.depths,
            "dims": v.dims,
            "mm_hidden_size": v.mm_hidden_size,
            "mm_projector_type": v.mm_projector_type,
            "img_anyres_strategy": "crop",
            "max_num_crops": NUM_CROPS,
        },
        "magma_som": {
            "marks": TINY_MARK_MINIMUMS,
            **({"training": training} if training else {}),
        },
    }
    preprocessor = {
        "image_processor_type": "MagmaImageProcessor",
        "anyres_strategy": "crop",
        "base_img_size": v.img_size,
        "num_crops": NUM_CROPS,
        "do_convert_rgb": True,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
    }
    generation = {
        "bos_token_id": bos,
        "eos_token_id": [eot, eos],
        "pad_token_id": pad,
        "do_sample": False,
        "max_new_tokens": 64,
    }
    return {"config.json": config, "preprocessor_config.json": preprocessor, "generation_config.json": generation}


def export_tiny(
    model: MagmaTiny, out: Path, tokenizer_dir: Path, name: str, revision: str, training: Optional[dict] = None
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tok = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    if tok_vocab_size(tok) != model.cfg.text.vocab_size:
        raise ValueError(f"tokenizer has {tok_vocab_size(tok)} ids, model {model.cfg.text.vocab_size}")
    for fname in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if tokenizer_dir.resolve() != out.resolve():
            shutil.copyfile(tokenizer_dir / fname, out / fname)
    for fname, obj in tiny_configs(model.cfg, tok, name, revision, training).items():
        write_json(out / fname, obj)
    export_graphs(tiny_source(model.eval()), out / "onnx")


def tok_vocab_size(tok: dict) -> int:
    ids = list(tok["model"]["vocab"].values()) + [a["id"] for a in tok["added_tokens"]]
    return max(ids) + 1


def load_checkpoint(path: Path) -> MagmaTiny:
    return load_checkpoint_with_metadata(path)[0]


def load_checkpoint_with_metadata(path: Path) -> Tuple[MagmaTiny, Optional[dict]]:
    """The model and what the trainer recorded about its data and recipe (None for older checkpoints)."""
    ckpt = torch.load(str(path), map_location="cpu")
    model = MagmaTiny(MagmaTinyConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    training = ckpt.get("training")
    if training is not None:
        training = {**training, "step": ckpt.get("step")}
    return model.eval(), training


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, help="training checkpoint (.pt) of magma-tiny-som")
    ap.add_argument("--random", action="store_true", help="export freshly initialised weights (seeded)")
    ap.add_argument("--out", type=Path, default=Path("models/magma-tiny-som"))
    ap.add_argument("--tokenizer-dir", type=Path, default=None, help="folder with tokenizer files (default: --out)")
    ap.add_argument("--name", default="magma-tiny-som")
    ap.add_argument("--revision", default="2026-11-21.1")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    training = None
    if args.checkpoint:
        model, training = load_checkpoint_with_metadata(args.checkpoint)
    elif args.random:
        model = MagmaTiny(MagmaTinyConfig()).eval()
    else:
        ap.error("give --checkpoint or --random")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    export_tiny(model, args.out, args.tokenizer_dir or args.out, args.name, args.revision, training)
    print(f"exported {args.out}")


if __name__ == "__main__":
    main()
