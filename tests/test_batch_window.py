"""The scheduler's adaptive wait window, driven directly with real queues and the real MiniLM (no HTTP).

Callers in a closed loop (each sends its next call a few milliseconds after its answer, like an HTTP
client) must be merged into one batch per round while the device is busy; without the window the first
caller back runs alone and the others queue behind it. A lone caller never waits (see
tests/test_pool_scheduler.py::test_a_lone_request_does_not_wait_for_a_batch_window).
"""

from __future__ import annotations

import asyncio

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.pool import PoolConfig
from engine.scheduler import SchedulerConfig

CLIENTS, ROUNDS, TEXTS = 4, 5, 8
ROUND_TRIP_S = 0.004  # what an HTTP client takes between an answer and its next call, roughly


def _batches(minilm_dir, corpus, max_wait_s: float) -> tuple[float, list[list]]:
    catalog = Catalog()
    catalog.add(CatalogEntry(id="minilm", source=f"path:{minilm_dir}", dtype="float32"))

    async def main():
        engine = Engine(catalog, PoolConfig(budget_bytes=1 << 30), SchedulerConfig(max_wait_s=max_wait_s))
        await engine.embed("minilm", ["warm up"])
        before = engine.metrics.registry.get_sample_value("sie_batch_size_count", {"model": "minilm"}) or 0.0

        async def client(c: int) -> list:
            outs = []
            for r in range(ROUNDS):
                start = (r * CLIENTS + c) * TEXTS
                outs.append((await engine.embed("minilm", corpus[start:start + TEXTS])).vectors)
                await asyncio.sleep(ROUND_TRIP_S * (c + 1))  # callers come back one after another
            return outs

        outs = await asyncio.gather(*(client(c) for c in range(CLIENTS)))
        after = engine.metrics.registry.get_sample_value("sie_batch_size_count", {"model": "minilm"})
        await engine.shutdown()
        return after - before, outs

    return asyncio.run(main())


def test_closed_loop_callers_share_batches(minilm_dir, corpus):
    windowed, outs = _batches(minilm_dir, corpus, max_wait_s=0.1)
    unwindowed, outs_unwindowed = _batches(minilm_dir, corpus, max_wait_s=0.0)
    # 4 x 8 texts fit one budget: one batch per round (a straggler may miss one now and then).
    assert windowed <= ROUNDS * 2, windowed  # one batch per round, with room for a loaded machine
    assert windowed < unwindowed, (windowed, unwindowed)
    for a, b in zip(outs, outs_unwindowed, strict=True):  # what else is in the batch changes nothing
        for x, y in zip(a, b, strict=True):
            assert float((x - y).abs().max()) <= 1e-5
