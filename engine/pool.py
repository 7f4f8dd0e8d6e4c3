"""The model pool: which catalog models are resident on the device, under a byte budget.

Tiers: DEVICE (ready to run) -> HOST (evicted to host RAM, comes back without touching disk) -> COLD
(dropped; the next use loads from disk). Rules:
- Least-recently-used models leave the device first; pinned models and models in use never do.
- A model evicted from the device goes to the host tier if the host budget can hold it (evicting the
  host tier's LRU models, which are dropped), else it is dropped.
- Concurrent requests for one cold model share one load.
- A failed load fails that model alone; further attempts back off exponentially (1 s, 2 s, … 60 s).
On a CPU device both tiers live in the same RAM: the device budget bounds the working set, the host
budget bounds the parked models that can come back without a disk load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import torch

from engine.catalog import Catalog, CatalogEntry
from engine.errors import EngineError, ModelLoadError, Overloaded
from engine.host_memory import freeze_long_lived_objects
from engine.loading import LoadOptions
from engine.metrics import EngineMetrics
from engine.runnable import ModelInfo, Runnable
from engine.runtimes import load_runnable
from engine.weights import weight_files

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


class Tier(str, Enum):
    """Where a model's weights are."""

    DEVICE = "device"
    """Resident on the compute device, ready to run."""
    HOST = "host"
    """Parked in host RAM; back on the device without a disk read."""
    COLD = "cold"
    """Not loaded; the next use reads it from disk."""


@dataclass
class _Slot:
    entry: CatalogEntry
    tier: Tier = Tier.COLD
    model: Runnable | None = None
    front: Any = None  # kept after a drop: making work items (tokenising) needs no weights
    info: ModelInfo | None = None  # likewise kept: what the model computes, its dims and limits
    nbytes: int = 0  # exact once loaded; an estimate before
    in_use: int = 0
    last_used: float = 0.0
    loading: asyncio.Future | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_error: EngineError | None = None
    awaiting_room: bool = False  # its load waits for in-use models to be released (scheduler: starvation)


@dataclass(frozen=True)
class PoolConfig:
    device: str = "cpu"
    budget_bytes: int | None = None  # None: a fraction of device memory (or of RAM on CPU)
    host_budget_bytes: int | None = None  # None: a fraction of RAM
    default_dtype: str = "auto"
    attention_backend: str | None = None
    room_wait_s: float = 30.0  # how long a load waits for in-use models to free room
    # gc.freeze after each load (engine/host_memory.py): process-wide, so the server's choice (on by default
    # there, `--gc-freeze`), off for a process that embeds the engine among its own objects.
    freeze_objects: bool = False


def total_ram_bytes() -> int:
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def default_budgets(device: torch.device) -> tuple[int, int]:
    """(device budget, host budget): 60 % of GPU memory (the rest is for activations), or 30 % of RAM on
    CPU; 20 % of RAM for the host tier."""
    ram = total_ram_bytes()
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory * 0.6), int(ram * 0.2)
    return int(ram * 0.3), int(ram * 0.2)


def estimate_bytes(path: Path, dtype: torch.dtype) -> int:
    """Bytes a model will take, before loading: checkpoint size scaled to the target dtype (fp32 assumed
    on disk unless the files are small enough to be half precision)."""
    try:
        size = sum(f.stat().st_size for f in weight_files(path))
    except (EngineError, OSError):
        return 0
    return int(size * dtype.itemsize / 4)


Loader = Callable[[Path, LoadOptions], Runnable]


