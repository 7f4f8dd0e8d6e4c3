"""SPLADE sparse vectors from a family's masked-LM head.

weight[v] = max over the sequence's tokens of log(1 + ReLU(logits[t, v])), special tokens included
(as SPLADE's reference computes it under the attention mask). The MLM head runs on the packed real tokens
only, in token chunks so that the [chunk, V] logits stay bounded for large vocabularies (XLM-R: 250k);
the activation runs after the max (it is monotone), on [B, V] rather than [T, V].

Each family lays out its MLM modules under transformers' names (`cls.predictions.…` for BERT,
`lm_head.…` for RoBERTa/MPNet, `vocab_*` for DistilBERT, `head` + `decoder` for ModernBERT) in a
subclass of `SpladeHead` that implements `logits`. `tied_weights` says where a tensor the checkpoint
omits comes from (the decoder weight is usually tied to the word embeddings): keys starting with
`backbone.` name a backbone parameter, which is then shared, not copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from engine.batch import PackedBatch

# Elements of the [chunk, V] logits block computed at once (fp32: 128 MiB).
DEFAULT_CHUNK_ELEMENTS = 32 * 1024 * 1024


class SpladeHead(nn.Module):
    """hidden [T, C] -> sparse [B, V] fp32 (a torch sparse COO tensor, one row per sequence)."""

    tied_weights: ClassVar[dict[str, tuple[str, ...]]] = {}
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """MLM logits [n, V] for token states [n, C]."""
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        dense = splade_max_pool(self.logits, hidden, batch.seqlens, self.vocab_size, self.chunk_elements)
        return dense.to_sparse()  # [B, V]: most weights of a trained SPLADE model are exactly 0


def splade_max_pool(logits_fn, hidden: torch.Tensor, seqlens: Sequence[int], vocab_size: int,
                    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> torch.Tensor:
    """max over each sequence's tokens of log1p(relu(logits)): [B, V] fp32.

    log1p∘relu is monotone, so it commutes with max: the [T, V] logits are only max-reduced per sequence
    (exact in any dtype) and the activation runs on the [B, V] result. Tokens are processed in chunks of
    at most `chunk_elements // V` rows; a chunk may cut sequences, so each chunk reduces its pieces
    (segment max) and folds them into the running [B, V] maximum.
    """
    out = torch.full((len(seqlens), vocab_size), float("-inf"), dtype=hidden.dtype, device=hidden.device)
    rows = max(1, chunk_elements // vocab_size)
    starts = [0]
    for n in seqlens:
        starts.append(starts[-1] + n)
    seq = 0
    for lo in range(0, starts[-1], rows):
        hi = min(lo + rows, starts[-1])
        # Pieces of sequences inside [lo, hi): (sequence index, length).
        pieces: list[tuple[int, int]] = []
        pos = lo
        while pos < hi:
            while starts[seq + 1] <= pos:
                seq += 1
            end = min(starts[seq + 1], hi)
            pieces.append((seq, end - pos))
            pos = end
        logits = logits_fn(hidden[lo:hi])  # [n, V]
        lengths = torch.tensor([n for _, n in pieces], device=hidden.device)
        piece_max = torch.segment_reduce(logits, "max", lengths=lengths, axis=0)  # [pieces, V]
        idx = torch.tensor([s for s, _ in pieces], device=hidden.device)
        out[idx] = torch.maximum(out[idx], piece_max)
    return torch.log1p(torch.relu(out.float()))


# ---------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SparseVector:
    """The top terms of one input's SPLADE vector, highest weight first."""

    token_ids: list[int]
    weights: list[float]
    tokens: list[str]
    nnz: int  # non-zero terms in the full vector (before top-k)

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.token_ids, self.weights, strict=True))


def top_terms(vector: torch.Tensor, k: int | None, id_to_token) -> SparseVector:
    """The k largest terms of a [V] sparse (or dense) vector; `k=None` keeps every non-zero term."""
    vector = vector.coalesce() if vector.is_sparse else vector.to_sparse()
    ids, values = vector.indices()[0], vector.values()
    keep = values > 0
    ids, values = ids[keep], values[keep]
    n = int(values.numel()) if k is None else min(k, int(values.numel()))
    top = torch.topk(values, n)
    token_ids = ids[top.indices].tolist()
    return SparseVector(token_ids=token_ids, weights=top.values.tolist(),
                        tokens=[id_to_token(i) or "" for i in token_ids], nnz=int(values.numel()))


def sparse_dot(a: SparseVector | dict[int, float], b: SparseVector | dict[int, float]) -> float:
    """Dot product of two sparse vectors (the SPLADE relevance score)."""
    da = a.as_dict() if isinstance(a, SparseVector) else a
    db = b.as_dict() if isinstance(b, SparseVector) else b
    if len(db) < len(da):
        da, db = db, da
    return float(sum(w * db.get(t, 0.0) for t, w in da.items()))
