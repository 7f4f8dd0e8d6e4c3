"""Heads declared once: what each computes (its task), how its output splits per input, what a request may
carry, and how it is built at load.

A head is one `HeadSpec` in `HEADS` plus its module; loading, the scheduler's output split, the catalog and
the registry read this table (no suffix rules, no attribute probes). Family-specific layouts (BERT's pooled
classifier, RoBERTa's dense classifier, a masked-LM head) come from the family's builder methods, which a
family declares in `Backbone.heads` (engine/models/family.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine.errors import ModelLoadError, UnsupportedTask
from engine.heads.colbert import MultiVectorHead
from engine.heads.pooling import EmbeddingHead, PoolingMode
from engine.tasks import Task

if TYPE_CHECKING:
    from engine.loading import LoadOptions
    from engine.models.family import Backbone
    from engine.st_metadata import SentenceTransformersSpec
    from engine.tokenization import TextTokenizer


class Head(str, Enum):
    """The heads a checkpoint can be loaded with."""

    EMBED = "embed"
    """Pooling (+ sentence-transformers Dense, normalisation): one vector per input."""
    SEQUENCE_CLASSIFICATION = "sequence_classification"
    """The family's *ForSequenceClassification head: logits per input or (query, document) pair."""
    TOKEN_CLASSIFICATION = "token_classification"
    """The family's *ForTokenClassification head: logits per token (NER)."""
    SPARSE = "sparse"
    """The family's masked-LM head under SPLADE pooling: sparse vocabulary weights per input."""
    MULTI_VECTOR = "multi_vector"
    """A ColBERT projection: one L2-normalised vector per token."""
    YES_NO_RERANK = "yes_no_rerank"
    """A causal LM's "yes" − "no" next-token logit (Qwen3-Reranker): a one-label relevance score."""


class OutputSplit(str, Enum):
    """How a batch's head output is cut into per-input pieces."""

    PER_SEQUENCE = "per_sequence"
    """Row i of [B, …] belongs to input i."""
    PER_TOKEN = "per_token"
    """Rows of [T, …] split by the inputs' lengths."""


class RequestInput(str, Enum):
    """What a request may carry besides its texts."""

    PAIRS = "pairs"
    """A second text per input (cross-encoders score (query, document) pairs)."""
    KIND = "kind"
    """query/document, selecting the catalog's prompts."""


@dataclass(frozen=True)
class HeadContext:
    """What a head's builder may read at load."""

    backbone_cls: type[Backbone]
    cfg: Any
    hf: dict[str, Any]
    st: SentenceTransformersSpec | None
    options: LoadOptions
    state: dict[str, torch.Tensor]
    tokenizer: TextTokenizer
    where: Path

    def num_labels(self) -> int:
        if self.hf.get("id2label"):
            return len(self.hf["id2label"])
        return int(self.hf.get("num_labels", 2))

    def labels(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in (self.hf.get("id2label") or {}).items()}


@dataclass(frozen=True)
class BuiltHead:
    module: nn.Module
    output_dim: int
    pooling: tuple[PoolingMode, ...] = ()
    normalize: bool = False
    labels: dict[int, str] = field(default_factory=dict)
    # Head tensors a checkpoint may omit and where they come from (another head tensor, or `backbone.<name>`,
    # shared rather than copied): a tied masked-LM decoder.
    tied_weights: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # A step from the checkpoint's head tensors to the module's (the yes/no head keeps two LM-head rows).
    convert_state: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None


@dataclass(frozen=True)
class HeadSpec:
    head: Head
    task: Task
    split: OutputSplit
    build: Callable[[HeadContext], BuiltHead]
    inputs: frozenset[RequestInput] = frozenset()
    family_builder: bool = True  # built by the family (it must declare the head) rather than generically
    reads_st_metadata: bool = False  # sentence-transformers files decide pooling / Dense / max length
    catalog_task: str | None = None  # a catalog `task` that chooses this head at load


def _embed(ctx: HeadContext) -> BuiltHead:
    st, options = ctx.st, ctx.options
    default = ctx.backbone_cls.default_pooling  # decoders: last token
    modes = [options.pooling] if options.pooling else (st.pooling if st and st.pooling else [default])
    normalize = options.normalize if options.normalize is not None else bool(st and st.normalize)
    dense = st.dense if st else []
    out_dim = dense[-1].linear.out_features if dense else ctx.cfg.hidden_size * len(modes)
    return BuiltHead(EmbeddingHead(modes, dense, normalize), out_dim, tuple(modes), normalize)


