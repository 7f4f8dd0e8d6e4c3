"""Rotary post-LN encoders: NomicBERT (nomic-embed-text-v1/v1.5) and GTE "new" (gte-multilingual-base,
gte-base-en-v1.5, gte-multilingual-reranker-base).

Both are BERT's post-LN layer with rotary positions instead of a position table and a gated MLP
(act(gate)·up → down) instead of GELU: word (+ token type) embeddings → LayerNorm, then per layer
x = LN(x + attn(x)); x = LN(x + mlp(x)). They differ in which projections carry a bias, the MLP
activation (NomicBERT SwiGLU, GTE GeGLU) and the rotary base.

Checkpoints come in two spellings and both load: transformers' own (`NomicBertModel`, `GteModel`, with
q/k/v_proj and gate/up/down_proj) and the original remote-code ones people download (contrastors'
NomicBERT: `encoder.layers.N.attn.Wqkv`, `mlp.fc11/fc12/fc2`, `norm1/2`, config keys `n_embd`, `n_layer`,
…; Alibaba's "new" GTE: `encoder.layer.N.attention.qkv_proj`, `mlp.up_gate_proj`, `attn_ln/mlp_ln`).
At load q/k/v become `self_attn.qkv` and gate/up become `mlp.Wi` (activated half first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.attention import AttentionSpec
from engine.batch import PackedBatch
from engine.errors import UnsupportedArchitecture
from engine.heads.classification import SequenceClassificationHead, TokenClassificationHead
from engine.heads.specs import Head
from engine.models.bert import BertPooler
from engine.models.conversion import Conversion, Fuse, Rename, Split
from engine.models.family import Backbone
from engine.models.layers import (
    AttentionContext,
    FusedQKV,
    GatedMLP,
    Linear,
    Rotary,
    activation,
    apply_rotary,
    rope_theta,
)


@dataclass(frozen=True)
class RotaryBertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    head_dim: int
    hidden_act: str  # the gate's activation: silu (SwiGLU) or gelu (GeGLU)
    max_position_embeddings: int
    type_vocab_size: int  # 0: no token-type embeddings (gte-base-en-v1.5)
    layer_norm_eps: float
    rope_theta: float
    qkv_bias: bool
    o_bias: bool
    mlp_in_bias: bool
    mlp_out_bias: bool

    @property
    def max_length(self) -> int:
        return self.max_position_embeddings

    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> RotaryBertConfig:
        model_type = hf.get("model_type")
        if model_type == "nomic_bert":
            return _nomic_remote(hf) if "n_embd" in hf else _native(hf, theta=1000.0, biases=(False, False, False, False),
                                                                        act="silu")
        if model_type in ("gte", "new"):
            if model_type == "new":
                _check_new_gte(hf)
            return _native(hf, theta=160_000.0, biases=(True, True, False, True), act="gelu")
        raise UnsupportedArchitecture(f"config field model_type={model_type!r}: not a NomicBERT or GTE config")


def _native(hf: dict[str, Any], theta: float, biases: tuple[bool, bool, bool, bool], act: str) -> RotaryBertConfig:
    """transformers' NomicBertConfig / GteConfig field names (also used by the "new" GTE remote code)."""
    hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
    hidden_act = hf.get("hidden_act", act)
    activation(hidden_act)
    qkv_bias, o_bias, mlp_in_bias, mlp_out_bias = biases
    return RotaryBertConfig(
        vocab_size=hf["vocab_size"], hidden_size=hidden, num_hidden_layers=hf["num_hidden_layers"],
        num_attention_heads=heads, intermediate_size=hf["intermediate_size"],
        head_dim=hf.get("head_dim") or hidden // heads, hidden_act=hidden_act,
        max_position_embeddings=hf.get("max_position_embeddings", 8192),
        type_vocab_size=hf.get("type_vocab_size", 2 if hf.get("model_type") == "nomic_bert" else 1),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12), rope_theta=rope_theta(hf, theta),
        qkv_bias=qkv_bias, o_bias=o_bias, mlp_in_bias=mlp_in_bias, mlp_out_bias=mlp_out_bias)


