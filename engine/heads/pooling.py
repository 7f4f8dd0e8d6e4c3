"""Pooling over packed hidden states, sentence-transformers Dense layers, normalisation, Matryoshka."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn

from engine.batch import PackedBatch
from engine.errors import InvalidInput


class PoolingMode(str, Enum):
    """How token states become one vector per sequence."""

    CLS = "cls"
    """The first token's state (BGE, many cross-encoders)."""
    MEAN = "mean"
    """Mean over all tokens, special tokens included, as sentence-transformers does."""
    MAX = "max"
    """Element-wise max over tokens."""
    MEAN_SQRT_LEN = "mean_sqrt_len"
    """Sum over tokens divided by sqrt(length)."""
    LAST_TOKEN = "last_token"
    """The last token's state (decoder embedders such as Qwen3-Embedding)."""


def sequence_index(batch: PackedBatch, device: torch.device) -> torch.Tensor:
    """[T] index of the sequence each token belongs to."""
    lens = torch.tensor(batch.seqlens, device=device)
    return torch.repeat_interleave(torch.arange(len(batch.seqlens), device=device), lens)


def pool(hidden: torch.Tensor, batch: PackedBatch, mode: PoolingMode) -> torch.Tensor:
    """hidden [T, C] -> [B, C] in float32 (pooling sums are done in fp32 for low-precision models)."""
    cu = batch.cu_seqlens.to(hidden.device).long()
    if mode is PoolingMode.CLS:
        return hidden[cu[:-1]].float()
    if mode is PoolingMode.LAST_TOKEN:
        return hidden[cu[1:] - 1].float()
    lens = torch.tensor(batch.seqlens, device=hidden.device, dtype=torch.float32)[:, None]  # [B, 1]
    if mode is PoolingMode.MAX:
        return torch.segment_reduce(hidden.float(), "max", lengths=lens.squeeze(1).long(), axis=0)
    sums = torch.zeros(len(batch.seqlens), hidden.shape[1], device=hidden.device, dtype=torch.float32)
    sums.index_add_(0, sequence_index(batch, hidden.device), hidden.float())  # [B, C]
    if mode is PoolingMode.MEAN:
        return sums / lens
    return sums / lens.sqrt()  # MEAN_SQRT_LEN


class DenseLayer(nn.Module):
    """sentence-transformers `models.Dense`: Linear + activation, applied after pooling."""

    def __init__(self, in_features: int, out_features: int, bias: bool, act: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.act_name = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x.to(self.linear.weight.dtype)).float()
        return torch.tanh(x) if self.act_name == "tanh" else x


class EmbeddingHead(nn.Module):
    """Pooling (one or several modes, concatenated) followed by optional Dense layers."""

    def __init__(self, modes: Sequence[PoolingMode], dense: Sequence[DenseLayer] = (),
                 normalize: bool = False) -> None:
        super().__init__()
        self.modes = tuple(modes)
        self.dense = nn.ModuleList(dense)
        self.normalize = normalize

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        x = torch.cat([pool(hidden, batch, m) for m in self.modes], dim=-1)  # [B, C']
        for layer in self.dense:
            x = layer(x)
        return x


def finish_embeddings(x: torch.Tensor, normalize: bool, dimensions: int | None) -> torch.Tensor:
    """Matryoshka truncation to `dimensions`, then optional L2 normalisation. x: [B, D] fp32."""
    if dimensions is not None:
        if not 1 <= dimensions <= x.shape[1]:
            raise InvalidInput(f"dimensions must be between 1 and {x.shape[1]} for this model, got {dimensions}")
        x = x[:, :dimensions]
    if normalize:
        x = F.normalize(x, p=2, dim=-1)
    return x
