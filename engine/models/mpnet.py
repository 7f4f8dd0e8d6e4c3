"""MPNet (all-mpnet-base-v2, multi-qa-mpnet-*, …): BERT's post-LN layer under other names, no token
types, positions from 2 (padding index 1, as RoBERTa), plus a relative-position attention bias shared
by all layers.

The blocks are BERT's (`engine.models.bert`) with an injected embedding; the bias (T5-style buckets,
one learned scalar per bucket and head) is attached to the attention context once per batch and cached
per sequence length, so the layers are unchanged. Checkpoints load through the rename table below.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import nn

from engine.batch import PackedBatch
from engine.errors import UnsupportedArchitecture
from engine.heads.classification import DenseClassifier, SequenceClassificationHead
from engine.heads.splade import SpladeHead
from engine.models.bert import BERT_CONVERSION, BertConfig, BertModel, WordPositionEmbeddings
from engine.models.conversion import Conversion, Rename
from engine.models.layers import AttentionContext
from engine.models.roberta import LMHeadSplade

PADDING_IDX = 1  # hard-coded in transformers' MPNetEmbeddings, whatever pad_token_id says
NUM_BUCKETS = 32  # transformers buckets with 32 whatever the table size; we accept only that size
MAX_DISTANCE = 128


@dataclass(frozen=True)
class MPNetConfig(BertConfig):
    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> MPNetConfig:
        buckets = hf.get("relative_attention_num_buckets", NUM_BUCKETS)
        if buckets != NUM_BUCKETS:
            raise UnsupportedArchitecture(f"config field relative_attention_num_buckets={buckets} is not supported "
                                          f"for mpnet; supported: {NUM_BUCKETS}")
        cfg = super().from_hf_config({"layer_norm_eps": 1e-12, "pad_token_id": 1, **hf, "type_vocab_size": 0})
        return dataclasses.replace(cfg, position_offset=PADDING_IDX + 1)


def relative_position_bucket(relative_position: torch.Tensor) -> torch.Tensor:
    """transformers' MPNetEncoder.relative_position_bucket (bidirectional T5 buckets), same arithmetic."""
    half = NUM_BUCKETS // 2
    n = -relative_position
    ret = (n < 0).to(torch.long) * half
    n = torch.abs(n)
    max_exact = half // 2
    is_small = n < max_exact
    val_if_large = max_exact + (
        torch.log(n.float() / max_exact) / math.log(MAX_DISTANCE / max_exact) * (half - max_exact)
    ).to(torch.long)
    val_if_large = torch.min(val_if_large, torch.full_like(val_if_large, half - 1))
    return ret + torch.where(is_small, n, val_if_large)


# MPNet name -> BERT name, under encoder.layer.N.
_LAYER_RENAMES = {
    "attention.attn.q": "attention.self.query",
    "attention.attn.k": "attention.self.key",
    "attention.attn.v": "attention.self.value",
    "attention.attn.o": "attention.output.dense",
    "attention.LayerNorm": "attention.output.LayerNorm",
}
MPNET_CONVERSION = Conversion(renames=(
    *(Rename(rf"^encoder\.layer\.(\d+)\.{re.escape(old)}\.(weight|bias)$", rf"encoder.layer.\1.{new}.\2")
      for old, new in _LAYER_RENAMES.items()),
    Rename(r"^encoder\.relative_attention_bias\.weight$", "relative_attention_bias.weight"),
)).then(BERT_CONVERSION)  # then BERT's QKV fusion


class MPNetModel(BertModel):
    config_class = MPNetConfig
    backbone_prefixes = ("mpnet.", "")
    conversion = MPNET_CONVERSION
    needs_attention_bias = True

    def __init__(self, cfg: MPNetConfig) -> None:
        super().__init__(cfg, WordPositionEmbeddings(cfg))
        self.relative_attention_bias = nn.Embedding(NUM_BUCKETS, cfg.num_attention_heads)

    def position_bias(self, length: int) -> torch.Tensor:
        """[H, L, L] additive bias for a sequence (or right-padded batch) of `length` tokens."""
        pos = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None])  # [L, L] key - query
        return self.relative_attention_bias(buckets).permute(2, 0, 1)  # [H, L, L]

    def forward(self, batch: PackedBatch, attn: AttentionContext) -> torch.Tensor:
        # Computed once per length per batch, then shared by every layer (as transformers does).
        return super().forward(batch, dataclasses.replace(attn, bias=cache(self.position_bias)))

    @staticmethod
    def sequence_head(cfg: MPNetConfig, num_labels: int) -> nn.Module:
        """MPNetForSequenceClassification: `classifier.dense` + tanh + `classifier.out_proj` (RoBERTa's)."""
        return SequenceClassificationHead(cfg.hidden_size, num_labels, None,
                                          DenseClassifier(cfg.hidden_size, num_labels))

    @staticmethod
    def mlm_head(cfg: MPNetConfig) -> SpladeHead:
        """MPNetForMaskedLM's `lm_head` has RoBERTa's layout."""
        return LMHeadSplade(cfg)