class ModelPool:
    def __init__(self, catalog: Catalog, config: PoolConfig = PoolConfig(), metrics: EngineMetrics | None = None,
                 loader: Loader = load_runnable) -> None:
        self.catalog = catalog
        self.config = config
        self.device = torch.device(config.device)
        device_default, host_default = default_budgets(self.device)
        self.budget = config.budget_bytes if config.budget_bytes is not None else device_default
        self.host_budget = config.host_budget_bytes if config.host_budget_bytes is not None else host_default
        self.metrics = metrics or EngineMetrics()
        self._loader = loader
        self._slots: dict[str, _Slot] = {}
        self._lock = asyncio.Lock()  # guards tier changes and budget accounting
        self._released = asyncio.Condition()
        # The device thread's intra-op threads are fixed when the pool is built: a thread takes torch's
        # process-wide count when it first runs a kernel, and a serving event loop lowers that to one
        # for itself (Engine.start(serving=True)).
        threads = torch.get_num_threads()
        self._device_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sie-device",
                                                 initializer=torch.set_num_threads, initargs=(threads,))

    # --- the device thread -----------------------------------------------------------------------

    async def on_device(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the device thread. Every torch operation of the engine runs there: loads,
        tier moves and the scheduler's forward passes. Besides ordering work on the device, one thread is a
        speed matter on CPUs: each thread that runs parallel kernels owns an OpenMP team, and once the
        teams hold more threads than there are cores, OpenMP stops spin-waiting between kernels and every
        kernel pays a futex wake-up (measured on 2 cores: a one-text MiniLM forward 5 ms → 8.5–12 ms after
        a model had been loaded on a second thread)."""
        return await asyncio.get_running_loop().run_in_executor(self._device_thread, fn, *args)

    def close(self) -> None:
        """Stop the device thread once the scheduler has drained."""
        self._device_thread.shutdown(wait=True)

    # --- queries ---------------------------------------------------------------------------------

    def _slot(self, model_id: str) -> _Slot:
        entry = self.catalog.get(model_id)  # UnknownModel lists the catalog
        slot = self._slots.get(entry.id)
        if slot is None:
            slot = self._slots[entry.id] = _Slot(entry, last_used=time.monotonic())
        return slot

    def canonical_id(self, model_id: str) -> str:
        return self.catalog.get(model_id).id

    def tier(self, model_id: str) -> Tier:
        return self._slot(model_id).tier

    def is_resident(self, model_id: str) -> bool:
        return self.tier(model_id) is Tier.DEVICE

    def bytes_in(self, tier: Tier) -> int:
        return sum(s.nbytes for s in self._slots.values() if s.tier is tier)

    def status(self) -> list[dict]:
        return [{"id": s.entry.id, "tier": s.tier.value, "bytes": s.nbytes, "in_use": s.in_use,
                 "pinned": s.entry.pinned, "last_error": str(s.last_error) if s.last_error else None}
                for s in self._slots.values()]

    def model_info(self, model_id: str) -> Runnable | None:
        return self._slot(model_id).model

    # --- use ---------------------------------------------------------------------------------------

    @asynccontextmanager
    async def use(self, model_id: str) -> AsyncIterator[Runnable]:
        model = await self.acquire(model_id)
        try:
            yield model
        finally:
            await self.release(model_id)

    async def acquire(self, model_id: str) -> Runnable:
        """The model, resident on the device and marked in use (never evicted until `release`).

        The in-use mark is taken before waiting for the load, as a reservation: the moment the model is
        resident it cannot be evicted by another model's load before this waiter wakes up. (Taking it only
        after waking let two waiters evict each other's freshly loaded model forever.)"""
        slot = self._slot(model_id)
        slot.in_use += 1
        try:
            while not (slot.tier is Tier.DEVICE and slot.model is not None):
                if slot.loading is None:
                    slot.loading = asyncio.get_running_loop().create_future()
                    asyncio.create_task(self._bring_in(slot))
                await asyncio.shield(slot.loading)  # raises the load's error for every waiter
        except BaseException:
            await self.release(model_id)
            raise
        slot.last_used = time.monotonic()
        return slot.model

    def acquire_resident(self, model_id: str) -> Runnable | None:
        """The model marked in use if it is resident now, else None (never waits: the scheduler's loop
        serves resident models and leaves loads to `prefetch`)."""
        slot = self._slot(model_id)
        if slot.tier is not Tier.DEVICE or slot.model is None:
            return None
        slot.in_use += 1
        slot.last_used = time.monotonic()
        return slot.model

    async def prefetch(self, model_id: str) -> None:
        """Make the model resident (resolving, downloading and loading it if needed) without keeping it
        in use; raises its load error."""
        async with self.use(model_id):
            pass

    def waiting_for_room(self, model_id: str) -> bool:
        """Whether the model's load is waiting for in-use models to be released."""
        return self._slot(model_id).awaiting_room

    async def release(self, model_id: str) -> None:
        slot = self._slot(model_id)
        slot.in_use -= 1
        slot.last_used = time.monotonic()
        async with self._released:
            self._released.notify_all()

    async def describe(self, model_id: str) -> tuple[ModelInfo, Any]:
        """The model's info and front (its tokenizer, for torch models); loads the model once if it has never
        been loaded."""
        slot = self._slot(model_id)
        if slot.front is None or slot.info is None:
            async with self.use(model_id):
                pass
        assert slot.front is not None and slot.info is not None
        return slot.info, slot.front

    # --- tier changes ----------------------------------------------------------------------------

    async def _bring_in(self, slot: _Slot) -> None:
        future = slot.loading
        assert future is not None
        try:
            await self._bring_in_locked(slot)
            slot.failures, slot.last_error = 0, None
            future.set_result(None)
        except EngineError as e:
            self.metrics.errors.labels(type=type(e).__name__).inc()
            future.set_exception(e)
        except Exception as e:  # an unexpected loader failure must not take the pool down
            log.exception("loading %s failed", slot.entry.id)
            err = ModelLoadError(f"model {slot.entry.id} failed to load: {e}")
            self.metrics.errors.labels(type="ModelLoadError").inc()
            future.set_exception(err)
        finally:
            slot.loading = None
            if not future.done():  # cancelled (engine shutting down): release the waiters
                future.cancel()
            elif not future.cancelled():
                future.exception()  # mark retrieved: waiters may all have gone away

    async def _bring_in_locked(self, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.last_error is not None and now < slot.retry_at:
            raise type(slot.last_error)(f"{slot.last_error} (retrying in {slot.retry_at - now:.0f} s)")
        started = time.perf_counter()
        source = "host" if slot.tier is Tier.HOST else "disk"
        if slot.tier is Tier.COLD:
            try:
                # Outside the lock: resolving may download from the Hub for minutes, and other models'
                # loads and tier changes must not wait for it (slot.loading already makes it one per model).
                path, options = await asyncio.to_thread(self._resolve, slot.entry)
                async with self._lock:
                    need = slot.nbytes or estimate_bytes(path, _dtype_of(options, self.device))
                    await self._make_room(slot, need)
                    model = await self._load_with_oom_retry(slot, path, options)
                    slot.model, slot.front, slot.info = model, model.front, model.info
                    slot.nbytes = model.nbytes()
                    slot.tier = Tier.DEVICE
                    await self._make_room(slot, 0)  # the estimate may have been low: settle the exact bytes
                    self._publish(slot)
                    if self.config.freeze_objects:  # the new model's objects (and those of any it dropped)
                        log.info("heap: collected and froze in %.0f ms", freeze_long_lived_objects() * 1e3)
            except EngineError as e:
                slot.failures += 1
                slot.last_error = e = type(e)(f"model {slot.entry.id} failed to load: {e}")
                slot.retry_at = time.monotonic() + min(2.0 ** (slot.failures - 1), MAX_BACKOFF_S)
                log.warning("%s (attempt %d)", e, slot.failures)
                raise e from None
        else:  # HOST -> DEVICE: leaves the host tier first so the model it displaces can take its place
            async with self._lock:
                slot.tier = Tier.COLD
                try:
                    await self._make_room(slot, slot.nbytes)
                except EngineError:
                    slot.model = None  # could not come back: dropped (the host slot may be reused)
                    self._publish(slot)
                    raise
                assert slot.model is not None
                await self.on_device(slot.model.move, self.device)
                slot.tier = Tier.DEVICE
                self._publish(slot)
        elapsed = time.perf_counter() - started
        self.metrics.loads.labels(model=slot.entry.id, source=source).inc()
        self.metrics.swap_in_seconds.labels(model=slot.entry.id, source=source).observe(elapsed)
        log.info("model %s resident on %s from %s in %.0f ms", slot.entry.id, self.device, source, elapsed * 1e3)

    async def _load_with_oom_retry(self, slot: _Slot, path: Path, options: LoadOptions) -> Runnable:
        """Device OOM while loading: evict every idle model and retry once, then fail this model alone."""
        try:
            return await self.on_device(self._loader, path, options)
        except torch.OutOfMemoryError:
            log.warning("out of device memory loading %s: evicting idle models and retrying", slot.entry.id)
            for other in sorted(self._slots.values(), key=lambda s: s.last_used):
                if other.tier is Tier.DEVICE and other is not slot and other.in_use == 0 and not other.entry.pinned:
                    await self._evict(other)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            try:
                return await self.on_device(self._loader, path, options)
            except torch.OutOfMemoryError as e:
                raise ModelLoadError("out of device memory even after evicting idle models; "
                                     "lower --memory-budget or free the device") from e

    def _resolve(self, entry: CatalogEntry) -> tuple[Path, LoadOptions]:
        return entry.resolve_path(), entry.load_options(self.config.device, self.config.default_dtype,
                                                        self.config.attention_backend)

    async def _make_room(self, incoming: _Slot, need: int) -> None:
        """Evict LRU device models (not pinned, not in use, not `incoming`) until `need` more bytes fit.
        Waits for in-use models to be released; gives up with Overloaded after `room_wait_s`."""
        if need > self.budget:
            raise ModelLoadError(f"model {incoming.entry.id} needs {need / 2**20:.0f} MiB, more than the whole "
                                 f"memory budget ({self.budget / 2**20:.0f} MiB); raise --memory-budget")
        deadline = time.monotonic() + self.config.room_wait_s
        while self.bytes_in(Tier.DEVICE) + need > self.budget:
            victims = sorted((s for s in self._slots.values() if s.tier is Tier.DEVICE and s is not incoming
                              and s.in_use == 0 and not s.entry.pinned), key=lambda s: s.last_used)
            if victims:
                await self._evict(victims[0])
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Overloaded(f"no room to load {incoming.entry.id}: every resident model is pinned or busy",
                                 retry_after_s=1.0)
            incoming.awaiting_room = True
            try:
                async with self._released:  # wait for a release, then look again
                    try:
                        await asyncio.wait_for(self._released.wait(), timeout=min(remaining, 1.0))
                    except TimeoutError:
                        pass
            finally:
                incoming.awaiting_room = False

    async def _evict(self, slot: _Slot) -> None:
        """Device -> host if the host budget can take it, else drop."""
        assert slot.model is not None
        if slot.nbytes <= self.host_budget:
            while self.bytes_in(Tier.HOST) + slot.nbytes > self.host_budget:
                oldest = min((s for s in self._slots.values() if s.tier is Tier.HOST), key=lambda s: s.last_used)
                self._drop(oldest)
            if self.device.type != "cpu":
                await self.on_device(slot.model.move, torch.device("cpu"))
            slot.tier = Tier.HOST
            self.metrics.evictions.labels(model=slot.entry.id, to="host").inc()
        else:
            self._drop(slot)
        self._publish(slot)
        log.info("evicted %s to %s", slot.entry.id, slot.tier.value)

    def _drop(self, slot: _Slot) -> None:
        slot.model = None
        slot.tier = Tier.COLD
        self.metrics.evictions.labels(model=slot.entry.id, to="dropped").inc()
        self._publish(slot)

    def _publish(self, slot: _Slot) -> None:
        device = str(self.device)
        self.metrics.resident_bytes.labels(model=slot.entry.id, device=device).set(
            slot.nbytes if slot.tier is Tier.DEVICE else 0)
        self.metrics.resident_bytes.labels(model=slot.entry.id, device="host").set(
            slot.nbytes if slot.tier is Tier.HOST else 0)

    async def evict_idle(self, keep: str) -> None:
        """Evict every idle, unpinned device model but `keep` (used to recover from device OOM)."""
        async with self._lock:
            for s in list(self._slots.values()):
                if s.tier is Tier.DEVICE and s.entry.id != keep and s.in_use == 0 and not s.entry.pinned:
                    await self._evict(s)


def _dtype_of(options: LoadOptions, device: torch.device) -> torch.dtype:
    from engine.loading import resolve_dtype

    return resolve_dtype(options.dtype, device)

