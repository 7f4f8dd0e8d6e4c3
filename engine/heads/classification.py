"""Sequence classification (cross-encoder scores, N-label classifiers) and token classification.

Each family picks its head layout (`sequence_head` / `token_head` on the backbone class) from the
pieces here; module names match the HF task model's names once the backbone prefix is stripped, so no
rename is needed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from engine.batch import PackedBatch
from engine.heads.pooling import PoolingMode, pool


class SequenceClassificationHead(nn.Module):
    """First-token state -> optional pooler -> classifier: [B, num_labels].

    BERT: `pooler` is dense+tanh (`pooler.dense`) and `classifier` a Linear. RoBERTa: no pooler, and
    `classifier` is a `DenseClassifier` (`classifier.dense`, `classifier.out_proj`).
    """

    def __init__(self, hidden: int, num_labels: int, pooler: nn.Module | None,
                 classifier: nn.Module | None = None) -> None:
        super().__init__()
        self.pooler = pooler
        self.classifier = classifier if classifier is not None else nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        first = hidden[batch.cu_seqlens[:-1].to(hidden.device).long()]  # [B, C]
        if self.pooler is not None:
            first = self.pooler(first)
        return self.classifier(first).float()  # [B, num_labels]


class DenseClassifier(nn.Module):
    """dense -> activation -> out_proj (RobertaClassificationHead's layout)."""

    def __init__(self, hidden: int, num_labels: int,
                 act: Callable[[torch.Tensor], torch.Tensor] = torch.tanh) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.act = act
        self.out_proj = nn.Linear(hidden, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.act(self.dense(x)))


class PreClassifierHead(nn.Module):
    """First-token state -> `pre_classifier` -> ReLU -> `classifier` (DistilBertForSequenceClassification)."""

    def __init__(self, hidden: int, num_labels: int) -> None:
        super().__init__()
        self.pre_classifier = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        first = hidden[batch.cu_seqlens[:-1].to(hidden.device).long()]  # [B, C]
        return self.classifier(torch.relu(self.pre_classifier(first))).float()  # [B, num_labels]


class PredictionHeadClassifier(nn.Module):
    """Optional pooling -> `head` (a family's dense/act/norm block) -> `classifier`.

    ModernBertForSequenceClassification pools (CLS or mean, `classifier_pooling`);
    ModernBertForTokenClassification passes `pooling=None` and classifies every token.
    """

    def __init__(self, hidden: int, num_labels: int, head: nn.Module, pooling: PoolingMode | None) -> None:
        super().__init__()
        self.pooling = pooling
        self.head = head
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        if self.pooling is not None:
            hidden = pool(hidden, batch, self.pooling).to(hidden.dtype)  # [B, C]
        return self.classifier(self.head(hidden)).float()  # [B or T, num_labels]


class TokenClassificationHead(nn.Module):
    """Per-token logits [T, num_labels] (NER)."""

    def __init__(self, hidden: int, num_labels: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        return self.classifier(hidden).float()
