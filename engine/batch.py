"""The packed batch contract: every forward pass takes one of these, never a padded batch.

All sequences are concatenated into one token axis of length T (real tokens only). `cu_seqlens` marks
where each sequence starts: sequence i occupies tokens [cu_seqlens[i], cu_seqlens[i+1]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PackedBatch:
    input_ids: torch.Tensor  # [T] int64
    position_ids: torch.Tensor  # [T] int64, restarts at each sequence
    cu_seqlens: torch.Tensor  # [B+1] int32
    max_seqlen: int
    token_type_ids: torch.Tensor | None = None  # [T] int64
    # Host-side copy of the lengths: backends and heads use it to split without a device sync.
    seqlens: tuple[int, ...] = ()

    @property
    def num_sequences(self) -> int:
        return len(self.seqlens)

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(
            input_ids=self.input_ids.to(device, non_blocking=True),
            position_ids=self.position_ids.to(device, non_blocking=True),
            cu_seqlens=self.cu_seqlens.to(device, non_blocking=True),
            max_seqlen=self.max_seqlen,
            token_type_ids=None
            if self.token_type_ids is None
            else self.token_type_ids.to(device, non_blocking=True),
            seqlens=self.seqlens,
        )


def pack(
    sequences: Sequence[Sequence[int]],
    token_types: Sequence[Sequence[int]] | None = None,
    position_offset: int = 0,
) -> PackedBatch:
    """Concatenate token-id lists into a PackedBatch.

    `position_offset` shifts positions for families whose positions do not start at 0
    (RoBERTa-style models start at padding_idx + 1).
    """
    if not sequences:
        raise ValueError("cannot pack an empty batch")
    seqlens = tuple(len(s) for s in sequences)
    if min(seqlens) == 0:
        raise ValueError("cannot pack a zero-length sequence")
    flat = [t for s in sequences for t in s]
    input_ids = torch.tensor(flat, dtype=torch.long)
    position_ids = torch.cat([torch.arange(n, dtype=torch.long) for n in seqlens]) + position_offset
    cu = torch.zeros(len(seqlens) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(seqlens, dtype=torch.int32), 0)
    types = None
    if token_types is not None:
        types = torch.tensor([t for s in token_types for t in s], dtype=torch.long)
    return PackedBatch(
        input_ids=input_ids,
        position_ids=position_ids,
        cu_seqlens=cu,
        max_seqlen=max(seqlens),
        token_type_ids=types,
        seqlens=seqlens,
    )
