"""A small model with Magma-8B's architecture (magma-tiny-som).

Module names mirror Magma's checkpoint so the exporter walks both the same way:
  vision_tower.trunk.{stem.0, stem.1, stages.S.downsample.{0,1}, stages.S.blocks.B.{conv_dw, norm, mlp.fc1, mlp.fc2, gamma}}
  multi_modal_projector.{proj.0, proj.2, row_seperator}
  language_model.model.{embed_tokens, layers.N.*, norm}, language_model.lm_head

Differences from Magma-8B, all size-only: 3 ConvNeXt stages (stride 16) instead of 4 (stride 32),
so a 128 px crop gives an 8x8 grid; tiny widths and depths; a trimmed vocabulary.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TextConfig:
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    intermediate_size: int = 384
    vocab_size: int = 512
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    max_position_embeddings: int = 1024
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False


@dataclass
class VisionConfig:
    img_size: int = 128
    feature_stride: int = 16
    depths: List[int] = field(default_factory=lambda: [1, 1, 2])
    dims: List[int] = field(default_factory=lambda: [32, 64, 128])
    layer_norm_eps: float = 1e-5
    layer_scale_init: float = 1e-6
    mm_projector_type: str = "mlp2x_gelu"

    @property
    def mm_hidden_size(self) -> int:
        return self.dims[-1]


@dataclass
class MagmaTinyConfig:
    text: TextConfig = field(default_factory=TextConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)

    def to_dict(self) -> dict:
        return {"text": asdict(self.text), "vision": asdict(self.vision)}

    @staticmethod
    def from_dict(d: dict) -> "MagmaTinyConfig":
        return MagmaTinyConfig(TextConfig(**d["text"]), VisionConfig(**d["vision"]))


# ---------------------------------------------------------------- vision: ConvNeXt trunk (timm layout)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW map (timm's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ConvNeXtBlock(nn.Module):
    """dwconv 7x7 -> LN -> Linear 4C -> GELU -> Linear C -> x gamma (layer scale) -> + residual."""

    def __init__(self, dim: int, eps: float, ls_init: float):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, 4 * dim)
        self.gamma = nn.Parameter(torch.full((dim,), ls_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_dw(x).permute(0, 2, 3, 1)
        x = self.mlp(self.norm(x)) * self.gamma
        return shortcut + x.permute(0, 3, 1, 2)


class ConvNeXtStage(nn.Module):
    def __init__(self, in_dim: int, dim: int, depth: int, downsample: bool, eps: float, ls_init: float):
        super().__init__()
        if downsample:
            self.downsample = nn.Sequential(LayerNorm2d(in_dim, eps=eps), nn.Conv2d(in_dim, dim, kernel_size=2, stride=2))
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, eps, ls_init) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class ConvNeXtTrunk(nn.Module):
    """stem (conv 4x4/4 + LN) then stages; each later stage halves the map. Stride = 4 * 2^(stages-1)."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        d = cfg.dims
        self.stem = nn.Sequential(nn.Conv2d(3, d[0], kernel_size=4, stride=4), LayerNorm2d(d[0], eps=cfg.layer_norm_eps))
        self.stages = nn.Sequential(
            *[
                ConvNeXtStage(d[max(i - 1, 0)], d[i], cfg.depths[i], i > 0, cfg.layer_norm_eps, cfg.layer_scale_init)
                for i in range(len(d))
            ]
        )
        assert 4 * 2 ** (len(d) - 1) == cfg.feature_stride, "feature_stride must match the stage count"