def _check_new_gte(hf: dict[str, Any]) -> None:
    """Options of Alibaba's remote-code GTE that this implementation does not have."""
    unsupported = {
        "position_embedding_type": (hf.get("position_embedding_type", "rope"), "rope"),
        "layer_norm_type": (hf.get("layer_norm_type", "layer_norm"), "layer_norm"),
        "logn_attention_scale": (bool(hf.get("logn_attention_scale", False)), False),
    }
    for field, (got, want) in unsupported.items():
        if got != want:
            raise UnsupportedArchitecture(f"config field {field}={got!r} is not supported for GTE; supported: {want!r}")


# contrastors' activation_function names: the gated MLPs this family uses.
_NOMIC_GATED = {"swiglu": "silu", "geglu": "gelu"}


def _nomic_remote(hf: dict[str, Any]) -> RotaryBertConfig:
    """contrastors' NomicBertConfig (GPT-2-style names), as nomic-embed-text-v1/v1.5 ship it."""
    fn = hf.get("activation_function", "swiglu")
    if fn not in _NOMIC_GATED:
        raise UnsupportedArchitecture(f"config field activation_function={fn!r} is not supported for NomicBERT; "
                                      f"supported: {sorted(_NOMIC_GATED)}")
    checks = {
        "rotary_emb_fraction": (float(hf.get("rotary_emb_fraction", 1.0)), 1.0),
        "rotary_emb_interleaved": (bool(hf.get("rotary_emb_interleaved", False)), False),
        "rotary_scaling_factor": (hf.get("rotary_scaling_factor"), None),
        "prenorm": (bool(hf.get("prenorm", False)), False),
        "causal": (bool(hf.get("causal", False)), False),
        "use_rms_norm": (bool(hf.get("use_rms_norm", False)), False),
        "moe_every_n_layers": (int(hf.get("moe_every_n_layers") or 0), 0),
    }
    for field, (got, want) in checks.items():
        if got != want:
            raise UnsupportedArchitecture(f"config field {field}={got!r} is not supported for NomicBERT; "
                                          f"supported: {want!r}")
    hidden, heads = hf["n_embd"], hf["n_head"]
    qkv_bias = bool(hf.get("qkv_proj_bias", True))
    return RotaryBertConfig(
        vocab_size=hf["vocab_size"], hidden_size=hidden, num_hidden_layers=hf["n_layer"], num_attention_heads=heads,
        intermediate_size=hf.get("n_inner") or 4 * hidden, head_dim=hidden // heads, hidden_act=_NOMIC_GATED[fn],
        max_position_embeddings=hf.get("n_positions", 2048), type_vocab_size=hf.get("type_vocab_size", 2),
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-12), rope_theta=float(hf.get("rotary_emb_base", 10_000.0)),
        qkv_bias=qkv_bias, o_bias=qkv_bias,  # contrastors gives out_proj the qkv projection's bias setting
        mlp_in_bias=bool(hf.get("mlp_fc1_bias", True)), mlp_out_bias=bool(hf.get("mlp_fc2_bias", True)))


class RotaryBertEmbeddings(nn.Module):
    """word (+ token type) -> LayerNorm; positions enter through rotary attention instead."""

    def __init__(self, cfg: RotaryBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.token_type_embeddings = (nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
                                      if cfg.type_vocab_size else None)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        x = self.word_embeddings(batch.input_ids)  # [T, C]
        if self.token_type_embeddings is not None:
            if batch.token_type_ids is not None:
                x = x + self.token_type_embeddings(batch.token_type_ids)
            else:
                x = x + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class RotaryBertAttention(FusedQKV):
    def __init__(self, cfg: RotaryBertConfig) -> None:
        super().__init__(cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim, bias=cfg.qkv_bias)
        self.o_proj = Linear(cfg.num_attention_heads * cfg.head_dim, cfg.hidden_size, bias=cfg.o_bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attn: AttentionContext,
                spec: AttentionSpec) -> torch.Tensor:
        t, h = x.shape[0], self.num_heads
        qkv = self.qkv(x).view(t, 3 * h, self.head_dim)  # [T, 3H, D]: q heads, k heads, v heads
        qk = apply_rotary(qkv[:, : 2 * h], *rope)  # q and k rotated together: [T, 2H, D]
        return self.o_proj(attn(qk[:, :h], qk[:, h:], qkv[:, 2 * h:], spec).reshape(t, -1))  # [T, C]


class RotaryBertLayer(nn.Module):
    def __init__(self, cfg: RotaryBertConfig) -> None:
        super().__init__()
        self.self_attn = RotaryBertAttention(cfg)
        self.post_attention_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = GatedMLP(cfg.hidden_size, cfg.intermediate_size, activation(cfg.hidden_act, inplace=True),
                            bias=cfg.mlp_in_bias, out_bias=cfg.mlp_out_bias)
        self.post_mlp_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], attn: AttentionContext,
                spec: AttentionSpec) -> torch.Tensor:
        x = self.post_attention_layernorm(self.self_attn(x, rope, attn, spec).add_(x))  # residual in place
        return self.post_mlp_layernorm(self.mlp(x, residual=x))


