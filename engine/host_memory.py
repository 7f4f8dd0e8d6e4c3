"""The process's heap under load: bounding its growth (glibc only; elsewhere a no-op), and keeping the
garbage collector's pauses short.

Four measures, each measured in `bench/bench_reliability.py` (docs/reliability.md; the caches also in
`bench/bench_kernel_cache.py`):

oneDNN (bf16 matmuls on CPUs with fast bf16) keeps two caches keyed on tensor shapes, 1024 entries each:
PyTorch's ideep cache (`LRU_CACHE_CAPACITY`) and oneDNN's primitive cache. Packed batches have a new token
count almost every time, so both filled for tens of thousands of batches: at 64 clients RSS grew +20-25 %
after warm-up and kept growing (malloc's bytes in use rose with it while Python's objects stayed flat).
`bound_kernel_caches` caps both at start-up (before the first kernel runs, when they read the environment):
at 64 entries RSS stays flat and 300 MB lower, at the same speed; at 16 every batch rebuilds its kernels
(-28 %) (`bench/bench_kernel_cache.py`).

glibc gives each thread that allocates concurrently its own malloc arena, up to 8 per core, and an arena's
freed memory is rarely returned to the system. The server's threads (the event loop, the device thread,
tokenizer and anyio worker threads, OpenMP's team) each allocate megabytes per batch, so under 64 clients
RSS grew by about 1 GB per arena set for a 45 MB model (issue 17). `M_ARENA_MAX` caps the arenas. Set at
start-up, before the engine's threads exist.

Within the capped arenas, batches of varying shape leave freed activations between live chunks: the
second arena kept adding fully resident 64 MB heaps (+40 % RSS over 2,000 calls at 64 clients), and glibc
returns such pages only from the top of a heap. `trim_heap` (`malloc_trim(0)`) hands every free page back
(madvise); the scheduler calls it on the device thread between batches, at most once per
`SchedulerConfig.heap_trim_interval_s` (p50 ~1-9 ms per call: under 1 % of device time at 1 s).

The imports and a loaded model leave about 400,000 long-lived Python objects (torch's operator registry,
pydantic schemas, spaCy's pipeline), and CPython's full collection visits every one: 170-260 ms with the GIL
held, every few seconds under load, so every request in flight, rejections included, waited that long
(wrk against a server refusing every call: p50 7 ms, p99 200-245 ms). `freeze_long_lived_objects` collects
once and moves what survives into the permanent generation (`gc.freeze`), which full collections skip; the
pool calls it after each model load, which is also when models are dropped to make room
(`PoolConfig.freeze_objects`). Unfreezing first lets the next
call collect what the last drop left in cycles, so a dropped model is not kept forever.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import time

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # <malloc.h>


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _libc()


def bound_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas at `arenas` (0: leave glibc's default). Returns whether it was applied."""
    if arenas <= 0:
        return False
    if _LIBC is None or _LIBC.mallopt(_M_ARENA_MAX, arenas) != 1:
        log.info("malloc arenas left as they are (not glibc)")
        return False
    return True


KERNEL_CACHE_VARIABLES = ("LRU_CACHE_CAPACITY", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")


def bound_kernel_caches(entries: int) -> bool:
    """Cap oneDNN's shape-keyed caches at `entries` each (0: leave the libraries' defaults). A variable the
    operator set in the environment wins. Call before torch runs its first kernel. Returns whether any cap
    was set here."""
    if entries <= 0:
        return False
    applied = False
    for name in KERNEL_CACHE_VARIABLES:
        if name in os.environ:
            log.info("%s=%s from the environment kept", name, os.environ[name])
        else:
            os.environ[name] = str(entries)
            applied = True
    return applied


def trim_heap() -> bool:
    """Return the free pages of every malloc arena to the system (glibc's `malloc_trim(0)`). Returns whether
    any memory was released; False where the C library is not glibc."""
    trim = getattr(_LIBC, "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


def freeze_long_lived_objects() -> float:
    """Collect every generation, then exclude the survivors from later collections (`gc.freeze`). Objects
    frozen by an earlier call are collected again first. Returns the seconds it took (one full collection,
    with the GIL held: call it where a pause is expected, as after a model load)."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started
