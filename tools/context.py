"""What every tool runs with: the engine, default models, limits, and a progress callback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from engine.engine import Engine
from engine.errors import InputTooLong, InvalidInput
from tools.taxonomy import TaxonomyStore

if TYPE_CHECKING:
    from tools.ontology import GraphService

T = TypeVar("T")

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
    taxonomies: TaxonomyStore = field(default_factory=TaxonomyStore)  # shared: the Runtime passes its own
    graphs: GraphService | None = None  # knowledge graphs (tools/ontology.py); None: no data directory

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