def _sequence(ctx: HeadContext) -> BuiltHead:
    n = ctx.num_labels()
    return BuiltHead(ctx.backbone_cls.sequence_head(ctx.cfg, n), n, labels=ctx.labels())


def _token(ctx: HeadContext) -> BuiltHead:
    n = ctx.num_labels()
    return BuiltHead(ctx.backbone_cls.token_head(ctx.cfg, n), n, labels=ctx.labels())


def _sparse(ctx: HeadContext) -> BuiltHead:
    head = ctx.backbone_cls.mlm_head(ctx.cfg)
    return BuiltHead(head, head.vocab_size, tied_weights=dict(head.tied_weights))


def _multi_vector(ctx: HeadContext) -> BuiltHead:
    """colbert-ir `linear.weight` [dim, hidden] in the checkpoint, or PyLate's sentence-transformers Dense."""
    dense = ctx.st.dense if ctx.st else []
    proj = ctx.state.get("linear.weight")
    if proj is None and not dense:
        raise ModelLoadError(f"{ctx.where}: multi_vector needs a ColBERT projection: `linear.weight` in the "
                             "checkpoint (colbert-ir format) or a sentence-transformers Dense module (PyLate)")
    linear = nn.Linear(proj.shape[1], proj.shape[0], bias=False) if proj is not None else None
    out_dim = dense[-1].linear.out_features if dense else int(proj.shape[0])  # type: ignore[union-attr]
    return BuiltHead(MultiVectorHead(linear, dense), out_dim, normalize=True)


def _answer_token(ctx: HeadContext, word: str) -> int:
    token_id = ctx.tokenizer.token_id(word)
    if token_id is None:
        raise ModelLoadError(f"{ctx.where}: head {Head.YES_NO_RERANK.value} needs {word!r} as a single token of "
                             "the tokenizer, and tokenizer.json has none")
    return token_id


def _yes_no(ctx: HeadContext) -> BuiltHead:
    yes, no = _answer_token(ctx, "yes"), _answer_token(ctx, "no")
    # The logit yes - no: its sigmoid is P(yes | yes or no).
    head = ctx.backbone_cls.yes_no_head(ctx.cfg, ctx.hf, yes, no)
    return BuiltHead(head, 1, labels={0: "yes"}, tied_weights=head.tied_weights, convert_state=head.convert_state_dict)


HEADS: dict[Head, HeadSpec] = {spec.head: spec for spec in [
    HeadSpec(Head.EMBED, Task.EMBED, OutputSplit.PER_SEQUENCE, _embed, frozenset({RequestInput.KIND}),
             family_builder=False, reads_st_metadata=True, catalog_task="embed"),
    HeadSpec(Head.SEQUENCE_CLASSIFICATION, Task.SEQUENCE_CLASSIFICATION, OutputSplit.PER_SEQUENCE, _sequence,
             frozenset({RequestInput.PAIRS})),
    HeadSpec(Head.TOKEN_CLASSIFICATION, Task.TOKEN_CLASSIFICATION, OutputSplit.PER_TOKEN, _token),
    HeadSpec(Head.SPARSE, Task.SPARSE_EMBED, OutputSplit.PER_SEQUENCE, _sparse, catalog_task="sparse"),
    HeadSpec(Head.MULTI_VECTOR, Task.MULTI_VECTOR, OutputSplit.PER_TOKEN, _multi_vector,
             frozenset({RequestInput.KIND}), family_builder=False, reads_st_metadata=True,
             catalog_task="multi_vector"),
    HeadSpec(Head.YES_NO_RERANK, Task.SEQUENCE_CLASSIFICATION, OutputSplit.PER_SEQUENCE, _yes_no,
             frozenset({RequestInput.PAIRS})),
]}

# Aliases accepted where a head is named by a string (LoadOptions.head, a catalog's `load_task`).
_ALIASES = {"sparse_embed": Head.SPARSE}


def head_named(name: str | Head) -> Head:
    if isinstance(name, Head):
        return name
    try:
        return _ALIASES.get(name) or Head(name)
    except ValueError:
        raise UnsupportedTask(f"head {name!r} cannot be chosen at load; valid: "
                              f"{', '.join(h.value for h in Head)}") from None


def head_for_catalog_task(task: str) -> Head | None:
    """The head a catalog `task` chooses at load, if it chooses one (sparse, multi_vector); else None:
    the architecture's default head."""
    return next((spec.head for spec in HEADS.values() if spec.catalog_task == task and task != "embed"), None)
