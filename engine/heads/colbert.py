"""ColBERT late interaction: per-token projection -> L2-normalised multi-vectors, and MaxSim scoring.

Two checkpoint layouts:
- colbert-ir (HF_ColBERT, e.g. colbertv2.0): a bias-free `linear` [dim, hidden] next to `bert.*` in the
  same safetensors;
- PyLate: a sentence-transformers Dense module (`1_Dense/`), already loaded by st_metadata.

What we do not do (yet): ColBERT's [Q]/[D] marker tokens are not inserted and queries are not padded
with [MASK] to a fixed length (query augmentation); documents keep punctuation tokens (no skiplist).
Every real token, [CLS] and [SEP] included, gets a vector. A catalog entry can still prepend markers
through `query_prompt` / `document_prompt` where the tokenizer knows them as single tokens
("[unused0] " lands right after [CLS], where ColBERT puts its marker).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.batch import PackedBatch
from engine.heads.pooling import DenseLayer


class MultiVectorHead(nn.Module):
    """hidden [T, C] -> optional `linear` (no bias) -> optional ST Dense layers -> L2 norm: [T, dim] fp32."""

    def __init__(self, linear: nn.Linear | None = None, dense: Sequence[DenseLayer] = ()) -> None:
        super().__init__()
        self.linear = linear
        self.dense = nn.ModuleList(dense)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        x = hidden
        if self.linear is not None:
            x = self.linear(x)  # [T, dim]
        for layer in self.dense:
            x = layer(x)  # DenseLayer casts to its own dtype and returns fp32
        return F.normalize(x.float(), p=2, dim=-1)  # [T, dim]


def maxsim(query: torch.Tensor, docs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """score(q, d) = Σ_i max_j q_i · d_j.

    query [Nq, D]; docs one [Nd, D] tensor (-> a 0-d score) or a list of them (-> [n_docs] scores).
    The documents are packed into one [ΣNd, D] matrix: one matmul, then a segment max per document.
    """
    single = isinstance(docs, torch.Tensor)
    doc_list = [docs] if single else list(docs)
    if not doc_list:
        return torch.zeros(0)
    q = query.float()
    packed = torch.cat([d.float() for d in doc_list])  # [ΣNd, D]
    sims = packed @ q.T  # [ΣNd, Nq]
    lengths = torch.tensor([d.shape[0] for d in doc_list], device=sims.device)
    best = torch.segment_reduce(sims, "max", lengths=lengths, axis=0)  # [n_docs, Nq]
    scores = best.sum(dim=1)  # [n_docs]
    return scores[0] if single else scores
