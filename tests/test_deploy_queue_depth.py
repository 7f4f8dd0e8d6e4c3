"""The autoscaling signal means what it says: `sie_tool_queue_depth` counts tool calls (admitted, not
finished), once per call however the tool chunks it internally for progress; `max_queue` counts the same."""

from __future__ import annotations

import asyncio

import pytest

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import Overloaded
from engine.pool import PoolConfig
from engine.scheduler import SchedulerConfig
from tools.context import PROGRESS_CHUNK, ToolContext
from tools.embed import embed


@pytest.fixture(scope="module")
def tiny_catalog(make_hf_model) -> Catalog:
    catalog = Catalog()
    catalog.add(CatalogEntry(id="tiny", source=f"path:{make_hf_model('BertModel')}", dtype="float32"))
    return catalog


def _depth(engine: Engine, model: str = "_all") -> float:
    return engine.metrics.registry.get_sample_value("sie_tool_queue_depth", {"model": model}) or 0.0


def test_a_chunked_call_counts_once(tiny_catalog):
    texts = [f"text number {i}" for i in range(4 * PROGRESS_CHUNK)]  # four progress chunks

    async def main():
        engine = Engine(tiny_catalog, PoolConfig(budget_bytes=1 << 30), SchedulerConfig())
        seen: list[tuple[float, float]] = []

        async def progress(done, total, message):  # runs inside the call, after each chunk
            seen.append((_depth(engine), _depth(engine, "tiny")))

        result = await embed(ToolContext(engine, progress=progress), texts, model="tiny")
        after = _depth(engine)
        await engine.shutdown()
        return result, seen, after

    result, seen, after = asyncio.run(main())
    assert len(result.embeddings) == len(texts)
    assert len(seen) == 4 and set(seen) == {(1.0, 1.0)}  # one call in flight, whichever chunk reports
    assert after == 0


def test_max_queue_counts_calls_not_chunks(tiny_catalog):
    """A 256-text call is one pending call: with max_queue 1 it runs (chunks riding on one admission),
    and a second concurrent call is the one refused."""
    texts = ["word " * 40] * (4 * PROGRESS_CHUNK)

    async def main():
        engine = Engine(tiny_catalog, PoolConfig(budget_bytes=1 << 30), SchedulerConfig(max_queue=1))
        ctx = ToolContext(engine)
        await embed(ctx, ["warm"], model="tiny")
        first = asyncio.create_task(embed(ctx, texts, model="tiny"))
        await asyncio.sleep(0)  # the first call is admitted
        while _depth(engine) == 0:
            await asyncio.sleep(0.001)
        with pytest.raises(Overloaded):
            await embed(ctx, ["one more"], model="tiny")
        result = await first
        await engine.shutdown()
        return result

    assert len(asyncio.run(main()).embeddings) == len(texts)
