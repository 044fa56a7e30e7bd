"""magma-tiny-som in PyTorch with the weights of the bundle's ONNX graphs.

export.py traces three modules (VisionEncoder, EmbedTokens, Decoder in tools/magma_onnx/export.py).
Their named parameters keep their module paths as initializer names ("trunk.stages.0...",
"lm.layers.0.input_layernorm.weight", "embed_tokens.weight"); the weights of linear layers are
stored transposed under generated names ("onnx::MatMul_170"), so those are found through the
MatMul node that reads them, whose name carries the module path ("/stages/stages.0/blocks/
blocks.0/mlp/fc1/MatMul", "/q_proj_2/MatMul" for layer 2, "/lm_head/MatMul").
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Dict

import onnx
import torch
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from magma_onnx.model import MagmaTiny, MagmaTinyConfig, TextConfig, VisionConfig  # noqa: E402

DECODER_LINEAR = {
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "o_proj": "self_attn.o_proj",
    "gate_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}


def config_of(bundle_config: dict) -> MagmaTinyConfig:
    t, v = bundle_config["text_config"], bundle_config["vision_config"]
    text_keys = TextConfig.__dataclass_fields__.keys()
    text = TextConfig(**{k: t[k] for k in text_keys if k in t})
    vision = VisionConfig(img_size=v["img_size"], feature_stride=v["feature_stride"], depths=v["depths"], dims=v["dims"])
    return MagmaTinyConfig(text, vision)


def _initializers(graph) -> Dict[str, torch.Tensor]:
    return {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}


def _matmul_weights(graph, inits: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Node name -> the [out, in] weight of a MatMul that reads an initializer."""
    out = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits:
            out[node.name] = inits[node.input[1]].t().contiguous()
    return out


def vision_state(path: Path) -> Dict[str, torch.Tensor]:
    graph = onnx.load(str(path)).graph
    inits = _initializers(graph)
    state = {}
    for name, value in inits.items():
        if name.startswith("trunk."):
            state["vision_tower." + name] = value
        elif name.startswith("projector."):
            state["multi_modal_projector.proj." + name[len("projector."):]] = value
        elif name.startswith("row_separator"):
            state["multi_modal_projector.row_seperator"] = value.reshape(1, 1, -1)
    for node, weight in _matmul_weights(graph, inits).items():
        stage = re.fullmatch(r"/stages/stages\.(\d+)/blocks/blocks\.(\d+)/mlp/(fc\d)/MatMul", node)
        proj = re.fullmatch(r"/projector/projector\.(\d+)/MatMul", node)
        if stage:
            s, b, fc = stage.groups()
            state[f"vision_tower.trunk.stages.{s}.blocks.{b}.mlp.{fc}.weight"] = weight
        elif proj:
            state[f"multi_modal_projector.proj.{proj.group(1)}.weight"] = weight
        else:
            raise ValueError(f"vision_encoder: unexpected MatMul {node}")
    return state


def decoder_state(path: Path) -> Dict[str, torch.Tensor]:
    graph = onnx.load(str(path)).graph
    inits = _initializers(graph)
    state = {"language_model.model." + name[len("lm."):]: v for name, v in inits.items() if name.startswith("lm.")}
    for node, weight in _matmul_weights(graph, inits).items():
        if node == "/lm_head/MatMul":
            state["language_model.lm_head.weight"] = weight
            continue
        m = re.fullmatch(r"/(\w+?_proj)(?:_(\d+))?/MatMul", node)
        if m is None or m.group(1) not in DECODER_LINEAR:
            raise ValueError(f"decoder_model_merged: unexpected MatMul {node}")
        layer = int(m.group(2) or 0)  # the tracer numbers repeated scopes: q_proj, q_proj_1, ...
        state[f"language_model.model.layers.{layer}.{DECODER_LINEAR[m.group(1)]}.weight"] = weight
    return state


def load_bundle_model(model_dir: Path) -> MagmaTiny:
    """The model with every parameter taken from the bundle's fp32 graphs (strict: none missing)."""
    config = json.loads((model_dir / "config.json").read_text())
    model = MagmaTiny(config_of(config))
    onnx_dir = model_dir / "onnx"
    state = {**vision_state(onnx_dir / "vision_encoder.onnx"), **decoder_state(onnx_dir / "decoder_model_merged.onnx")}
    embed = _initializers(onnx.load(str(onnx_dir / "embed_tokens.onnx")).graph)
    state["language_model.model.embed_tokens.weight"] = embed["embed_tokens.weight"]
    model.load_state_dict(state, strict=True)
    return model.eval()
