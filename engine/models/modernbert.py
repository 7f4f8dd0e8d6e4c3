"""ModernBERT (answerdotai/ModernBERT-*, gte-modernbert, modernbert-embed, …): rotary positions, pre-LN,
GeGLU MLP, no biases by default, alternating global and sliding-window attention, final norm.

Every `global_attn_every_n_layers`-th layer (0, n, 2n, …) attends globally with rope theta
`global_rope_theta`; the others attend to ±`local_attention // 2` tokens with `local_rope_theta`.
Layer 0 has no attention norm (the embedding norm precedes it). Module names mirror transformers'
ModernBertModel (the checkpoint's Wqkv is already fused), so checkpoints load without renames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
from torch import nn

from engine.attention import AttentionSpec
from engine.batch import PackedBatch
from engine.errors import UnsupportedArchitecture
from engine.heads.classification import PredictionHeadClassifier
from engine.heads.pooling import PoolingMode
from engine.heads.specs import Head
from engine.heads.splade import SpladeHead
from engine.models.family import Backbone
from engine.models.layers import AttentionContext, GatedMLP, Linear, Rotary, activation, apply_rotary

GLOBAL, LOCAL = "full_attention", "sliding_attention"
CLASSIFIER_POOLING = {"cls": PoolingMode.CLS, "mean": PoolingMode.MEAN}


def _rope_theta(hf: dict[str, Any], layer_type: str, legacy_key: str, default: float) -> float:
    """transformers ≥ 5 writes `rope_parameters[layer_type]`; older configs `global/local_rope_theta`."""
    params = (hf.get("rope_parameters") or {}).get(layer_type)
    if params is None:
        if hf.get("rope_scaling"):
            raise UnsupportedArchitecture(f"config field rope_scaling={hf['rope_scaling']!r} is not supported "
                                          "for modernbert; only default rope")
        return float(hf.get(legacy_key, default))
    if params.get("rope_type", "default") != "default":
        raise UnsupportedArchitecture(f"config field rope_parameters[{layer_type!r}].rope_type="
                                      f"{params['rope_type']!r} is not supported; supported: 'default'")
    return float(params.get("rope_theta", default))


@dataclass(frozen=True)
class ModernBertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    layer_types: tuple[str, ...]  # GLOBAL or LOCAL per layer
    hidden_activation: str = "gelu"
    max_position_embeddings: int = 8192
    norm_eps: float = 1e-5
    norm_bias: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    local_attention: int = 128  # total window; each side gets half
    global_rope_theta: float = 160_000.0
    local_rope_theta: float = 10_000.0
    classifier_pooling: str = "cls"
    classifier_activation: str = "gelu"
    classifier_bias: bool = False
    decoder_bias: bool = True  # the masked-LM decoder's bias

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def max_length(self) -> int:
        return self.max_position_embeddings

    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> ModernBertConfig:
        n_layers = hf["num_hidden_layers"]
        every = hf.get("global_attn_every_n_layers", 3)
        layer_types = tuple(hf.get("layer_types") or (LOCAL if i % every else GLOBAL for i in range(n_layers)))
        unknown = sorted(set(layer_types) - {GLOBAL, LOCAL})
        if unknown or len(layer_types) != n_layers:
            raise UnsupportedArchitecture(f"config field layer_types={list(layer_types)!r} is not supported; "
                                          f"expected {n_layers} of {GLOBAL!r}/{LOCAL!r}")
        for field, default in (("hidden_activation", "gelu"), ("classifier_activation", "gelu")):
            activation(hf.get(field, default), field=field)
        pooling = hf.get("classifier_pooling", "cls")
        if pooling not in CLASSIFIER_POOLING:
            raise UnsupportedArchitecture(f"config field classifier_pooling={pooling!r} is not supported; "
                                          f"supported: {sorted(CLASSIFIER_POOLING)}")
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            num_hidden_layers=n_layers,
            num_attention_heads=hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"],
            layer_types=layer_types,
            hidden_activation=hf.get("hidden_activation", "gelu"),
            max_position_embeddings=hf.get("max_position_embeddings", 8192),
            norm_eps=hf.get("norm_eps", 1e-5),
            norm_bias=hf.get("norm_bias", False),
            attention_bias=hf.get("attention_bias", False),
            mlp_bias=hf.get("mlp_bias", False),
            local_attention=hf.get("local_attention", 128),
            global_rope_theta=_rope_theta(hf, GLOBAL, "global_rope_theta", 160_000.0),
            local_rope_theta=_rope_theta(hf, LOCAL, "local_rope_theta", 10_000.0),
            classifier_pooling=pooling,
            classifier_activation=hf.get("classifier_activation", "gelu"),
            classifier_bias=hf.get("classifier_bias", False),
            decoder_bias=hf.get("decoder_bias", True),
        )


def _norm(cfg: ModernBertConfig) -> nn.LayerNorm:
    return nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps, bias=cfg.norm_bias)


class ModernBertEmbeddings(nn.Module):
    def __init__(self, cfg: ModernBertConfig) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.norm = _norm(cfg)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        return self.norm(self.tok_embeddings(batch.input_ids))  # [T, C]


class ModernBertAttention(nn.Module):
    def __init__(self, cfg: ModernBertConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.head_dim
        self.Wqkv = Linear(cfg.hidden_size, 3 * cfg.hidden_size, bias=cfg.attention_bias)
        self.Wo = Linear(cfg.hidden_size, cfg.hidden_size, bias=cfg.attention_bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attn: AttentionContext,
                spec: AttentionSpec) -> torch.Tensor:
        t = x.shape[0]
        qkv = self.Wqkv(x).view(t, 3, self.num_heads, self.head_dim)  # [T, 3, H, D]
        q, k = apply_rotary(qkv[:, :2], *rope).unbind(1)  # q and k rotated together: [T, H, D] each
        v = qkv[:, 2]
        return self.Wo(attn(q, k, v, spec).reshape(t, -1))  # [T, C]


class ModernBertEncoderLayer(nn.Module):
    def __init__(self, cfg: ModernBertConfig, index: int) -> None:
        super().__init__()
        self.attention_type = cfg.layer_types[index]
        self.attn_norm = nn.Identity() if index == 0 else _norm(cfg)
        self.attn = ModernBertAttention(cfg)
        self.mlp_norm = _norm(cfg)
        self.mlp = GatedMLP(cfg.hidden_size, cfg.intermediate_size, activation(cfg.hidden_activation, inplace=True),
                            bias=cfg.mlp_bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attn: AttentionContext,
                spec: AttentionSpec) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rope, attn, spec)
        return self.mlp(self.mlp_norm(x), residual=x)


class ModernBertModel(Backbone):
    """Backbone: PackedBatch -> hidden states [T, C] (after the final norm)."""

    config_class = ModernBertConfig
    backbone_prefixes = ("model.", "")  # names already match ours and Wqkv is fused: no conversion
    heads = frozenset({Head.SEQUENCE_CLASSIFICATION, Head.TOKEN_CLASSIFICATION, Head.SPARSE})

    def __init__(self, cfg: ModernBertConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = ModernBertEmbeddings(cfg)
        self.layers = nn.ModuleList(ModernBertEncoderLayer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.final_norm = _norm(cfg)
        half = cfg.local_attention // 2
        self.specs = {GLOBAL: AttentionSpec(), LOCAL: AttentionSpec(window=(half, half))}
        self.rotary = {GLOBAL: Rotary(cfg.head_dim, cfg.global_rope_theta),
                       LOCAL: Rotary(cfg.head_dim, cfg.local_rope_theta)}

    def forward(self, batch: PackedBatch, attn: AttentionContext) -> torch.Tensor:
        x = self.embeddings(batch)
        rope = {kind: self.rotary[kind].cos_sin(batch.position_ids, x.dtype) for kind in set(self.config.layer_types)}
        for layer in cast(list[ModernBertEncoderLayer], self.layers):
            x = layer(x, rope[layer.attention_type], attn, self.specs[layer.attention_type])
        return self.final_norm(x)  # [T, C]

    # --- task heads ------------------------------------------------------------------------------

    @staticmethod
    def sequence_head(cfg: ModernBertConfig, num_labels: int) -> nn.Module:
        """ModernBertForSequenceClassification: CLS or mean pooling -> `head` -> `classifier`."""
        return PredictionHeadClassifier(cfg.hidden_size, num_labels, ModernBertPredictionHead(cfg),
                                        CLASSIFIER_POOLING[cfg.classifier_pooling])

    @staticmethod
    def token_head(cfg: ModernBertConfig, num_labels: int) -> nn.Module:
        return PredictionHeadClassifier(cfg.hidden_size, num_labels, ModernBertPredictionHead(cfg), None)

    @staticmethod
    def mlm_head(cfg: ModernBertConfig) -> SpladeHead:
        return ModernBertSpladeHead(cfg)


class ModernBertPredictionHead(nn.Module):
    """dense -> activation -> norm, before the classifier."""

    def __init__(self, cfg: ModernBertConfig) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size, bias=cfg.classifier_bias)
        self.act = activation(cfg.classifier_activation, field="classifier_activation")
        self.norm = _norm(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(x)))


class ModernBertSpladeHead(SpladeHead):
    """ModernBertForMaskedLM: `head` (dense -> act -> norm) -> `decoder` (weight tied to the token
    embeddings), under SPLADE pooling."""

    tied_weights: ClassVar[dict[str, tuple[str, ...]]] = {
        "decoder.weight": ("backbone.embeddings.tok_embeddings.weight",)}

    def __init__(self, cfg: ModernBertConfig) -> None:
        super().__init__()
        self.head = ModernBertPredictionHead(cfg)
        self.decoder = Linear(cfg.hidden_size, cfg.vocab_size, bias=cfg.decoder_bias)

    @property
    def vocab_size(self) -> int:
        return self.decoder.out_features

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.head(x))  # [n, V]
