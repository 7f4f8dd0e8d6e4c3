"""BERT family (BERT, MiniLM, BGE, E5, …): absolute positions, post-LN, GELU MLP.

Module names mirror transformers' BertModel so checkpoints load with a short rename table; the only
structural change is the fused QKV projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import torch
from torch import nn

from engine.attention import AttentionSpec
from engine.batch import PackedBatch
from engine.errors import UnsupportedArchitecture
from engine.heads.classification import SequenceClassificationHead, TokenClassificationHead
from engine.heads.specs import Head
from engine.heads.splade import SpladeHead
from engine.models.conversion import Conversion, Fuse
from engine.models.family import Backbone
from engine.models.layers import AttentionContext, FusedQKV, Linear, activation


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    # RoBERTa-style models number positions from pad_token_id + 1; BERT from 0.
    position_offset: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def max_length(self) -> int:
        """Longest sequence the position table can hold."""
        return self.max_position_embeddings - self.position_offset

    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> Self:
        pos_type = hf.get("position_embedding_type", "absolute")
        if pos_type != "absolute":
            raise UnsupportedArchitecture(
                f"config field position_embedding_type={pos_type!r} is not supported for "
                f"{hf.get('model_type')}; supported: 'absolute'")
        if hf.get("is_decoder") or hf.get("add_cross_attention"):
            raise UnsupportedArchitecture("config field is_decoder/add_cross_attention: only encoders are supported")
        activation(hf.get("hidden_act", "gelu"))  # validate early, with the field name
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            num_hidden_layers=hf["num_hidden_layers"],
            num_attention_heads=hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"],
            hidden_act=hf.get("hidden_act", "gelu"),
            max_position_embeddings=hf.get("max_position_embeddings", 512),
            type_vocab_size=hf.get("type_vocab_size", 2),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
            pad_token_id=hf.get("pad_token_id", 0) or 0,
        )


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(max(cfg.type_vocab_size, 1), cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        x = self.word_embeddings(batch.input_ids) + self.position_embeddings(batch.position_ids)  # [T, C]
        if batch.token_type_ids is not None:
            x = x + self.token_type_embeddings(batch.token_type_ids)
        else:
            x = x + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class WordPositionEmbeddings(nn.Module):
    """word + position -> LayerNorm, no token types (DistilBERT, MPNet; positions arrive offset by the batch).
    Token types the tokenizer may emit are ignored, as transformers does for these families."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        x = self.word_embeddings(batch.input_ids) + self.position_embeddings(batch.position_ids)  # [T, C]
        return self.LayerNorm(x)


class BertSelfAttention(FusedQKV):
    pass


class BertDenseLN(nn.Module):
    """Projection + residual + LayerNorm (post-LN); HF calls it *Output."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense.plus(x, residual))  # the residual added by the projection


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim)
        self.output = BertDenseLN(cfg.hidden_size, cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, attn: AttentionContext, spec: AttentionSpec) -> torch.Tensor:
        q, k, v = self.self(x)  # [T, H, D] each
        ctx = attn(q, k, v, spec).reshape(x.shape[0], -1)  # [T, C]
        return self.output(ctx, x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = cfg.hidden_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense.activated(x, self.act)  # [T, I]


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertDenseLN(cfg.intermediate_size, cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, attn: AttentionContext, spec: AttentionSpec) -> torch.Tensor:
        x = self.attention(x, attn, spec)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))


# HF BERT names -> ours: q/k/v fused (one GEMM); the position-id buffer is not a weight.
BERT_CONVERSION = Conversion(drop=(r"^embeddings\.position_ids$",), fusions=(Fuse(("query", "key", "value"), "qkv"),))


class BertModel(Backbone):
    """Backbone: PackedBatch -> hidden states [T, C]. `pooler` is kept for classification heads."""

    config_class = BertConfig

    def __init__(self, cfg: BertConfig, embeddings: nn.Module | None = None) -> None:
        super().__init__()
        self.config = cfg
        # Variants inject their own embedding module (e.g. RoBERTa's position offset).
        self.embeddings = embeddings if embeddings is not None else BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.spec = AttentionSpec()

    def forward(self, batch: PackedBatch, attn: AttentionContext) -> torch.Tensor:
        x = self.embeddings(batch)
        for layer in self.encoder.layer:
            x = layer(x, attn, self.spec)
        return x  # [T, C]

    # --- checkpoint loading -------------------------------------------------------------------

    # Prefixes task models put in front of the backbone's names.
    backbone_prefixes = ("bert.", "model.", "roberta.", "")
    conversion = BERT_CONVERSION
    heads = frozenset({Head.SEQUENCE_CLASSIFICATION, Head.TOKEN_CLASSIFICATION, Head.SPARSE})

    # --- task heads (built by loading on the meta device) --------------------------------------

    @staticmethod
    def sequence_head(cfg: BertConfig, num_labels: int) -> nn.Module:
        """BertForSequenceClassification: pooled CLS state (dense + tanh) -> classifier."""
        return SequenceClassificationHead(cfg.hidden_size, num_labels, BertPooler(cfg.hidden_size))

    @staticmethod
    def token_head(cfg: BertConfig, num_labels: int) -> nn.Module:
        return TokenClassificationHead(cfg.hidden_size, num_labels)

    @staticmethod
    def mlm_head(cfg: BertConfig) -> SpladeHead:
        return BertSpladeHead(cfg)


class BertPooler(nn.Module):
    """dense + tanh over the first token; what BertForSequenceClassification classifies."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = Linear(hidden, hidden)

    def forward(self, first_tokens: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(first_tokens))




class BertPredictionHeadTransform(nn.Module):
    """dense -> activation -> LayerNorm, before the vocabulary projection."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = activation(cfg.hidden_act)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.decoder = Linear(cfg.hidden_size, cfg.vocab_size)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg)


class BertSpladeHead(SpladeHead):
    """BertForMaskedLM's `cls.predictions` (transform + decoder) under SPLADE pooling.

    Checkpoints usually omit the decoder weight (tied to the word embeddings) and store its bias as
    `cls.predictions.bias`."""

    tied_weights: ClassVar[dict[str, tuple[str, ...]]] = {
        "cls.predictions.decoder.weight": ("backbone.embeddings.word_embeddings.weight",),
        "cls.predictions.decoder.bias": ("cls.predictions.bias",),
    }

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cls = BertOnlyMLMHead(cfg)
        self._vocab_size = cfg.vocab_size

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        p = self.cls.predictions
        return p.decoder(p.transform(x))  # [n, V]
