"""Sequence classification (cross-encoder scores, N-label classifiers) and token classification."""

from __future__ import annotations

import torch
from torch import nn

from engine.batch import PackedBatch


class SequenceClassificationHead(nn.Module):
    """First-token state -> optional pooler (dense+tanh, BERT) -> classifier: [B, num_labels].

    Module names (`pooler.dense`, `classifier`) match BertForSequenceClassification after the
    backbone prefix is stripped, so no rename is needed.
    """

    def __init__(self, hidden: int, num_labels: int, pooler: nn.Module | None) -> None:
        super().__init__()
        self.pooler = pooler
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        first = hidden[batch.cu_seqlens[:-1].to(hidden.device).long()]  # [B, C]
        if self.pooler is not None:
            first = self.pooler(first)
        return self.classifier(first).float()  # [B, num_labels]


class TokenClassificationHead(nn.Module):
    """Per-token logits [T, num_labels] (NER)."""

    def __init__(self, hidden: int, num_labels: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        return self.classifier(hidden).float()
