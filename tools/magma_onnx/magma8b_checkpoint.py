"""microsoft/Magma-8B's checkpoint read without its remote code: config.json, the safetensors shards
and one strict name map.

Every tensor the checkpoint holds must be in the map (`expected_tensors`), with the shape the
config implies and the checkpoint's stored dtype; every tensor the map requires must be there.
Anything else is a `CheckpointError` naming the tensor. The map follows the official module tree
(microsoft/Magma `magma/modeling_magma.py`, `magma/image_tower_magma.py`; timm ConvNeXt names):

  vision_tower.clip_vision_model.trunk.{stem.0,stem.1,stages.S.downsample.{0,1},
      stages.S.blocks.B.{conv_dw,norm,mlp.fc1,mlp.fc2,gamma}}   ConvNeXt trunk (stem + stages)
  multi_modal_projector.{proj.0,proj.2,row_seperator}           mlp2x_gelu projector, row separator
  language_model.model.{embed_tokens,layers.N.*,norm}, language_model.lm_head   Llama-3 decoder

Known tensors the official forward never reads (open_clip's head, the timm head norm, the unused
image start/end separators, old rotary `inv_freq` buffers) are accepted if present, shape-checked,
and not loaded. The ConvNeXt layer scale is accepted as `...blocks.B.gamma` or `...blocks.B.weight`
(one per block; both is an error).

Modules are this repository's own (model.py: timm-layout ConvNeXt, HF-Llama-layout decoder), built
without random init and filled in float32 (bf16 and fp16 widen to fp32 exactly); the layer scales
are then compared with the stored values in the stored dtype, which is lossless from float32.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from magma_onnx.model import ConvNeXtTrunk, LlamaForCausalLM, MultiModalProjector, TextConfig, VisionConfig
from magma_onnx.safetensors_io import TensorEntry, read_header, read_tensor


class CheckpointError(ValueError):
    """The checkpoint does not match what the exporter implements; the message names the tensor or field."""


@dataclass(frozen=True)
class Backbone:
    depths: Tuple[int, ...]
    dims: Tuple[int, ...]
    layer_norm_eps: float
    head_embed_dim: int  # open_clip's head.proj output width (not used by Magma's forward)


BACKBONES: Dict[str, Backbone] = {
    # timm convnext_xxlarge (norm_eps 1e-5) inside open_clip CLIP-convnext_xxlarge (embed_dim 1024).
    "convnextxxlarge": Backbone((3, 4, 30, 3), (384, 768, 1536, 3072), 1e-5, 1024),
    # The official layout shrunk for tools/magma_onnx/make_magma8b_fixture.py (same 4 stages, stride 32).
    "convnext-fixture": Backbone((1, 1, 2, 1), (8, 16, 24, 32), 1e-5, 16),
}

TRUNK = "vision_tower.clip_vision_model.trunk."
PROJ = "multi_modal_projector."
LM = "language_model.model."
HEAD = "language_model.lm_head."
STORED_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


@dataclass(frozen=True)
class MagmaCheckpointConfig:
    text: TextConfig
    backbone_name: str
    backbone: Backbone
    img_size: int
    max_num_crops: int
    mm_hidden_size: int
    image_token_index: int
    mm_use_image_start_end: bool
    torch_dtype: str
    raw: dict


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise CheckpointError(f"config.json: {what}")


def parse_config(raw: dict) -> MagmaCheckpointConfig:
    """Checks the config fields the exported pipeline depends on; each refusal names the field."""
    _need(raw.get("model_type") == "magma", f"model_type is {raw.get('model_type')!r}, expected 'magma'")
    vision, text = raw.get("vision_config"), raw.get("text_config")
    _need(isinstance(vision, dict), "vision_config is missing")
    _need(isinstance(text, dict), "text_config is missing")
    # The model branches on this: "global" runs ConvNeXt once on the stitched image and gives other
    # features with the same token count, which the engine's crop pipeline would not reproduce.
    strategy = vision.get("img_anyres_strategy")
    _need(strategy == "crop", f"vision_config.img_anyres_strategy is {strategy!r}; the exporter and engine implement 'crop' only")
    _need(vision.get("mm_projector_type") == "mlp2x_gelu",
          f"vision_config.mm_projector_type is {vision.get('mm_projector_type')!r}, expected 'mlp2x_gelu'")
    name = vision.get("vision_backbone")
    _need(name in BACKBONES, f"vision_config.vision_backbone {name!r} is not one of {sorted(BACKBONES)}")
    backbone = BACKBONES[name]
    layer = vision.get("vision_feature_layer", "clip_vis_dense")
    _need(layer == "clip_vis_dense", f"vision_config.vision_feature_layer is {layer!r}, expected 'clip_vis_dense'")
    _need(not vision.get("mm_use_im_patch_token", False), "vision_config.mm_use_im_patch_token is set; not implemented")
    mm_hidden = vision.get("mm_hidden_size", backbone.dims[-1])
    _need(mm_hidden == backbone.dims[-1], f"vision_config.mm_hidden_size {mm_hidden} != {name} width {backbone.dims[-1]}")
    img_size = vision.get("img_size")
    _need(isinstance(img_size, int) and img_size > 0 and img_size % 32 == 0,
          f"vision_config.img_size {img_size!r} must be a positive multiple of the stride 32")
    crops = vision.get("max_num_crops")
    _need(isinstance(crops, int) and crops >= 1, f"vision_config.max_num_crops {crops!r} must be a positive integer")

    _need(text.get("model_type", "llama") == "llama", f"text_config.model_type is {text.get('model_type')!r}, expected 'llama'")
    _need(text.get("hidden_act", "silu") == "silu", f"text_config.hidden_act is {text.get('hidden_act')!r}, expected 'silu'")
    _need(text.get("rope_scaling") is None, "text_config.rope_scaling is set; the exporter implements plain Llama RoPE")
    _need(not text.get("tie_word_embeddings", False), "text_config.tie_word_embeddings is true; Magma-8B has its own lm_head")
    _need(not text.get("attention_bias", False), "text_config.attention_bias is true; not implemented")
    _need(not text.get("mlp_bias", False), "text_config.mlp_bias is true; not implemented")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                "max_position_embeddings"):
        _need(isinstance(text.get(key), int) and text[key] > 0, f"text_config.{key} is {text.get(key)!r}")
    heads = text["num_attention_heads"]
    kv = text.get("num_key_value_heads", heads)
    _need(isinstance(kv, int) and kv > 0 and heads % kv == 0, f"text_config.num_key_value_heads {kv!r} does not divide {heads}")
    head_dim = text.get("head_dim") or text["hidden_size"] // heads
    _need(head_dim * heads == text["hidden_size"] or "head_dim" in text, "text_config: hidden_size is not heads * head_dim")
    image_token = raw.get("image_token_index", raw.get("image_token_id"))
    _need(isinstance(image_token, int) and 0 <= image_token < text["vocab_size"],
          f"image_token_index {image_token!r} is missing or outside vocab_size")
    dtype = raw.get("torch_dtype", text.get("torch_dtype"))
    _need(dtype in STORED_DTYPES, f"torch_dtype is {dtype!r}; expected one of {sorted(STORED_DTYPES)}")

    cfg = TextConfig(
        hidden_size=text["hidden_size"],
        num_hidden_layers=text["num_hidden_layers"],
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        intermediate_size=text["intermediate_size"],
        vocab_size=text["vocab_size"],
        rms_norm_eps=float(text.get("rms_norm_eps", 1e-6)),
        rope_theta=float(text.get("rope_theta", 10000.0)),
        max_position_embeddings=text["max_position_embeddings"],
    )
    return MagmaCheckpointConfig(
        text=cfg,
        backbone_name=name,
        backbone=backbone,
        img_size=img_size,
        max_num_crops=crops,
        mm_hidden_size=mm_hidden,
        image_token_index=image_token,
        mm_use_image_start_end=bool(raw.get("mm_use_image_start_end", vision.get("mm_use_im_start_end", False))),
        torch_dtype=dtype,
        raw=raw,
    )


@dataclass(frozen=True)
class Expected:
    shape: Tuple[int, ...]
    used: bool = True  # False: known, shape-checked, never loaded (optional)
    alias: Optional[str] = None  # another accepted spelling of the same tensor


def expected_tensors(cfg: MagmaCheckpointConfig) -> Dict[str, Expected]:
    """Every tensor name of the official layout with the shape this config implies."""
    b, t = cfg.backbone, cfg.text
    d = b.dims
    out: Dict[str, Expected] = {}

    def add(name: str, *shape: int, used: bool = True, alias: Optional[str] = None) -> None:
        out[name] = Expected(tuple(shape), used, alias)

    add(TRUNK + "stem.0.weight", d[0], 3, 4, 4)
    add(TRUNK + "stem.0.bias", d[0])
    add(TRUNK + "stem.1.weight", d[0])
    add(TRUNK + "stem.1.bias", d[0])
    for s, depth in enumerate(b.depths):
        stage = f"{TRUNK}stages.{s}."
        if s > 0:  # stage 0 keeps the stem's width at stride 1: timm gives it no downsample
            add(stage + "downsample.0.weight", d[s - 1])
            add(stage + "downsample.0.bias", d[s - 1])
            add(stage + "downsample.1.weight", d[s], d[s - 1], 2, 2)
            add(stage + "downsample.1.bias", d[s])
        for k in range(depth):
            block = f"{stage}blocks.{k}."
            add(block + "conv_dw.weight", d[s], 1, 7, 7)
            add(block + "conv_dw.bias", d[s])
            add(block + "norm.weight", d[s])
            add(block + "norm.bias", d[s])
            add(block + "mlp.fc1.weight", 4 * d[s], d[s])
            add(block + "mlp.fc1.bias", 4 * d[s])
            add(block + "mlp.fc2.weight", d[s], 4 * d[s])
            add(block + "mlp.fc2.bias", d[s])
            add(block + "gamma", d[s], alias=block + "weight")
    add(TRUNK + "head.norm.weight", d[-1], used=False)
    add(TRUNK + "head.norm.bias", d[-1], used=False)
    add("vision_tower.clip_vision_model.head.proj.weight", b.head_embed_dim, d[-1], used=False)

    h = t.hidden_size
    add(PROJ + "proj.0.weight", h, cfg.mm_hidden_size)
    add(PROJ + "proj.0.bias", h)
    add(PROJ + "proj.2.weight", h, h)
    add(PROJ + "proj.2.bias", h)
    add(PROJ + "row_seperator", 1, 1, h)
    add(PROJ + "img_start_seperator", 1, 1, h, used=False)
    add(PROJ + "img_end_seperator", 1, 1, h, used=False)

    q, kv = t.num_attention_heads * t.head_dim, t.num_key_value_heads * t.head_dim
    add(LM + "embed_tokens.weight", t.vocab_size, h)
    for i in range(t.num_hidden_layers):
        layer = f"{LM}layers.{i}."
        add(layer + "self_attn.q_proj.weight", q, h)
        add(layer + "self_attn.k_proj.weight", kv, h)
        add(layer + "self_attn.v_proj.weight", kv, h)
        add(layer + "self_attn.o_proj.weight", h, q)
        add(layer + "self_attn.rotary_emb.inv_freq", t.head_dim // 2, used=False)
        add(layer + "mlp.gate_proj.weight", t.intermediate_size, h)
        add(layer + "mlp.up_proj.weight", t.intermediate_size, h)
        add(layer + "mlp.down_proj.weight", h, t.intermediate_size)
        add(layer + "input_layernorm.weight", h)
        add(layer + "post_attention_layernorm.weight", h)
    add(LM + "norm.weight", h)
    add(HEAD + "weight", t.vocab_size, h)
    return out


class MagmaCheckpoint:
    """A checked checkpoint folder: config, and where each tensor of the name map is stored."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        config_path = self.folder / "config.json"
        if not config_path.exists():
            raise CheckpointError(f"{config_path}: missing")
        self.config = parse_config(json.loads(config_path.read_text()))
        self.entries = self._index()
        self.tensors = self._match()  # our name -> the entry holding it

    def _index(self) -> Dict[str, TensorEntry]:
        index_path = self.folder / "model.safetensors.index.json"
        if index_path.exists():
            weight_map: Mapping[str, str] = json.loads(index_path.read_text())["weight_map"]
            shards = sorted(set(weight_map.values()))
        elif (self.folder / "model.safetensors").exists():
            weight_map, shards = {}, ["model.safetensors"]
        else:
            raise CheckpointError(f"{self.folder}: no model.safetensors.index.json or model.safetensors")
        entries: Dict[str, TensorEntry] = {}
        for shard in shards:
            path = self.folder / shard
            if not path.exists():
                raise CheckpointError(f"{shard}: listed in model.safetensors.index.json but missing")
            for name, entry in read_header(path)[0].items():
                if name in entries:
                    raise CheckpointError(f"tensor {name} is stored twice ({entries[name].file.name}, {shard})")
                if weight_map and weight_map.get(name) != shard:
                    raise CheckpointError(f"tensor {name} is in {shard} but the index says {weight_map.get(name)!r}")
                entries[name] = entry
        for name, shard in weight_map.items():
            if name not in entries:
                raise CheckpointError(f"tensor {name}: listed in the index for {shard} but not in that file")
        return entries

    def _match(self) -> Dict[str, TensorEntry]:
        expected = expected_tensors(self.config)
        stored = STORED_DTYPES[self.config.torch_dtype]
        aliases = {e.alias: name for name, e in expected.items() if e.alias}
        matched: Dict[str, TensorEntry] = {}
        problems: List[str] = []
        for name, entry in sorted(self.entries.items()):
            ours = name if name in expected else aliases.get(name)
            if ours is None:
                problems.append(f"unexpected tensor {name} {list(entry.shape)} (not in Magma-8B's layout)")
                continue
            if ours in matched:
                problems.append(f"tensor {ours} is stored under two spellings ({matched[ours].name}, {name})")
                continue
            want = expected[ours]
            if entry.shape != want.shape:
                problems.append(f"tensor {name} has shape {list(entry.shape)}, expected {list(want.shape)}")
            elif entry.dtype != stored:
                problems.append(f"tensor {name} is stored as {entry.dtype}, config torch_dtype says {stored}")
            matched[ours] = entry
        for name, want in expected.items():
            if want.used and name not in matched:
                spelling = f" (or {want.alias})" if want.alias else ""
                problems.append(f"missing tensor {name}{spelling} {list(want.shape)}")
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise CheckpointError(f"{self.folder}: " + "; ".join(problems[:5]) + more)
        return {name: e for name, e in matched.items() if expected[name].used}

    def read(self, name: str) -> torch.Tensor:
        return read_tensor(self.tensors[name])

    # ------------------------------------------------------------ modules

    def vision(self) -> Tuple[nn.Module, nn.Module, torch.Tensor]:
        """(ConvNeXt trunk, mlp2x_gelu projector, row separator [1,1,H]) in float32."""
        c = self.config
        vcfg = VisionConfig(img_size=c.img_size, feature_stride=32, depths=list(c.backbone.depths),
                            dims=list(c.backbone.dims), layer_norm_eps=c.backbone.layer_norm_eps)
        with no_init():
            trunk = ConvNeXtTrunk(vcfg)
            projector = MultiModalProjector(c.mm_hidden_size, c.text.hidden_size)
        self._fill(trunk, TRUNK)
        self._fill(projector.proj, PROJ + "proj.")
        self.check_layer_scale(trunk)
        return trunk.eval(), projector.proj.eval(), self.read(PROJ + "row_seperator").float()

    def embed_tokens(self) -> nn.Module:
        with no_init():
            emb = nn.Embedding(self.config.text.vocab_size, self.config.text.hidden_size)
        self._fill(emb, LM + "embed_tokens.")
        return emb.eval()

    def decoder(self) -> Tuple[nn.Module, nn.Module]:
        """(Llama layers + final norm, lm_head) in float32; the embedding rows are not loaded here."""
        with no_init():
            lm = LlamaForCausalLM(self.config.text)
        lm.model.embed_tokens = nn.Identity()  # its own graph; keeps the decoder's memory to the decoder
        self._fill(lm.model, LM)
        self._fill(lm.lm_head, HEAD)
        return lm.model.eval(), lm.lm_head.eval()

    def _fill(self, module: nn.Module, prefix: str) -> None:
        """Every parameter of `module` from the checkpoint tensor `prefix + name`, widened to float32."""
        for name, param in module.named_parameters():
            full = prefix + name
            if full not in self.tensors:
                raise CheckpointError(f"module parameter {full} has no checkpoint tensor")
            value = self.read(full).float()
            if tuple(value.shape) != tuple(param.shape):
                raise CheckpointError(f"tensor {full} has shape {list(value.shape)}, module wants {list(param.shape)}")
            param.data = value

    def check_layer_scale(self, trunk: nn.Module) -> int:
        """Each loaded ConvNeXt gamma equals the stored one, compared in the stored dtype.

        The loader above cannot skip them; this guards the pitfall that broke Magma-8B under old
        transformers (gammas left at timm's 1e-6 init) against any later change to the loading."""
        params = dict(trunk.named_parameters())
        names = [n for n in self.tensors if n.startswith(TRUNK) and n.endswith(".gamma")]
        for name in names:
            stored = self.read(name)
            loaded = params[name[len(TRUNK):]].detach()
            if not torch.equal(loaded.to(stored.dtype), stored):
                raise CheckpointError(f"layer scale {name} differs from the checkpoint after loading")
        return len(names)


@contextlib.contextmanager
def no_init() -> Iterator[None]:
    """Builds modules without random init: the weights come from the checkpoint, and untouched
    fresh allocations cost no resident memory until the loader replaces them."""
    classes = (nn.Linear, nn.Conv2d, nn.Embedding, nn.LayerNorm)
    saved = [(cls, cls.reset_parameters) for cls in classes]
    try:
        for cls in classes:
            cls.reset_parameters = lambda self: None  # type: ignore[assignment]
        yield
    finally:
        for cls, fn in saved:
            cls.reset_parameters = fn  # type: ignore[assignment]


def parameter_count(cfg: MagmaCheckpointConfig) -> Tuple[int, int]:
    """(elements the exporter loads, elements of the known unused tensors) for this config."""
    used = unused = 0
    for e in expected_tensors(cfg).values():
        n = 1
        for d in e.shape:
            n *= d
        if e.used:
            used += n
        elif not e.shape == (cfg.text.head_dim // 2,):  # inv_freq buffers are not in current checkpoints
            unused += n
    return used, unused