class VisionTower(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.trunk = ConvNeXtTrunk(cfg)


class MultiModalProjector(nn.Module):
    """mlp2x_gelu (Linear -> GELU(erf) -> Linear) and Magma's learned row separator (sic spelling)."""

    def __init__(self, mm_hidden: int, hidden: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(mm_hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.row_seperator = nn.Parameter(torch.zeros(1, 1, hidden))


def trunk_features(trunk: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """ConvNeXt dense features as Magma uses them: stem then stages; no head, pooling or final norm."""
    return trunk.stages(trunk.stem(pixel_values))


def encode_crops(trunk: nn.Module, proj: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """[N,3,S,S] -> projected cells [N, g*g, H], row-major within each crop."""
    x = trunk_features(trunk, pixel_values)  # [N, C, g, g]
    x = x.flatten(2).transpose(1, 2)  # [N, g*g, C]
    return proj(x)


def stitch_image(features: torch.Tensor, rows: int, cols: int, row_sep: torch.Tensor) -> torch.Tensor:
    """Crops of one image [rows*cols, g*g, H] -> Magma's token order [rows*g*(cols*g+1), H]."""
    n, gg, h = features.shape
    g = int(round(math.sqrt(gg)))
    x = features.view(rows, cols, g, g, h).permute(0, 2, 1, 3, 4).reshape(rows * g, cols * g, h)
    sep = row_sep.reshape(1, 1, h).expand(rows * g, 1, h)
    return torch.cat([x, sep], dim=1).reshape(-1, h)


# ---------------------------------------------------------------- language: Llama decoder


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.variance_epsilon)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = x.dtype
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(dtype)


class Attention(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        h, hd = cfg.hidden_size, cfg.head_dim
        self.q_proj = nn.Linear(h, cfg.num_attention_heads * hd, bias=False)
        self.k_proj = nn.Linear(h, cfg.num_key_value_heads * hd, bias=False)
        self.v_proj = nn.Linear(h, cfg.num_key_value_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.num_attention_heads * hd, h, bias=False)


class SwiGLU(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = SwiGLU(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LlamaModel(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """HF Llama rotary embedding (no scaling): cos/sin [B, 1, T, head_dim] in float32."""
    steps = torch.arange(0, head_dim, 2, dtype=torch.float32, device=position_ids.device)
    inv_freq = 1.0 / (theta ** (steps / head_dim))
    freqs = position_ids.float().unsqueeze(-1) * inv_freq  # [B, T, hd/2]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)


def causal_bias(attention_mask: torch.Tensor, q_len_like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive mask [B,1,T,P+T]: query t (absolute column P+t) sees key j iff j <= P+t and mask[j] == 1.

    Built only from tensor ops so the exported graph stays dynamic in B, T and P.
    """
    ones_k = torch.ones_like(attention_mask)
    k_pos = torch.cumsum(ones_k, dim=1) - 1  # [B, P+T]
    ones_q = torch.ones_like(q_len_like)
    t_idx = torch.cumsum(ones_q, dim=1) - 1  # [B, T]
    past = ones_k.sum(dim=1, keepdim=True) - ones_q.sum(dim=1, keepdim=True)  # [B, 1] = P
    q_pos = t_idx + past
    allowed = (k_pos.unsqueeze(1) <= q_pos.unsqueeze(2)) & (attention_mask.unsqueeze(1) > 0)  # [B, T, P+T]
    zero = torch.zeros((), dtype=dtype, device=attention_mask.device)
    neg = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=attention_mask.device)
    return torch.where(allowed, zero, neg).unsqueeze(1)


KV = Tuple[torch.Tensor, torch.Tensor]


def llama_forward(
    lm,
    cfg: TextConfig,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    past: Optional[List[KV]] = None,
    taps: Optional[List[torch.Tensor]] = None,
    attn_taps: Optional[List[torch.Tensor]] = None,
    prefix: Optional[List[KV]] = None,
) -> Tuple[torch.Tensor, List[KV]]:
    """Llama decoder on embeddings with a KV cache. `lm` is any module with .layers and .norm shaped like HF Llama.

    Returns the final-normed hidden states [B,T,H] and the new caches [B, kv_heads, P+T, head_dim].
    With `prefix` (keys and values [B, kv_heads, Q, head_dim] of positions before `past`; the mask
    then covers Q+P+T columns), attention also reads the prefix but the returned caches still hold
    only past + new: a long shared prefix (a cached image) is read in place, never copied into them.
    If `taps` is a list, each layer's output residual stream is appended to it, and if `attn_taps` is,
    each layer's attention probabilities [B, heads, T, P+T] (training-only probes and targets).
    """
    b = inputs_embeds.shape[0]
    nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    rep = nh // nkv
    cos, sin = rope_cos_sin(position_ids, hd, cfg.rope_theta)
    cos, sin = cos.to(inputs_embeds.dtype), sin.to(inputs_embeds.dtype)
    bias = causal_bias(attention_mask, position_ids, torch.float32).unsqueeze(2)  # [B,1,1,T,K]
    scale = 1.0 / math.sqrt(hd)
    x = inputs_embeds
    presents: List[KV] = []
    for i, layer in enumerate(lm.layers):
        attn = layer.self_attn
        hsn = layer.input_layernorm(x)
        q = attn.q_proj(hsn).reshape(b, -1, nh, hd).transpose(1, 2)  # [B, nh, T, hd]
        k = attn.k_proj(hsn).reshape(b, -1, nkv, hd).transpose(1, 2)
        v = attn.v_proj(hsn).reshape(b, -1, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[i][0], k], dim=2)
            v = torch.cat([past[i][1], v], dim=2)
        presents.append((k, v))
        # GQA without copying K/V: group the query heads by the KV head they share.
        qg = q.reshape(b, nkv, rep, -1, hd)  # [B, nkv, rep, T, hd]
        scores = torch.matmul(qg.float(), k.unsqueeze(2).transpose(-1, -2).float()) * scale
        if prefix is not None:
            # one softmax over [prefix | past + new]; the prefix's scores go first, like its columns
            pk, pv = prefix[i]
            prefix_scores = torch.matmul(qg.float(), pk.unsqueeze(2).transpose(-1, -2).float()) * scale
            scores = torch.cat([prefix_scores, scores], dim=-1)
        probs = torch.softmax(scores + bias, dim=-1).to(v.dtype)
        if attn_taps is not None:
            attn_taps.append(probs.reshape(b, nh, probs.shape[-2], probs.shape[-1]))
        if prefix is not None:
            split = pk.shape[2]
            out = torch.matmul(probs[..., :split], pv.unsqueeze(2)) + torch.matmul(
                probs[..., split:], v.unsqueeze(2)
            )
        else:
            out = torch.matmul(probs, v.unsqueeze(2))  # [B, nkv, rep, T, hd]
        out = out.reshape(b, nh, -1, hd).transpose(1, 2).reshape(b, -1, nh * hd)
        x = x + attn.o_proj(out)
        mlp = layer.mlp
        hsn = layer.post_attention_layernorm(x)
        x = x + mlp.down_proj(F.silu(mlp.gate_proj(hsn)) * mlp.up_proj(hsn))
        if taps is not None:
            taps.append(x)
    return lm.norm(x), presents



@torch.no_grad()
def greedy_decode(lm, cfg: TextConfig, lm_head: nn.Module, embeds: torch.Tensor, eos: set, max_new: int) -> tuple:
    """Prefill `embeds` [1, T, H], then greedy KV-cached decode steps as the TypeScript engine runs them.

    `lm` is the Llama body (.embed_tokens, .layers, .norm). Returns the tokens and every step's logits
    (rounded to 1e-6, as the parity fixtures store them), stopping after an id in `eos`.
    """
    length = embeds.shape[1]
    hidden, past = llama_forward(lm, cfg, embeds, torch.ones(1, length, dtype=torch.long), torch.arange(length)[None])
    tokens, logits_steps = [], []
    for _ in range(max_new):
        logits = lm_head(hidden[:, -1])[0]
        logits_steps.append([round(float(v), 6) for v in logits])
        token = int(logits.argmax())
        tokens.append(token)
        if token in eos:
            break
        total = length + len(tokens)
        hidden, past = llama_forward(lm, cfg, lm.embed_tokens(torch.tensor([[token]])),
                                     torch.ones(1, total, dtype=torch.long), torch.tensor([[total - 1]]), past)
    return tokens, logits_steps

class MagmaTiny(nn.Module):
    """magma-tiny-som: ConvNeXt trunk -> mlp2x_gelu projector (+ row separator) -> Llama decoder."""

    def __init__(self, cfg: MagmaTinyConfig):
        super().__init__()
        self.cfg = cfg
        self.vision_tower = VisionTower(cfg.vision)
        self.multi_modal_projector = MultiModalProjector(cfg.vision.mm_hidden_size, cfg.text.hidden_size)
        self.language_model = LlamaForCausalLM(cfg.text)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # std = fan_in^-0.5 rather than GPT's fixed 0.02: at width 128, 0.02 makes attention logits
        # ~20x too small and training sits for thousands of steps on uniform attention.
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            nn.init.trunc_normal_(m.weight, std=fan_in**-0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=1.0)

    def encode_crops(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return encode_crops(self.vision_tower.trunk, self.multi_modal_projector.proj, pixel_values)

    def decode(self, inputs_embeds, attention_mask, position_ids, past=None, taps=None, attn_taps=None):
        hidden, presents = llama_forward(
            self.language_model.model, self.cfg.text, inputs_embeds, attention_mask, position_ids, past, taps, attn_taps
        )
        return hidden, presents
