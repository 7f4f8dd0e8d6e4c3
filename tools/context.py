"""What every tool runs with: the engine, default models, limits, and a progress callback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from engine.errors import InputTooLong, InvalidInput, UnsupportedTask

if TYPE_CHECKING:
    from engine.engine import Engine
    from tools.ontology import GraphService
    from tools.taxonomy import TaxonomyStore
    from tools.vector_store import VectorStore

T = TypeVar("T")


def new_taxonomy_store() -> TaxonomyStore:
    # imported here: tools.taxonomy imports torch, and stdio answers `initialize` before torch is imported
    from tools.taxonomy import TaxonomyStore

    return TaxonomyStore()

Progress = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    """Per-call limits; each breach is an InputTooLong error naming the limit."""

    max_texts: int = 512
    max_chars: int = 100_000
    max_documents: int = 1000
    max_labels: int = 2000  # flat labels, or taxonomy categories (nodes)
    max_taxonomy_depth: int = 16  # levels of a taxonomy path or nested object
    max_category_chars: int = 1000  # characters of one taxonomy path or category name


@dataclass(frozen=True)
class Defaults:
    """Models used when a call names none."""

    embed_model: str = "all-MiniLM-L6-v2"
    rerank_model: str | None = None  # None: the embed model, ranking by cosine
    ner_model: str = "en_core_web_sm"  # spaCy, bundled: works offline
    classify_model: str | None = None  # None: the embed model


@dataclass(frozen=True)
class ToolContext:
    engine: Engine
    defaults: Defaults = field(default_factory=Defaults)
    limits: Limits = field(default_factory=Limits)
    progress: Progress | None = None
    taxonomies: TaxonomyStore = field(default_factory=lambda: new_taxonomy_store())  # the Runtime passes its own
    graphs: GraphService | None = None  # knowledge graphs (tools/ontology.py); None: no data directory
    store: VectorStore | None = None  # collections (tools/retrieval.py); None where they are not served

    async def report(self, done: float, total: float | None, message: str | None = None) -> None:
        if self.progress is not None:
            await self.progress(done, total, message)


def as_texts(texts: str | Sequence[str], limits: Limits, what: str = "texts",
             max_items: int | None = None) -> list[str]:
    """A single string is a list of one (agents often send one); then the per-call limits."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise InvalidInput(f"{what} is empty: send at least one string")
    cap = max_items or limits.max_texts
    if len(items) > cap:
        raise InputTooLong(f"{what} has {len(items)} items; the limit is {cap} per call: split the call")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidInput(f"{what}[{i}] must be a string, got {type(t).__name__}")
        if len(t) > limits.max_chars:
            raise InputTooLong(f"{what}[{i}] has {len(t)} characters; the limit is {limits.max_chars}")
        check_utf8(t, f"{what}[{i}]")
    return items


def check_utf8(text: str, what: str) -> None:
    """A lone UTF-16 surrogate (JSON `"\\ud800"`, which the stdlib parser accepts) is not text: refused here,
    before a tokenizer fails on it."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInput(f"{what} is not valid Unicode: a lone surrogate at character {e.start}; send "
                               "UTF-8 text (surrogate pairs only as pairs)") from None


# Large calls are submitted in chunks so progress can be reported as they finish; the scheduler still
# batches the chunks together, so throughput is unchanged.
PROGRESS_CHUNK = 64


def chunks(items: Sequence, size: int = PROGRESS_CHUNK) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


async def run_together(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run a call's chunks concurrently; the first to fail cancels the others (their queued work is dropped
    before compute) and its error is raised as itself, not wrapped in an ExceptionGroup."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [t.result() for t in tasks]


# Which catalog tasks each tool takes. Checked on the catalog entry, before the model is loaded or
# downloaded: a wrong choice costs the agent one short error, not a download.
TOOL_TASKS: dict[str, tuple[str, ...]] = {
    "embed": ("embed", "sparse", "multi_vector"),
    "rerank": ("rerank", "classify", "embed", "sparse", "multi_vector"),  # classify: an NLI model scores entailment
    "extract_entities": ("ner", "extract"),
    "classify": ("classify", "embed", "extract"),
    "extract_relations": ("extract",),  # GLiNER2 (tools.gliner2)
    "extract": ("extract",),
    "index_documents": ("embed",),
}


def tool_model(ctx: ToolContext, tool: str, model: str | None, default: str) -> str:
    """The catalog id of the model a call names (or the tool's default), refused when its task does not fit."""
    entry = ctx.engine.entry(model or default)
    allowed = TOOL_TASKS[tool]
    if entry.task not in allowed:
        fitting = [e for e in ctx.engine.catalog.ids() if ctx.engine.catalog.get(e).task in allowed][:6]
        raise UnsupportedTask(f"model {entry.id} is a {entry.task} model; {tool} takes {' or '.join(allowed)} "
                              f"models, e.g. {', '.join(fitting) or 'none in this catalog'} (see list_models)")
    return entry.id
