"""What the pool hosts and the scheduler feeds: the `Runnable` contract.

A runnable is anything resident in the pool that computes on batches of work items: our torch families
(`engine.model.LoadedModel`), a spaCy pipeline, a GLiNER span model. The pool budgets its `nbytes()`, moves
it between tiers with `move(device)`, and keeps its `info` and `front` after dropping its weights (what it
computes, and how requests become work items, need no weights). The scheduler drives three steps on the
device thread: `make_batch(items)` → `forward(batch)` → `split_output(out, batch)` (one output per item, in
order; the scheduler checks the count). A work item's `len()` is its cost against the token budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from engine.tasks import Task
from engine.tokenization import PairTemplate


class WorkInput(Protocol):
    """One unit of work for a runnable (a tokenised text, a text for a spaCy pipeline, a GLiNER prompt)."""

    def __len__(self) -> int:  # its cost in tokens against the scheduler's budget
        ...


@dataclass(frozen=True)
class ModelInfo:
    architecture: str
    family: str
    task: Task
    hidden_size: int
    output_dim: int  # embedding size, number of labels, vocabulary size (sparse) or ColBERT dim
    max_length: int
    dtype: torch.dtype
    device: torch.device
    attention_backend: str = "none"
    attention_reason: str = ""
    pooling: tuple[Any, ...] = ()  # heads.pooling.PoolingMode values
    normalize: bool = False
    labels: dict[int, str] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    pair_template: PairTemplate | None = None  # classify(texts, pairs) formats each pair into one prompt
    runtime: str = "torch"  # engine.runtimes.RUNTIMES key
    head: str = ""  # heads.specs.Head value for torch models: decides how outputs split per input


class Runnable(Protocol):
    """A model the pool can host and the scheduler can feed."""

    info: ModelInfo
    max_batch_tokens: int  # the default token budget of one batch on its device

    @property
    def front(self) -> Any:
        """What turns requests into work items (a `TextTokenizer` for torch models); kept after a drop."""
        ...

    def nbytes(self) -> int:
        """Bytes it holds on its device (what the pool budgets)."""
        ...

    def move(self, device: torch.device) -> None:
        """Move its weights between the device and host RAM (the pool's tiers)."""
        ...

    def make_batch(self, items: Sequence[Any]) -> Any: ...

    def forward(self, batch: Any) -> Any: ...

    def split_output(self, out: Any, batch: Any) -> list[Any]:
        """One output per work item of `batch`, in the items' order."""
        ...
