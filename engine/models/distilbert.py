"""DistilBERT (distilbert-base, msmarco-distilbert-*, multi-qa-distilbert-*, …): BERT's post-LN layer
under other names, without token types.

The blocks are BERT's (`engine.models.bert`), with an injected embedding (word + position, no token
types); checkpoints load through the rename table below. Sequence classification is DistilBERT's own:
first token -> `pre_classifier` -> ReLU -> `classifier`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from engine.heads.classification import PreClassifierHead
from engine.heads.splade import SpladeHead
from engine.models.bert import BERT_CONVERSION, BertConfig, BertModel, WordPositionEmbeddings
from engine.models.conversion import Conversion, Rename
from engine.models.layers import Linear, activation

LAYER_NORM_EPS = 1e-12  # hard-coded in transformers' DistilBERT


@dataclass(frozen=True)
class DistilBertConfig(BertConfig):
    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> DistilBertConfig:
        act = hf.get("activation", "gelu")
        activation(act, field="activation")  # validate early, with DistilBERT's field name
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf.get("dim", 768),
            num_hidden_layers=hf.get("n_layers", 6),
            num_attention_heads=hf.get("n_heads", 12),
            intermediate_size=hf.get("hidden_dim", 3072),
            hidden_act=act,
            max_position_embeddings=hf.get("max_position_embeddings", 512),
            type_vocab_size=0,
            layer_norm_eps=LAYER_NORM_EPS,
            pad_token_id=hf.get("pad_token_id", 0) or 0,
        )


# DistilBERT name (under transformer.layer.N.) -> BERT name (under encoder.layer.N.)
_LAYER_RENAMES = {
    "attention.q_lin": "attention.self.query",
    "attention.k_lin": "attention.self.key",
    "attention.v_lin": "attention.self.value",
    "attention.out_lin": "attention.output.dense",
    "sa_layer_norm": "attention.output.LayerNorm",
    "ffn.lin1": "intermediate.dense",
    "ffn.lin2": "output.dense",
    "output_layer_norm": "output.LayerNorm",
}
DISTILBERT_CONVERSION = Conversion(renames=tuple(
    Rename(rf"^transformer\.layer\.(\d+)\.{re.escape(old)}\.(weight|bias)$", rf"encoder.layer.\1.{new}.\2")
    for old, new in _LAYER_RENAMES.items())).then(BERT_CONVERSION)  # then BERT's QKV fusion


class DistilBertModel(BertModel):
    config_class = DistilBertConfig
    backbone_prefixes = ("distilbert.", "")
    conversion = DISTILBERT_CONVERSION

    def __init__(self, cfg: DistilBertConfig, embeddings: nn.Module | None = None) -> None:
        super().__init__(cfg, embeddings if embeddings is not None else WordPositionEmbeddings(cfg))

    @staticmethod
    def sequence_head(cfg: DistilBertConfig, num_labels: int) -> nn.Module:
        return PreClassifierHead(cfg.hidden_size, num_labels)

    @staticmethod
    def mlm_head(cfg: DistilBertConfig) -> SpladeHead:
        return DistilBertSpladeHead(cfg)


class DistilBertSpladeHead(SpladeHead):
    """DistilBertForMaskedLM: `vocab_transform` -> activation -> `vocab_layer_norm` -> `vocab_projector`
    (weight tied to the word embeddings), under SPLADE pooling."""

    tied_weights: ClassVar[dict[str, tuple[str, ...]]] = {
        "vocab_projector.weight": ("backbone.embeddings.word_embeddings.weight",)}

    def __init__(self, cfg: DistilBertConfig) -> None:
        super().__init__()
        self.vocab_transform = Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = activation(cfg.hidden_act, field="activation")
        self.vocab_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=LAYER_NORM_EPS)
        self.vocab_projector = Linear(cfg.hidden_size, cfg.vocab_size)

    @property
    def vocab_size(self) -> int:
        return self.vocab_projector.out_features

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.vocab_projector(self.vocab_layer_norm(self.act(self.vocab_transform(x))))  # [n, V]