# Remote-code names -> transformers' names, applied before fusing (NomicBERT's fc11 is the up
# projection and fc12 the gate; GTE's up_gate_proj holds up then gate and is split below).
_RENAMES = [
    (r"^emb_ln\.", "embeddings.LayerNorm."),
    (r"^encoder\.layers?\.", "layers."),
    (r"\.attn\.Wqkv\.", ".self_attn.qkv."),
    (r"\.attention\.qkv_proj\.", ".self_attn.qkv."),
    (r"\.(attn|attention)\.(out_proj|o_proj)\.", ".self_attn.o_proj."),
    (r"\.(norm1|attn_ln)\.", ".post_attention_layernorm."),
    (r"\.(norm2|mlp_ln)\.", ".post_mlp_layernorm."),
    (r"\.mlp\.fc11\.", ".mlp.up_proj."),
    (r"\.mlp\.fc12\.", ".mlp.gate_proj."),
    (r"\.mlp\.(fc2|down_proj)\.", ".mlp.Wo."),
]
ROTARY_BERT_CONVERSION = Conversion(
    drop=(r"(^|\.)(position_ids|inv_freq|original_inv_freq)$|^rotary_emb\.",),  # buffers, not weights
    renames=tuple(Rename(pattern, repl) for pattern, repl in _RENAMES),
    splits=(Split("up_gate_proj", ("up_proj", "gate_proj")),),  # GTE: [up; gate]
    fusions=(Fuse(("q_proj", "k_proj", "v_proj"), "qkv"), Fuse(("gate_proj", "up_proj"), "Wi")))


class RotaryBertModel(Backbone):
    """Backbone: PackedBatch -> hidden states [T, C]."""

    config_class = RotaryBertConfig
    backbone_prefixes = ("nomic_bert.", "gte.", "new.", "")
    conversion = ROTARY_BERT_CONVERSION
    heads = frozenset({Head.SEQUENCE_CLASSIFICATION, Head.TOKEN_CLASSIFICATION})

    def __init__(self, cfg: RotaryBertConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = RotaryBertEmbeddings(cfg)
        self.layers = nn.ModuleList(RotaryBertLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.rotary = Rotary(cfg.head_dim, cfg.rope_theta)
        self.spec = AttentionSpec()

    def forward(self, batch: PackedBatch, attn: AttentionContext) -> torch.Tensor:
        x = self.embeddings(batch)  # [T, C]
        rope = self.rotary.cos_sin(batch.position_ids, x.dtype)
        for layer in self.layers:
            x = layer(x, rope, attn, self.spec)
        return x  # [T, C]

    @staticmethod
    def sequence_head(cfg: RotaryBertConfig, num_labels: int) -> nn.Module:
        """*ForSequenceClassification: first token -> pooler (dense + tanh) -> classifier, as in BERT."""
        return SequenceClassificationHead(cfg.hidden_size, num_labels, BertPooler(cfg.hidden_size))

    @staticmethod
    def token_head(cfg: RotaryBertConfig, num_labels: int) -> nn.Module:
        return TokenClassificationHead(cfg.hidden_size, num_labels)
