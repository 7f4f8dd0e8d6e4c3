"""The scheduler: per-model queues, token-budget batches, one device loop, bounded admission.

One owner per queue: callers `submit` tokenised work and await a future; a single loop task forms
batches and runs them on the pool's device thread (`ModelPool.on_device`), so compute never overlaps on
the device and the event loop (tokenisation, HTTP, MCP) never blocks on it.

Batching: a batch takes sequences from one model's queue in arrival order until `max_batch_tokens` real
tokens, across requests; the batch is then sorted by length (the CPU attention buckets similar lengths).
The wait window adapts to load (`_fill_window`): after an idle spell, or when a client calls one
request at a time, a request runs at once; while the device is busy and the last batches merged several
requests, a batch that is not yet full waits for the callers just answered to send their next request,
at most `max_wait_s` and a tenth of a batch's compute time, so waiting never costs more than a tenth of
the throughput it buys. Tokenisation of arriving requests runs on the event loop or a worker thread
while the device thread computes the current batch. Across models the loop prefers models
already resident and serves them oldest call first, batch by batch; once it has paid for a swap it keeps
serving that model's queue (up to `max_consecutive_batches` while cold models wait), so alternating calls
do not thrash the pool. A cold
model's oldest request is served after at most `starvation_s` even if resident models stay busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.errors import ComputeError, EngineError, ModelOutputError, Overloaded, RequestTimeout, ShuttingDown
from engine.host_memory import trim_heap
from engine.metrics import ALL_MODELS, EngineMetrics
from engine.pool import ModelPool
from engine.runnable import Runnable, WorkInput

log = logging.getLogger(__name__)

IDLE_AFTER_S = 0.05  # no batch for this long: the device is idle and the wait window is skipped

# The model a task's enclosing `admitted` scope holds, so that the parts of one tool call (progress chunks
# submitted concurrently: tasks copy the context they are created in) ride on one admission and count once.
_ADMITTED: ContextVar[str | None] = ContextVar("sie_admitted_model", default=None)


@dataclass(frozen=True)
class SchedulerConfig:
    max_batch_tokens: int | None = None  # None: the model's default for its device
    max_wait_s: float = 0.02  # the longest a batch waits to fill (see `_fill_window`)
    max_queue: int = 256  # pending requests (all models) before Overloaded
    request_timeout_s: float = 60.0
    max_consecutive_batches: int = 8
    starvation_s: float = 0.5
    heap_trim_interval_s: float = 1.0  # 0: never (engine/host_memory.py `trim_heap`)


@dataclass(eq=False)
class WorkItem:
    model_id: str
    encoded: list[WorkInput]  # tokenised texts, spaCy texts, GLiNER prompts: whatever the runnable takes
    future: asyncio.Future
    enqueued_at: float = field(default_factory=time.perf_counter)
    outputs: list[Any] = field(default_factory=list)  # per input: the runnable's output (a tensor, a parse)
    order: deque[int] = field(default_factory=deque)  # sequence indices not yet batched, short first
    pending: int = 0  # sequences not yet computed
    started: bool = False
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.outputs = [None] * len(self.encoded)
        self.order = deque(sorted(range(len(self.encoded)), key=lambda i: len(self.encoded[i])))
        self.pending = len(self.encoded)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class Scheduler:
    def __init__(self, pool: ModelPool, config: SchedulerConfig = SchedulerConfig(),
                 metrics: EngineMetrics | None = None) -> None:
        self.pool = pool
        self.config = config
        self.metrics = metrics or pool.metrics
        self._queues: dict[str, deque[WorkItem]] = {}
        self._pending = 0  # tool calls accepted and not finished (the queue-depth signal)
        self._loads: dict[str, asyncio.Task] = {}  # background loads of models with queued work
        self._wakeup = asyncio.Event()
        self._accepting = True
        self._loop_task: asyncio.Task | None = None
        self._throughput = 2000.0  # tokens/s, a running estimate for retry-after hints
        self._last_batch_end = 0.0
        self._requests_per_batch = 1.0  # running estimate of the requests a batch merges (the concurrency)
        self._last_trim = 0.0

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="sie-scheduler")

    async def drain(self, timeout_s: float) -> bool:
        """Stop accepting (new calls get ShuttingDown) and wait up to `timeout_s` for every accepted call
        to finish. True when nothing is left pending."""
        self._accepting = False
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        return not self._pending

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop accepting, finish everything already accepted, then stop the loop."""
        await self.drain(timeout_s)
        for load in list(self._loads.values()):
            load.cancel()
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
            self._loop_task = None

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def pending_requests(self) -> int:
        return self._pending

    # --- submission ----------------------------------------------------------------------------

    def admission_error(self) -> ShuttingDown | Overloaded | None:
        """Why a new call would be refused now (counted as an error), or None: cheap enough to ask before a
        request's body is even read (sie_mcp/http_body.py)."""
        if not self._accepting:
            return ShuttingDown("server is shutting down; retry on another replica")
        if self._pending >= self.config.max_queue:
            queued_tokens = sum(len(e) for q in self._queues.values() for it in q for e in it.encoded)
            retry = max(1.0, round(queued_tokens / max(self._throughput, 1.0), 1))
            self.metrics.errors.labels(type="Overloaded").inc()
            return Overloaded(f"server overloaded: {self._pending} requests queued; retry after {retry:.0f} s",
                              retry_after_s=retry)
        return None

    @asynccontextmanager
    async def admitted(self, model_id: str) -> AsyncIterator[str]:
        """Admission control for one tool call (tokenising included); yields the canonical model id.
        Raises ShuttingDown while draining and Overloaded past `max_queue` pending calls.

        Scopes nest: inside an `admitted(model_id)` scope (in this task or the task that created it), a
        second one for the same model is part of the same call and neither re-admits nor counts again, so
        a call chunked for progress counts once in `sie_tool_queue_depth` and in `max_queue`."""
        held = _ADMITTED.get()
        if held is not None and held == self.pool.canonical_id(model_id):
            yield held
            return
        refusal = self.admission_error()
        if refusal is not None:
            raise refusal
        model_id = self.pool.canonical_id(model_id)
        self._count(model_id, +1)
        token = _ADMITTED.set(model_id)
        try:
            yield model_id
        finally:
            _ADMITTED.reset(token)
            self._count(model_id, -1)

    async def submit(self, model_id: str, encoded: Sequence[WorkInput], timeout_s: float | None = None
                     ) -> list[Any]:
        """Compute `encoded` on `model_id` (call inside `admitted`); per-input outputs in order.
        Raises RequestTimeout, or the model's load or compute error."""
        if not encoded:
            return []
        self.start()
        item = WorkItem(model_id, list(encoded), asyncio.get_running_loop().create_future())
        self._queues.setdefault(model_id, deque()).append(item)
        self._wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(item.future),
                                          timeout_s if timeout_s is not None else self.config.request_timeout_s)
        except TimeoutError:
            item.cancelled = True
            self.metrics.errors.labels(type="RequestTimeout").inc()
            raise RequestTimeout(f"request on {model_id} did not finish within its timeout") from None
        except asyncio.CancelledError:
            item.cancelled = True  # the caller went away: its remaining work is dropped before compute
            raise
        finally:
            if not item.future.done():
                item.future.cancel()

    def _count(self, model_id: str, delta: int) -> None:
        self._pending += delta
        self.metrics.queue_depth.labels(model=ALL_MODELS).set(self._pending)
        self.metrics.queue_depth.labels(model=model_id).inc(delta)

    # --- the loop ------------------------------------------------------------------------------

    def _live(self, model_id: str) -> deque[WorkItem]:
        q = self._queues.get(model_id, deque())
        while q and (q[0].cancelled or q[0].future.done()):  # drop cancelled work before batching
            q.popleft()
        return q

    def _waiting_models(self) -> list[str]:
        return [m for m in list(self._queues) if self._live(m)]

    def _pick_model(self) -> str | None:
        """The next model to serve among the resident ones; models that are not resident get their load
        started in the background (resolving, downloading and loading never stall the loop) and are
        served once they arrive."""
        waiting = self._waiting_models()
        resident = [m for m in waiting if self.pool.is_resident(m)]
        for m in waiting:
            if m not in resident:
                self._bring_in(m)
        if not resident:
            return None
        now = time.perf_counter()
        oldest = self._oldest(waiting)
        if oldest not in resident and now - self._queues[oldest][0].enqueued_at > self.config.starvation_s:
            # A cold model waits for room: while its load cannot evict the busy resident models, stop
            # serving them (their releases let the load make room) — the starvation bound.
            if self.pool.waiting_for_room(oldest):
                return None
        return self._oldest(resident)

    def _oldest(self, models: list[str]) -> str:
        """The model among `models` (each with live work) whose oldest call has waited longest."""
        return min(models, key=lambda m: self._queues[m][0].enqueued_at)

    def _older_resident_work(self, model_id: str) -> bool:
        """Whether another resident model has a call waiting since before this model's oldest one. Between
        resident models the loop goes oldest first after every batch: staying on one model for up to
        `max_consecutive_batches` only pays off when the next model would need a swap (under a 3:1 mix of
        embed and NER calls, staying kept the NER calls waiting for eight embed batches: p99 12.7x p50)."""
        resident = [m for m in self._waiting_models() if self.pool.is_resident(m)]
        return model_id in resident and self._oldest(resident) != model_id

    def _bring_in(self, model_id: str) -> None:
        """Start making `model_id` resident (once); when it is, or its load fails, wake the loop."""
        if model_id in self._loads:
            return
        task = asyncio.get_running_loop().create_task(self._load(model_id), name=f"sie-load-{model_id}")
        self._loads[model_id] = task

    async def _load(self, model_id: str) -> None:
        try:
            await self.pool.prefetch(model_id)
        except EngineError as e:  # the load failed: so do the calls waiting for it (the pool backs off)
            for item in self._live(model_id):
                item.fail(e)
            self._queues[model_id].clear()
        except Exception as e:  # never leave callers waiting on a load that died
            log.exception("loading %s failed", model_id)
            for item in self._live(model_id):
                item.fail(EngineError(f"model {model_id} could not be made resident: {type(e).__name__}"))
            self._queues[model_id].clear()
        finally:
            self._loads.pop(model_id, None)
            self._wakeup.set()

    async def _run(self) -> None:
        while True:
            model_id = self._pick_model()
            if model_id is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                await self._serve(model_id)
            except Exception:  # never let one model's failure stop the loop
                log.exception("scheduler error while serving %s", model_id)

    async def _serve(self, model_id: str) -> None:
        model = self.pool.acquire_resident(model_id)
        if model is None:  # evicted since it was picked: the next pick starts its load
            return
        try:
            budget = self.config.max_batch_tokens or model.max_batch_tokens
            for n in range(10**9):
                if not self._live(model_id):
                    break
                if n and self._older_resident_work(model_id):
                    break  # switching to a resident model costs nothing: serve the oldest call first
                if n >= self.config.max_consecutive_batches and len(self._waiting_models()) > 1:
                    break
                await self._fill_window(model_id, budget)
                refs = self._take_batch(model_id, budget)
                if refs:
                    await self._run_taken(model, refs)
        finally:
            await self.pool.release(model_id)

    async def _fill_window(self, model_id: str, budget: int) -> None:
        """Wait for more requests while the batch could be fuller and more are about to arrive.

        No wait after an idle spell (no batch for IDLE_AFTER_S) or once the queue holds a budget. More
        are about to arrive when requests are admitted but not queued (tokenising, or their results
        being written out), or when the queue holds fewer requests than recent batches merged: under
        concurrency the callers just answered send their next call within milliseconds (a round trip
        and tokenisation), and without the wait the batch would run half full. The window runs from the
        end of the last batch (or the oldest arrival, if later) for `max_wait_s`, and at most a tenth of
        a full batch's compute time at the running throughput; each arrival re-checks."""
        window = min(self.config.max_wait_s, 0.1 * budget / max(self._throughput, 1.0))
        while True:
            q = self._live(model_id)
            now = time.perf_counter()
            if not q or now - self._last_batch_end > IDLE_AFTER_S:
                return
            if sum(len(it.encoded[i]) for it in q for i in it.order) >= budget:
                return
            in_flight = self._pending - sum(len(other) for other in self._queues.values())
            if in_flight <= 0 and len(q) >= self._requests_per_batch - 0.5:
                return
            remaining = max(self._last_batch_end, q[0].enqueued_at) + window - now
            if remaining <= 0:
                return
            self._wakeup.clear()  # `submit` sets it
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self, model_id: str, budget: int) -> list[tuple[WorkItem, int]]:
        refs: list[tuple[WorkItem, int]] = []
        tokens = 0
        now = time.perf_counter()
        for item in list(self._live(model_id)):
            if item.cancelled or item.future.done():
                continue
            while item.order:
                n = len(item.encoded[item.order[0]])
                if refs and tokens + n > budget:
                    return refs
                refs.append((item, item.order.popleft()))
                tokens += n
                if not item.started:
                    item.started = True
                    self.metrics.phase_seconds.labels(model=model_id, phase="queue").observe(now - item.enqueued_at)
            self._queues[model_id].remove(item)  # fully batched: it leaves the queue
        return refs

    async def _run_taken(self, model: Runnable, refs: list[tuple[WorkItem, int]]) -> None:
        """Run a taken batch, failing closed: whatever goes wrong once work has left the queue, the taken
        requests get a typed error at once (never a wait for their timeout)."""
        try:
            await self._run_batch(model, refs)
        except BaseException as e:
            if not isinstance(e, Exception):  # cancelled (shutdown): the callers hear it too
                for item, _ in refs:
                    item.fail(ShuttingDown("server is shutting down; retry on another replica"))
                raise
            log.exception("batch on %s failed outside the model", refs[0][0].model_id)
            err = e if isinstance(e, EngineError) else ComputeError(
                f"inference failed on {refs[0][0].model_id}; retry, and report it to the operator if it persists")
            for item, _ in refs:
                if not item.future.done():
                    self.metrics.errors.labels(type=type(err).__name__).inc()
                item.fail(err)

    async def _run_batch(self, model: Runnable, refs: list[tuple[WorkItem, int]]) -> None:
        model_id = refs[0][0].model_id
        refs.sort(key=lambda r: len(r[0].encoded[r[1]]))
        encoded = [item.encoded[i] for item, i in refs]
        tokens = sum(len(e) for e in encoded)
        started = time.perf_counter()
        outputs: list
        try:
            outputs = await self.pool.on_device(self._compute, model, encoded)
        except torch.OutOfMemoryError:
            outputs = await self._recover_from_oom(model_id, model, encoded)
        except Exception as e:
            log.exception("batch on %s failed", model_id)
            outputs = [e] * len(refs)
        if len(outputs) != len(refs):
            raise ComputeError(f"model {model_id} returned {len(outputs)} outputs for {len(refs)} inputs; "
                               "report it to the operator")
        self._last_batch_end = time.perf_counter()
        elapsed = self._last_batch_end - started
        self._throughput = 0.8 * self._throughput + 0.2 * tokens / max(elapsed, 1e-6)
        requests = len({id(item) for item, _ in refs})
        self._requests_per_batch = 0.7 * self._requests_per_batch + 0.3 * requests
        self.metrics.batch_size.labels(model=model_id).observe(len(refs))
        self.metrics.batch_tokens.labels(model=model_id).observe(tokens)
        self.metrics.phase_seconds.labels(model=model_id, phase="compute").observe(elapsed)
        for (item, i), out in zip(refs, outputs, strict=True):
            if isinstance(out, BaseException):
                err = out if isinstance(out, EngineError) else ComputeError(f"inference failed on {model_id}")
                self.metrics.errors.labels(type=type(err).__name__).inc()
                item.fail(err)
                continue
            if not _finite(out):
                err = ModelOutputError(f"model {model_id} produced NaN or infinite values on this input")
                log.warning("%s", err)
                self.metrics.errors.labels(type=type(err).__name__).inc()
                item.fail(err)
                continue
            item.outputs[i] = out
            item.pending -= 1
            if item.pending == 0 and not item.future.done():
                item.future.set_result(item.outputs)
        await self._trim_heap_if_due(model_id)

    async def _trim_heap_if_due(self, model_id: str) -> None:
        """After a batch's answers are out: free heap pages back to the system, at most once per interval."""
        interval = self.config.heap_trim_interval_s
        started = time.perf_counter()
        if interval and started - self._last_trim >= interval:
            await self.pool.on_device(trim_heap)  # serialised with compute, like every device-thread job
            self._last_trim = time.perf_counter()
            self.metrics.phase_seconds.labels(model=model_id, phase="heap_trim").observe(self._last_trim - started)

    @staticmethod
    def _compute(model: Runnable, encoded: list[WorkInput]) -> list:
        batch = model.make_batch(encoded)
        return model.split_output(model.forward(batch), batch)

    async def _recover_from_oom(self, model_id: str, model: Runnable, encoded: list[WorkInput]) -> list:
        """Device OOM: evict other idle models and retry once, then split the batch, then fail alone."""
        await self.pool.evict_idle(keep=model_id)
        if self.pool.device.type == "cuda":
            torch.cuda.empty_cache()

        async def attempt(part: list[WorkInput]) -> list:
            try:
                return await self.pool.on_device(self._compute, model, part)
            except torch.OutOfMemoryError:
                if len(part) == 1:
                    return [Overloaded("out of device memory on this input; retry later or send shorter text")]
                half = len(part) // 2
                return [*(await attempt(part[:half])), *(await attempt(part[half:]))]

        return await attempt(encoded)


def _finite(out: object) -> bool:
    """No NaN or +infinity in a model's tensor output (JSON has neither: they would reach a client as null).
    -inf is allowed: it is how heads mark impossible positions (GLiNER's spans past a text's end), and every
    task maps it to a probability of 0 before anything reaches a client."""
    if not isinstance(out, torch.Tensor):
        return True  # a runnable's own output type (spaCy docs, spans …): its task checks it
    values = out._values() if out.is_sparse else out  # sparse COO (SPLADE): its stored values
    if not values.is_floating_point():
        return True
    return not bool(torch.isnan(values).any() or torch.isposinf(values).any())
