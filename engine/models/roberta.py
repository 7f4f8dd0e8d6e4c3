"""RoBERTa family (RoBERTa, XLM-RoBERTa, CamemBERT; e5-multilingual, bge-m3, …): BERT blocks with a
RoBERTa embedding and RoBERTa's classification head.

Two differences from BERT, both injected rather than copied:
- positions are numbered from `pad_token_id + 1` (fairseq's make_positions), so the config carries
  `position_offset` and the position table holds `max_position_embeddings - pad_token_id - 1` tokens;
- RobertaForSequenceClassification has no pooler: first token -> dense -> tanh -> out_proj.
Checkpoint names (`roberta.embeddings…`, `roberta.encoder.layer.N.attention.self.query`) are BERT's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.batch import PackedBatch
from engine.heads.classification import DenseClassifier, SequenceClassificationHead
from engine.heads.splade import SpladeHead
from engine.models.bert import BertConfig, BertEmbeddings, BertModel
from engine.models.layers import Linear


@dataclass(frozen=True)
class RobertaConfig(BertConfig):
    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> RobertaConfig:
        cfg = super().from_hf_config({"pad_token_id": 1, **hf})  # RoBERTa's default padding id is 1
        return dataclasses.replace(cfg, position_offset=cfg.pad_token_id + 1)


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embedding sum; positions arrive already offset by the batch (`pack(position_offset=…)`).

    Most RoBERTa checkpoints have a single token type (type_vocab_size=1) and their tokenizers emit
    type 0 for both segments of a pair; a BERT-style type id 1 would index past that table, so with one
    type the ids are ignored.
    """

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        if self.token_type_embeddings.num_embeddings == 1 and batch.token_type_ids is not None:
            batch = dataclasses.replace(batch, token_type_ids=None)
        return super().forward(batch)


class RobertaModel(BertModel):
    config_class = RobertaConfig

    def __init__(self, cfg: RobertaConfig, embeddings: nn.Module | None = None) -> None:
        super().__init__(cfg, embeddings if embeddings is not None else RobertaEmbeddings(cfg))

    @staticmethod
    def sequence_head(cfg: RobertaConfig, num_labels: int) -> nn.Module:
        """RobertaForSequenceClassification: `classifier.dense` + tanh + `classifier.out_proj`."""
        return SequenceClassificationHead(cfg.hidden_size, num_labels, None,
                                          DenseClassifier(cfg.hidden_size, num_labels))

    @staticmethod
    def mlm_head(cfg: RobertaConfig) -> SpladeHead:
        return LMHeadSplade(cfg)


class LMHead(nn.Module):
    """RobertaLMHead / MPNetLMHead: dense -> exact GELU (whatever hidden_act says) -> layer_norm -> decoder."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.decoder = Linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(F.gelu(self.dense(x))))  # [n, V]


class LMHeadSplade(SpladeHead):
    """*ForMaskedLM's `lm_head` (RoBERTa, XLM-R, CamemBERT, MPNet) under SPLADE pooling; the decoder weight
    is tied to the word embeddings and its bias stored as `lm_head.bias`."""

    tied_weights: ClassVar[dict[str, tuple[str, ...]]] = {
        "lm_head.decoder.weight": ("backbone.embeddings.word_embeddings.weight",),
        "lm_head.decoder.bias": ("lm_head.bias",),
    }

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.lm_head = LMHead(cfg)
        self._vocab_size = cfg.vocab_size

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(x)
