"""Qwen3 / Qwen2 decoder embedders (Qwen3-Embedding, …): causal attention with GQA, rotary positions,
RMSNorm pre-norm, SwiGLU MLP; the embedding is the last token's final state (last-token pooling).

Qwen2 is the same model with biased q/k/v projections and no per-head q/k norms; the config says which
(`qk_norm`, `qkv_bias`). Module names mirror transformers' Qwen3Model; at load q/k/v are fused into
`self_attn.qkv` and gate/up into `mlp.Wi` (`down_proj` becomes `mlp.Wo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.attention import AttentionSpec
from engine.batch import PackedBatch
from engine.errors import UnsupportedArchitecture
from engine.heads.pooling import PoolingMode
from engine.heads.specs import Head
from engine.heads.yes_no import YesNoHead
from engine.models.conversion import Conversion, Fuse, Rename
from engine.models.family import Backbone
from engine.models.layers import (
    AttentionContext,
    FusedQKV,
    GatedMLP,
    Linear,
    RMSNorm,
    Rotary,
    activation,
    apply_rotary,
    rope_theta,
)


@dataclass(frozen=True)
class Qwen3Config:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    hidden_act: str = "silu"
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    qkv_bias: bool = False  # Qwen2: True
    o_bias: bool = False
    qk_norm: bool = True  # Qwen3: RMSNorm over each head's q and k before rotary

    @property
    def max_length(self) -> int:
        return self.max_position_embeddings

    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> Qwen3Config:
        qwen2 = hf.get("model_type") == "qwen2"
        layer_types = set(hf.get("layer_types") or ["full_attention"])
        if hf.get("use_sliding_window") or layer_types != {"full_attention"}:
            raise UnsupportedArchitecture("config field use_sliding_window/layer_types: sliding-window layers "
                                          f"are not supported for {hf.get('model_type')}; only full attention")
        activation(hf.get("hidden_act", "silu"))
        heads = hf["num_attention_heads"]
        attention_bias = hf.get("attention_bias", False)
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            num_hidden_layers=hf["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=hf.get("num_key_value_heads") or heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            intermediate_size=hf["intermediate_size"],
            hidden_act=hf.get("hidden_act", "silu"),
            max_position_embeddings=hf.get("max_position_embeddings", 32768),
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_theta=rope_theta(hf, 10_000.0),
            qkv_bias=True if qwen2 else attention_bias,
            o_bias=False if qwen2 else attention_bias,
            qk_norm=not qwen2,
        )


class Qwen3Attention(FusedQKV):
    def __init__(self, cfg: Qwen3Config) -> None:
        super().__init__(cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim, cfg.num_key_value_heads,
                         bias=cfg.qkv_bias)
        self.o_proj = Linear(cfg.num_attention_heads * cfg.head_dim, cfg.hidden_size, bias=cfg.o_bias)
        self.q_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attn: AttentionContext,
                spec: AttentionSpec) -> torch.Tensor:
        q, k, v = super().forward(x)  # [T, H, D], [T, Hkv, D], [T, Hkv, D]
        q = apply_rotary(self.q_norm(q), *rope)
        k = apply_rotary(self.k_norm(k), *rope)
        return self.o_proj(attn(q, k, v, spec).reshape(x.shape[0], -1))  # [T, C]


class Qwen3DecoderLayer(nn.Module):
    def __init__(self, cfg: Qwen3Config) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Qwen3Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = GatedMLP(cfg.hidden_size, cfg.intermediate_size, activation(cfg.hidden_act, inplace=True))

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attn: AttentionContext,
                spec: AttentionSpec) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, attn, spec)
        return self.mlp(self.post_attention_layernorm(x), residual=x)


# q/k/v_proj -> self_attn.qkv; gate_proj + up_proj -> mlp.Wi (activated half first); down_proj -> mlp.Wo.
QWEN3_CONVERSION = Conversion(renames=(Rename(r"\.mlp\.down_proj\.", ".mlp.Wo."),),
                              fusions=(Fuse(("q_proj", "k_proj", "v_proj"), "qkv"), Fuse(("gate_proj", "up_proj"), "Wi")))


class Qwen3Model(Backbone):
    """Backbone: PackedBatch -> hidden states [T, C] (after the final norm)."""

    config_class = Qwen3Config
    backbone_prefixes = ("model.", "")
    conversion = QWEN3_CONVERSION
    heads = frozenset({Head.YES_NO_RERANK})
    default_pooling = PoolingMode.LAST_TOKEN  # without sentence-transformers metadata

    def __init__(self, cfg: Qwen3Config) -> None:
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Qwen3DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary = Rotary(cfg.head_dim, cfg.rope_theta)
        self.spec = AttentionSpec(causal=True)

    def forward(self, batch: PackedBatch, attn: AttentionContext) -> torch.Tensor:
        x = self.embed_tokens(batch.input_ids)  # [T, C]
        rope = self.rotary.cos_sin(batch.position_ids, x.dtype)
        for layer in self.layers:
            x = layer(x, rope, attn, self.spec)
        return self.norm(x)  # [T, C]

    @staticmethod
    def yes_no_head(cfg: Qwen3Config, hf: dict[str, Any], yes_id: int, no_id: int) -> YesNoHead:
        """*ForCausalLM as a yes/no reranker (Qwen3-Reranker): two rows of `lm_head`, which tied checkpoints
        (`tie_word_embeddings`, transformers' default False for Qwen2/3) take from `embed_tokens`."""
        tied = "backbone.embed_tokens.weight" if hf.get("tie_word_embeddings", False) else None
        return YesNoHead(cfg.hidden_size, yes_id, no_id, tied)
