"""A loaded torch model: tokenizer + backbone + head, run on packed batches (a `Runnable`).

It computes only: `make_batch` → `forward` → `split_output`, which the scheduler drives with batches it
forms across requests (`run` does the same for a list of inputs, in token-budget batches). Everything
between texts and a task's result — prompts, `kind`, pairs, defaults, validation — lives in `Engine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.attention import AttentionBackend
from engine.batch import PackedBatch, pack
from engine.errors import InvalidInput
from engine.heads.specs import HEADS, Head, OutputSplit
from engine.runnable import ModelInfo
from engine.tokenization import Encoded, PairTemplate, TextTokenizer
from engine.weights import BackboneAndHead



@dataclass(frozen=True)
class EmbeddingOutput:
    vectors: torch.Tensor  # [N, D] float32, input order
    token_counts: list[int]
    truncated: list[bool]


@dataclass(frozen=True)
class MultiVectorOutput:
    vectors: list[torch.Tensor]  # per input [n_tokens, dim] float32, L2-normalised rows
    token_counts: list[int]
    truncated: list[bool]


@dataclass(frozen=True)
class SparseOutput:
    vectors: list  # per input a heads.splade.SparseVector (top terms)
    token_counts: list[int]
    truncated: list[bool]


@dataclass(frozen=True)
class TokenLogits:
    logits: torch.Tensor  # [n_tokens, num_labels] float32
    encoded: Encoded


def require_no_template(template: PairTemplate | None) -> None:
    if template is not None:
        raise InvalidInput("this model scores (query, document) pairs through its prompt template: send pairs")


def plan_batches(lengths: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Indices grouped into batches of at most `max_batch_tokens` real tokens, sorted by length.

    Sorting matters: equal lengths end up adjacent, which the CPU attention groups on, and a batch's
    longest sequence bounds its attention cost. A sequence longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i in order:
        if current and tokens + lengths[i] > max_batch_tokens:
            batches.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += lengths[i]
    if current:
        batches.append(current)
    return batches


class LoadedModel(BackboneAndHead):
    def __init__(self, info: ModelInfo, backbone: nn.Module, head: nn.Module, tokenizer: TextTokenizer,
                 attention: AttentionBackend, position_offset: int = 0) -> None:
        super().__init__(info, backbone, head, attention)
        self.tokenizer = tokenizer
        self.position_offset = position_offset
        self._split = HEADS[Head(info.head)].split

    @property
    def front(self) -> TextTokenizer:
        return self.tokenizer

    # --- compute ---------------------------------------------------------------------------------

    def make_batch(self, encoded: Sequence[Encoded]) -> PackedBatch:
        return pack([e.ids for e in encoded], [e.type_ids for e in encoded], self.position_offset)

    @torch.inference_mode()
    def forward(self, batch: PackedBatch) -> torch.Tensor:
        """Head output for a packed batch: [B, D] per sequence, [T, L] per token, or sparse [B, V]."""
        batch, hidden = self.encode(batch)  # [T, C]
        return self.head(hidden, batch)

    def split_output(self, out: torch.Tensor, batch: PackedBatch) -> list[torch.Tensor]:
        """Per-input pieces of `forward`'s output (a row, a sparse [V] row, or a [len, L] slice of tokens),
        as the head declares (heads.specs.HeadSpec.split)."""
        out = out.cpu()
        if self._split is OutputSplit.PER_TOKEN:
            return list(out.split(list(batch.seqlens)))
        return list(out.unbind(0))
